"""An SMS inbox saved by an admin binds with its new settings without a restart, and with
two hub processes on one database exactly one holds the bind, a reply written in the other
is sent through it, and the other takes over when the holder stops (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from litestar.channels import ChannelsPlugin

from channels.base import DeliveryStatus
from channels.sms.settings import SmsSettings
from hub.channel_runtime import reload_inbox, start_config_listener
from hub.inboxes import InboxLinks, save_inbox, set_active
from hub.leases import LeaseKeeper
from hub.services import Services
from hub.settings import Settings
from models import Inbox, Lease
from tests.channels.sms.conftest import Smsc
from tests.channels.sms.test_smpp_peer import deliver_mo, inbound, wait_for_status

ENV = dict(smpp_reconnect_max_seconds=0.5, smpp_enquire_link_seconds=30.0)


def keeper(services: Services, node: str) -> LeaseKeeper:
    return LeaseKeeper(services.sessionmaker, node, ttl=5.0, renew=0.2)


async def _configure(services: Services, inbox: Inbox, port: int, system_id: str) -> None:
    async with services.sessionmaker() as db:
        await save_inbox(
            db,
            user_id=None,
            inbox_id=inbox.id,
            kind="sms",
            links=InboxLinks(inbox.name, inbox.default_queue_id, inbox.hours_id, None, True),
            form={
                "provider": "smpp",
                "smpp_host": "127.0.0.1",
                "smpp_port": str(port),
                "smpp_system_id": system_id,
                "smpp_password": "pw",
            },
        )


async def test_a_saved_inbox_binds_and_one_process_holds_it(
    services: Services,
    smsc: Smsc,
    sms_inbox: Inbox,
    tmp_path: Path,
    database_url: str,
    channels_plugin: ChannelsPlugin,
) -> None:
    from channels.sms.runtime import start_sms

    services.extras["leases"] = keeper(services, "node-a")
    env = SmsSettings(spool_dir=str(tmp_path / "a"), **ENV)
    stop_a = (await start_sms(services, env))[0]
    assert services.extras["sms"].smpp == {}  # nothing configured yet: no bind

    await _configure(services, sms_inbox, smsc.port, "hub-a")
    await reload_inbox(services, sms_inbox.id, "sms")  # what the bus event triggers
    esme = await smsc.esme()
    assert esme.system_id == "hub-a"

    other = Services.build(
        Settings(var_dir=tmp_path / "b", database_url=database_url, node_name="node-b"),
        channels_plugin,
    )
    other.extras["leases"] = keeper(other, "node-b")
    try:
        stop_b = (await start_sms(other, SmsSettings(spool_dir=str(tmp_path / "b"), **ENV)))[0]
        await asyncio.sleep(1.0)  # five renewal rounds of node-b
        assert smsc.binds.empty(), "a second process bound while the first holds the lease"
        assert other.extras["sms"].smpp == {}

        # a reply written in node-b goes out through node-a's bind
        listeners = [start_config_listener(hub) for hub in (services, other)]
        await asyncio.sleep(0.2)  # both subscribed
        assert await deliver_mo(esme, "hello") == 0
        (mo,) = await inbound(services)
        reply = await other.outbox.reply(mo.interaction_id, body="answered by b", agent_id=None)
        _id, submit = await smsc.submitted()
        assert submit.short_message.decode() == "answered by b"
        await wait_for_status(services, reply.id, DeliveryStatus.SENT)
        for stop in listeners:
            await stop()

        await stop_a()  # node-a stops cleanly: the lease is released, node-b takes over
        assert (await smsc.esme()).system_id == "hub-a"
        assert list(other.extras["sms"].smpp) == [sms_inbox.id]

        # deactivated: the adapter stops and gives the lease up
        async with other.sessionmaker() as db:
            await set_active(db, user_id=None, inbox_id=sms_inbox.id, active=False)
        await reload_inbox(other, sms_inbox.id, "sms")
        assert other.extras["sms"].smpp == {}
        async with other.sessionmaker() as db:
            assert await db.get(Lease, f"smpp:{sms_inbox.id}") is None
        await stop_b()
    finally:
        await other.close()
