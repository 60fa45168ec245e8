"""Start the Telegram adapter when ``HUB_TELEGRAM_TOKEN`` is set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from channels.base import ChannelKind
from channels.sms.runtime import first_inbox
from channels.telegram.channel import TelegramChannel
from channels.telegram.settings import TelegramSettings
from hub.services import Services

Stopper = Callable[[], Awaitable[None]]


async def start_telegram(
    services: Services, settings: TelegramSettings | None = None
) -> list[Stopper]:
    settings = settings or TelegramSettings.from_env()
    if not settings.enabled:
        return []
    settings.check()
    inbox_id = settings.inbox_id or await first_inbox(services, ChannelKind.TELEGRAM)
    channel = TelegramChannel(services.ingest, inbox_id, settings)
    await channel.start()
    services.extras["telegram"] = channel
    services.outbox.register(ChannelKind.TELEGRAM, channel)
    return [channel.stop]
