"""Run the SMS adapters of every SMS inbox, and restart one when an admin saves it.

An inbox runs an SMPP account when its config names an SMPP host, or when it is the
inbox the environment's account serves (``HUB_SMS_SMPP_HOST`` with
``HUB_SMS_SMPP_INBOX_ID``, or the first active SMS inbox); the same for the HTTP
(Twilio-compatible) provider. Its settings are the ``HUB_SMS_*`` values with the inbox's
saved values over them. An SMPP bind runs under a database lease (``smpp:<inbox>``) when
the hub has leases, so with several hub processes exactly one holds it; a reply written in
another process is handed to the holder over the bus (``outbox``/``deliver``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from channels.base import ChannelKind, DeliveryStatus, OutboundMessage, SendResult
from channels.inbox_senders import InboxSenders
from channels.sms.mo import DedupeWindow, PartSpool
from channels.sms.settings import SmsSettings
from channels.sms.smpp_channel import SmppChannel
from channels.sms.smpp_client import SmppConfig
from hub.inbox_config import overlay
from hub.inboxes import DELIVER_EVENT, OUTBOX_TOPIC
from hub.services import Services
from models import Inbox

if TYPE_CHECKING:
    from channels.sms.twilio import TwilioChannel

log = logging.getLogger(__name__)

Stopper = Callable[[], Awaitable[None]]
SmsSenders = InboxSenders  # the name older callers know


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


def inbox_settings(
    env: SmsSettings, inbox: Inbox, smpp_target: int | None, twilio_target: int | None
) -> tuple[SmsSettings, bool, bool]:
    """The inbox's settings and whether it runs SMPP and/or the HTTP provider."""
    config: dict[str, Any] = dict(inbox.config or {})
    settings = overlay(env, config)
    smpp = bool(config.get("smpp_host")) or (env.smpp_enabled and inbox.id == smpp_target)
    http = bool(config.get("twilio_account_sid")) or (
        env.twilio_enabled and inbox.id == twilio_target
    )
    if config.get("provider") == "smpp":
        http = False
    elif config.get("provider") == "http":
        smpp = False
    return settings, smpp and settings.smpp_enabled, http and settings.twilio_enabled


