"""Run the bot of every Telegram inbox, and restart one when an admin saves it.

An inbox runs a bot when its config holds a token, or when it is the inbox the
environment's bot serves (``HUB_TELEGRAM_TOKEN`` with ``HUB_TELEGRAM_INBOX_ID``, or the
first active Telegram inbox). Its settings are the ``HUB_TELEGRAM_*`` values with the
inbox's saved values over them. A polling bot polls under a database lease
(``telegram:<inbox>``) when the hub has leases: Telegram answers ``getUpdates`` to one
poller only; every process still sends replies. A webhook bot needs no lease (Telegram
posts each update to one URL).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlmodel import col, select

from channels.base import ChannelKind
from channels.inbox_senders import InboxSenders
from channels.sms.runtime import first_inbox
from channels.telegram.channel import TelegramChannel
from channels.telegram.settings import TelegramSettings
from hub.inbox_config import overlay
from hub.services import Services
from models import Inbox

log = logging.getLogger(__name__)

Stopper = Callable[[], Awaitable[None]]


class TelegramRuntime:
    """The bots of this process, per inbox (``services.extras["telegram_runtime"]``)."""

    def __init__(self, services: Services, env: TelegramSettings) -> None:
        self.services = services
        self.env = env
        self.senders = InboxSenders(ChannelKind.TELEGRAM)
        self.bots: dict[int, TelegramChannel] = {}
        self._stoppers: dict[int, Stopper] = {}

    async def _target(self) -> int | None:
        if not self.env.enabled:
            return None
        return self.env.inbox_id or await first_inbox(self.services, ChannelKind.TELEGRAM)

    async def start(self) -> None:
        target = await self._target()
        async with self.services.sessionmaker() as db:
            inboxes = (
                await db.exec(
                    select(Inbox)
                    .where(Inbox.kind == ChannelKind.TELEGRAM.value, col(Inbox.active).is_(True))
                    .order_by(col(Inbox.id))
                )
            ).all()
        for inbox in inboxes:
            await self._start_inbox(inbox, target)
        self.services.outbox.register(ChannelKind.TELEGRAM, self.senders)

    async def reload(self, inbox_id: int) -> None:
        await self._stop_inbox(inbox_id)
        async with self.services.sessionmaker() as db:
            inbox = await db.get(Inbox, inbox_id)
        if inbox is None or not inbox.active or inbox.kind != ChannelKind.TELEGRAM.value:
            return
        try:
            target = await self._target()
        except LookupError:
            target = None
        await self._start_inbox(inbox, target)

    async def stop(self) -> None:
        for inbox_id in list(self._stoppers):
            await self._stop_inbox(inbox_id)

    async def _stop_inbox(self, inbox_id: int) -> None:
        self._unserve(inbox_id)
        stop = self._stoppers.pop(inbox_id, None)
        if stop is not None:
            try:
                await stop()
            except Exception:
                log.exception("stopping the Telegram bot of inbox %s failed", inbox_id)

    def _serve(self, inbox_id: int, bot: TelegramChannel) -> None:
        self.bots[inbox_id] = bot
        self.senders.set(inbox_id, bot)
        self.services.extras["telegram"] = next(iter(self.bots.values()))

    def _unserve(self, inbox_id: int) -> None:
        self.bots.pop(inbox_id, None)
        self.senders.remove(inbox_id)
        self._sync_extras()

    def _sync_extras(self) -> None:
        if self.bots:
            self.services.extras["telegram"] = next(iter(self.bots.values()))
        else:
            self.services.extras.pop("telegram", None)

    async def _start_inbox(self, inbox: Inbox, target: int | None) -> None:
        assert inbox.id is not None
        inbox_id = inbox.id
        config = dict(inbox.config or {})
        if not config.get("token") and inbox_id != target:
            return
        settings = overlay(self.env, config)
        if not settings.enabled:
            return
        settings.check()
        bot = TelegramChannel(self.services.ingest, inbox_id, settings)
        leases = self.services.extras.get("leases")
        if leases is None or settings.mode != "polling":
            await bot.start()
            self._serve(inbox_id, bot)
            self._stoppers[inbox_id] = bot.stop
            return

        # Only the lease holder polls; every process sends (sendMessage is plain HTTP).
        self.senders.set(inbox_id, bot)

        async def start() -> None:
            await bot.start()
            self._serve(inbox_id, bot)

        async def stop() -> None:
            if self.bots.get(inbox_id) is bot:
                self.bots.pop(inbox_id, None)
                self._sync_extras()
            await bot.stop()

        release = await leases.hold(f"telegram:{inbox_id}", start, stop)

        async def stop_all() -> None:
            await release()
            await bot.bot.shutdown()  # a send-only bot was initialized on its first send

        self._stoppers[inbox_id] = stop_all


async def start_telegram(
    services: Services, settings: TelegramSettings | None = None
) -> list[Stopper]:
    runtime = TelegramRuntime(services, settings or TelegramSettings.from_env())
    await runtime.start()
    services.extras["telegram_runtime"] = runtime
    return [runtime.stop]
