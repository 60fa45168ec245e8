"""A mailbox saved by an admin starts polling its IMAP account without a restart, with the
environment's values under its own, and only the lease holder polls it."""

from __future__ import annotations

import aioimaplib
from sqlmodel import select

from channels.email.runtime import start_email
from hub.channel_runtime import reload_inbox, stop_channels
from hub.inboxes import InboxLinks, save_inbox
from hub.leases import LeaseKeeper
from hub.services import Services
from models import Inbox, Lease
from tests.channels.email.conftest import Sink, email_settings
from tests.channels.email.dovecot import Dovecot
from tests.channels.email.helpers import customer_mail, eventually, messages_with


async def test_saved_imap_settings_poll_at_once(services: Services, sink: Sink) -> None:
    server = Dovecot()
    await server.start()
    services.extras["leases"] = LeaseKeeper(services.sessionmaker, "node-a", 5.0, 0.2)
    # the environment has no IMAP host; its port, TLS choice and folder still apply
    runtime = await start_email(
        services, email_settings(sink.port, listen=False, imap_port=server.port, imap_ssl=False)
    )
    try:
        assert runtime.pollers == {}
        async with services.sessionmaker() as db:
            inbox = (await db.exec(select(Inbox).where(Inbox.name == "Support email"))).one()
            await save_inbox(
                db,
                user_id=None,
                inbox_id=inbox.id,
                kind="email",
                links=InboxLinks(inbox.name, inbox.default_queue_id, inbox.hours_id, None, True),
                form={
                    "imap_host": "127.0.0.1",
                    "imap_username": "support",
                    "imap_password": server.password,
                },
            )
        mail = customer_mail("Saved", "polled after a save", message_id="<s1@customer.test>")
        client = aioimaplib.IMAP4(host="127.0.0.1", port=server.port, timeout=30)
        await client.wait_hello_from_server()
        await client.login("support", server.password)
        await client.append(mail.as_bytes(), mailbox="INBOX")
        await client.logout()

        await reload_inbox(services, inbox.id, "email")  # what the bus event triggers
        assert list(runtime.pollers) == [inbox.id]

        async def stored() -> bool:
            return bool(await messages_with(services, "<s1@customer.test>"))

        await eventually(stored, "the saved IMAP account was polled")
        async with services.sessionmaker() as db:
            lease = await db.get(Lease, f"imap:{inbox.id}")
        assert lease is not None and lease.holder == "node-a"
    finally:
        await services.outbox.close()
        await stop_channels(services)
        server.stop()
