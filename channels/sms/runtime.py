"""Start the SMS adapters the ``HUB_SMS_*`` settings enable and register the SMS sender."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlmodel import col, select

from channels.base import ChannelKind, ChannelSender, DeliveryStatus, OutboundMessage, SendResult
from channels.sms.mo import DedupeWindow, PartSpool
from channels.sms.settings import SmsSettings
from channels.sms.smpp_channel import SmppChannel
from channels.sms.smpp_client import SmppConfig
from hub.services import Services
from models import Inbox

log = logging.getLogger(__name__)

Stopper = Callable[[], Awaitable[None]]


class SmsSenders:
    """The one SMS sender the outbox knows; it picks the adapter serving the reply's inbox."""

    def __init__(self) -> None:
        self.by_inbox: dict[int, ChannelSender] = {}

    def add(self, inbox_id: int, sender: ChannelSender) -> None:
        self.by_inbox.setdefault(inbox_id, sender)

    async def send(self, message: OutboundMessage) -> SendResult:
        sender = self.by_inbox.get(message.inbox_id)
        if sender is None:
            return SendResult(
                DeliveryStatus.FAILED, detail=f"no SMS adapter serves inbox {message.inbox_id}"
            )
        return await sender.send(message)


async def first_inbox(services: Services, kind: ChannelKind) -> int:
    async with services.sessionmaker() as db:
        inbox_id = (
            await db.exec(
                select(Inbox.id)
                .where(Inbox.kind == kind.value, col(Inbox.active).is_(True))
                .order_by(col(Inbox.id))
            )
        ).first()
    if inbox_id is None:
        raise LookupError(f"no active {kind.value} inbox; create one or set its id")
    return inbox_id


async def start_sms(services: Services, settings: SmsSettings | None = None) -> list[Stopper]:
    settings = settings or SmsSettings.from_env()
    senders = SmsSenders()
    stoppers: list[Stopper] = []
    if settings.smpp_enabled:
        inbox_id = settings.smpp_inbox_id or await first_inbox(services, ChannelKind.SMS)
        channel = SmppChannel(
            services.ingest,
            inbox_id,
            SmppConfig(
                host=settings.smpp_host,
                port=settings.smpp_port,
                system_id=settings.smpp_system_id,
                password=settings.smpp_password,
                system_type=settings.smpp_system_type,
                enquire_link_seconds=settings.smpp_enquire_link_seconds,
                response_timeout=settings.smpp_response_timeout,
                reconnect_max_seconds=settings.smpp_reconnect_max_seconds,
                window=settings.smpp_window,
            ),
            source_addr=settings.source_addr,
            spool=PartSpool(settings.spool_path(services.settings.var_dir)),
            dedupe=DedupeWindow(
                settings.mo_dedupe_seconds,
                journal=settings.spool_path(services.settings.var_dir) / "mo-seen.journal",
            ),
            default_region=settings.default_region,
            request_dlr=settings.smpp_request_dlr,
        )
        await channel.start()
        senders.add(inbox_id, channel)
        services.extras["sms_smpp"] = channel
        stoppers.append(channel.stop)
        log.info(
            "SMPP adapter for inbox %s → %s:%s", inbox_id, settings.smpp_host, settings.smpp_port
        )
    if settings.twilio_enabled:
        from channels.sms.twilio import TwilioChannel

        inbox_id = settings.twilio_inbox_id or await first_inbox(services, ChannelKind.SMS)
        twilio = TwilioChannel(services.ingest, inbox_id, settings, services.settings.public_url)
        senders.add(inbox_id, twilio)
        services.extras["sms_twilio"] = twilio
        stoppers.append(twilio.close)
    if senders.by_inbox:
        services.outbox.register(ChannelKind.SMS, senders)
    return stoppers
