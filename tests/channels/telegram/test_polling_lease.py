"""Two hub processes on one database with one Telegram inbox saved by an admin: exactly one
polls getUpdates (the lease holder), and the other still sends replies."""

from __future__ import annotations

from pathlib import Path

from litestar.channels import ChannelsPlugin

from channels.base import Address, AddressKind, ChannelKind, DeliveryStatus, OutboundMessage
from channels.telegram.runtime import start_telegram
from channels.telegram.settings import TelegramSettings
from hub.inboxes import InboxLinks, save_inbox
from hub.leases import LeaseKeeper
from hub.services import Services
from hub.settings import Settings
from models import Inbox
from tests.channels.telegram.botapi import LocalBotApi
from tests.channels.telegram.conftest import TOKEN


async def test_one_process_polls_and_both_send(
    services: Services,
    bot_api: LocalBotApi,
    telegram_inbox: Inbox,
    tmp_path: Path,
    database_url: str,
    channels_plugin: ChannelsPlugin,
) -> None:
    async with services.sessionmaker() as db:
        await save_inbox(
            db,
            user_id=None,
            inbox_id=telegram_inbox.id,
            kind="telegram",
            links=InboxLinks(
                telegram_inbox.name, telegram_inbox.default_queue_id, None, None, True
            ),
            form={"token": TOKEN, "api_base_url": bot_api.url, "mode": "polling"},
        )
    other = Services.build(
        Settings(var_dir=tmp_path / "b", database_url=database_url, node_name="node-b"),
        channels_plugin,
    )
    env = TelegramSettings(poll_timeout=1)  # no HUB_TELEGRAM_TOKEN: the inbox's own token
    stoppers = []
    try:
        for node, hub in (("node-a", services), ("node-b", other)):
            hub.extras["leases"] = LeaseKeeper(hub.sessionmaker, node, ttl=5.0, renew=0.2)
            stoppers += await start_telegram(hub, env)
        polling = [hub.extras["telegram_runtime"].bots for hub in (services, other)]
        assert [list(bots) for bots in polling] == [[telegram_inbox.id], []]

        reply = OutboundMessage(
            message_id=1,
            interaction_id=1,
            inbox_id=telegram_inbox.id,
            channel=ChannelKind.TELEGRAM,
            to=Address(AddressKind.TELEGRAM, "4242"),
            body="sent by the process that does not poll",
        )
        result = await other.extras["telegram_runtime"].senders.send(reply)
        assert result.status == DeliveryStatus.SENT, result.detail
        assert [c.params["text"] for c in bot_api.calls_to("sendMessage")] == [reply.body]
    finally:
        for stop in reversed(stoppers):
            await stop()
        await other.close()
