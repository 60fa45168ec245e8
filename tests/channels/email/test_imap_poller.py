"""IMAP polling against a real dovecot: unseen mail is committed, then flagged \\Seen; IDLE
picks up new mail; a message fetched again after losing its flag is stored once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aioimaplib
import pytest

from channels.email.imap_poller import REFUSED_KEYWORD
from channels.email.runtime import EmailRuntime, start_email
from hub.channel_runtime import stop_channels
from hub.services import Services
from tests.channels.email.conftest import Sink, email_settings
from tests.channels.email.dovecot import Dovecot
from tests.channels.email.helpers import customer_mail, eventually, messages_with


@pytest.fixture
async def dovecot() -> AsyncIterator[Dovecot]:
    server = Dovecot()
    await server.start()
    try:
        yield server
    finally:
        server.stop()


async def mailbox(server: Dovecot) -> aioimaplib.IMAP4:
    client = aioimaplib.IMAP4(host="127.0.0.1", port=server.port, timeout=30)
    await client.wait_hello_from_server()
    assert (await client.login("support", server.password)).result == "OK"
    assert (await client.select("INBOX")).result == "OK"
    return client


async def flags(client: aioimaplib.IMAP4) -> dict[int, str]:
    """uid → its FLAGS text, from a fresh FETCH."""
    response = await client.uid("fetch", "1:*", "(UID FLAGS)")
    found = {}
    for line in response.lines:
        text = bytes(line).decode() if isinstance(line, bytes | bytearray) else str(line)
        if "UID" in text and "FLAGS" in text:
            uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
            found[uid] = text.split("FLAGS (", 1)[1].split(")", 1)[0]
    return found


def raw(subject: str, message_id: str, **kw: str) -> bytes:
    return customer_mail(subject, f"body of {subject}", message_id=message_id, **kw).as_bytes()


@pytest.fixture
async def polling(
    services: Services, sink: Sink, dovecot: Dovecot
) -> AsyncIterator[tuple[EmailRuntime, aioimaplib.IMAP4]]:
    client = await mailbox(dovecot)
    await client.append(raw("First", "<i1@customer.test>"), mailbox="INBOX")
    await client.append(raw("Second", "<i2@customer.test>"), mailbox="INBOX")
    await client.append(b"Subject: no sender\r\n\r\nwho?\r\n", mailbox="INBOX")
    settings = email_settings(
        sink.port,
        listen=False,
        imap_host="127.0.0.1",
        imap_port=dovecot.port,
        imap_ssl=False,
        imap_username="support",
        imap_password=dovecot.password,
        imap_idle_seconds=2.0,  # the safety net for mail arriving just before IDLE
    )
    runtime = await start_email(services, settings)
    try:
        yield runtime, client
    finally:
        await services.outbox.close()
        await stop_channels(services)
        await client.logout()


async def test_unseen_mail_is_committed_then_flagged_seen(
    services: Services, polling: tuple[EmailRuntime, aioimaplib.IMAP4]
):
    runtime, client = polling

    async def both_stored() -> bool:
        return all([await messages_with(services, f"<i{n}@customer.test>") for n in (1, 2)])

    await eventually(both_stored, "both unseen messages are committed")
    await eventually(lambda: _seen(client, {1, 2}), "both are flagged \\Seen after commit")

    async def refused_flagged() -> bool:
        return REFUSED_KEYWORD in (await flags(client)).get(3, "")

    await eventually(refused_flagged, "the unattributable message is flagged as refused")
    assert "\\Seen" not in (await flags(client))[3]  # kept unseen for a person to look at

    # New mail while the poller IDLEs.
    await client.append(raw("Third", "<i3@customer.test>"), mailbox="INBOX")

    async def third() -> bool:
        return bool(await messages_with(services, "<i3@customer.test>"))

    await eventually(third, "IDLE delivered the new message")

    # The mailbox forgets our \Seen (another client, or a crash before STORE): refetched,
    # stored once.
    assert (await client.uid("store", "1", "-FLAGS", "(\\Seen)")).result == "OK"
    await client.append(raw("Fourth", "<i4@customer.test>"), mailbox="INBOX")

    async def fourth() -> bool:
        return bool(await messages_with(services, "<i4@customer.test>"))

    await eventually(fourth, "the next round ran")
    await eventually(lambda: _seen(client, {1, 2, 4, 5}), "all flagged again")
    assert len(await messages_with(services, "<i1@customer.test>")) == 1
    [first] = await messages_with(services, "<i1@customer.test>")
    assert first.meta["email"]["transport"] == "imap"
    assert runtime.poller is not None and runtime.poller.rounds >= 3


async def _seen(client: aioimaplib.IMAP4, uids: set[int]) -> bool:
    current = await flags(client)
    return all("\\Seen" in current.get(uid, "") for uid in uids)