class SmsRuntime:
    """The SMS adapters of this process, per inbox (``services.extras["sms"]``)."""

    def __init__(self, services: Services, env: SmsSettings) -> None:
        self.services = services
        self.env = env
        self.senders = InboxSenders(ChannelKind.SMS, forward=self._forward)
        self.smpp: dict[int, SmppChannel] = {}
        self.leased: set[int] = set()  # inboxes whose SMPP bind runs under a lease
        self.twilio: dict[int, TwilioChannel] = {}
        self._stoppers: dict[int, list[Stopper]] = {}

    async def _targets(self) -> tuple[int | None, int | None]:
        async def target(enabled: bool, configured: int) -> int | None:
            if not enabled:
                return None
            return configured or await first_inbox(self.services, ChannelKind.SMS)

        return (
            await target(self.env.smpp_enabled, self.env.smpp_inbox_id),
            await target(self.env.twilio_enabled, self.env.twilio_inbox_id),
        )

    async def start(self) -> None:
        smpp_target, twilio_target = await self._targets()
        async with self.services.sessionmaker() as db:
            inboxes = (
                await db.exec(
                    select(Inbox)
                    .where(Inbox.kind == ChannelKind.SMS.value, col(Inbox.active).is_(True))
                    .order_by(col(Inbox.id))
                )
            ).all()
        for inbox in inboxes:
            await self._start_inbox(inbox, smpp_target, twilio_target)
        self.services.outbox.register(ChannelKind.SMS, self.senders)

    async def reload(self, inbox_id: int) -> None:
        """Stop the inbox's adapters and start them again with what is saved now."""
        await self._stop_inbox(inbox_id)
        async with self.services.sessionmaker() as db:
            inbox = await db.get(Inbox, inbox_id)
        if inbox is None or not inbox.active or inbox.kind != ChannelKind.SMS.value:
            return
        try:
            smpp_target, twilio_target = await self._targets()
        except LookupError:
            smpp_target = twilio_target = None
        await self._start_inbox(inbox, smpp_target, twilio_target)

    async def stop(self) -> None:
        for inbox_id in list(self._stoppers):
            await self._stop_inbox(inbox_id)

    async def _forward(self, message: OutboundMessage) -> SendResult | None:
        """A reply on an inbox whose bind another process holds goes to that process."""
        if message.inbox_id not in self.leased:
            return None
        await self.services.bus.publish(
            OUTBOX_TOPIC,
            DELIVER_EVENT,
            kind=ChannelKind.SMS.value,
            inbox_id=message.inbox_id,
            message_id=message.message_id,
        )
        return SendResult(DeliveryStatus.PENDING, detail="handed to the process holding the bind")

    async def _stop_inbox(self, inbox_id: int) -> None:
        self.leased.discard(inbox_id)
        self.senders.remove(inbox_id)
        self.smpp.pop(inbox_id, None)
        self.twilio.pop(inbox_id, None)
        for stop in reversed(self._stoppers.pop(inbox_id, [])):
            try:
                await stop()
            except Exception:
                log.exception("stopping the SMS adapter of inbox %s failed", inbox_id)
        self._sync_extras()

    def _sync_extras(self) -> None:
        """``extras["sms_smpp"]``/``["sms_twilio"]``: the first adapter, as before."""
        for key, adapters in (("sms_smpp", self.smpp), ("sms_twilio", self.twilio)):
            if adapters:
                self.services.extras[key] = next(iter(adapters.values()))
            else:
                self.services.extras.pop(key, None)

    async def _start_inbox(
        self, inbox: Inbox, smpp_target: int | None, twilio_target: int | None
    ) -> None:
        assert inbox.id is not None
        inbox_id = inbox.id
        settings, smpp_on, http_on = inbox_settings(self.env, inbox, smpp_target, twilio_target)
        stoppers = self._stoppers.setdefault(inbox_id, [])
        if smpp_on:
            channel = self._smpp_channel(inbox_id, settings, inbox_id == smpp_target)
            leases = self.services.extras.get("leases")
            if leases is None:
                await channel.start()
                self._serve_smpp(inbox_id, channel)
                stoppers.append(channel.stop)
            else:

                async def start(channel: SmppChannel = channel) -> None:
                    await channel.start()
                    self._serve_smpp(inbox_id, channel)

                async def stop(channel: SmppChannel = channel) -> None:
                    if self.smpp.get(inbox_id) is channel:
                        self.smpp.pop(inbox_id, None)
                        self.senders.remove(inbox_id)
                        self._sync_extras()
                    await channel.stop()

                self.leased.add(inbox_id)
                stoppers.append(await leases.hold(f"smpp:{inbox_id}", start, stop))
            log.info(
                "SMPP adapter for inbox %s → %s:%s",
                inbox_id,
                settings.smpp_host,
                settings.smpp_port,
            )
        if http_on:
            from channels.sms.twilio import TwilioChannel

            twilio = TwilioChannel(
                self.services.ingest, inbox_id, settings, self.services.settings.public_url
            )
            self.twilio[inbox_id] = twilio
            self.senders.set(inbox_id, twilio)
            stoppers.append(twilio.close)
        self._sync_extras()

    def _serve_smpp(self, inbox_id: int, channel: SmppChannel) -> None:
        self.smpp[inbox_id] = channel
        self.senders.set(inbox_id, channel)
        self._sync_extras()

    def _smpp_channel(self, inbox_id: int, s: SmsSettings, env_inbox: bool) -> SmppChannel:
        spool = s.spool_path(self.services.settings.var_dir)
        if not env_inbox:  # the environment's inbox keeps the spool it always had
            spool = spool / f"inbox-{inbox_id}"
        return SmppChannel(
            self.services.ingest,
            inbox_id,
            SmppConfig(
                host=s.smpp_host,
                port=s.smpp_port,
                system_id=s.smpp_system_id,
                password=s.smpp_password,
                system_type=s.smpp_system_type,
                enquire_link_seconds=s.smpp_enquire_link_seconds,
                response_timeout=s.smpp_response_timeout,
                reconnect_max_seconds=s.smpp_reconnect_max_seconds,
                window=s.smpp_window,
            ),
            source_addr=s.source_addr,
            spool=PartSpool(spool),
            dedupe=DedupeWindow(s.mo_dedupe_seconds, journal=spool / "mo-seen.journal"),
            default_region=s.default_region,
            request_dlr=s.smpp_request_dlr,
        )


async def start_sms(services: Services, settings: SmsSettings | None = None) -> list[Stopper]:
    """Start every SMS inbox's adapters (``settings``: the environment's, by default)."""
    runtime = SmsRuntime(services, settings or SmsSettings.from_env())
    await runtime.start()
    services.extras["sms"] = runtime
    return [runtime.stop]
