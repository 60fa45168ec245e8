"""Start the email channel inside the hub process: listener, senders, IMAP pollers.

Called from ``hub.channel_runtime.start_channels``. Each part starts only when its settings
ask for it: ``HUB_EMAIL_LISTEN=1`` (SMTP listener), ``HUB_EMAIL_RELAY_HOST`` (outbound
sender), ``HUB_EMAIL_IMAP_HOST`` (IMAP poller of ``HUB_EMAIL_IMAP_INBOX``). A mailbox
inbox whose config names its own relay or IMAP host gets its own sender or poller, with
the ``HUB_EMAIL_*`` values under its saved ones; ``reload`` restarts them after an admin
saved it. A poller runs under a database lease (``imap:<inbox>``) when the hub has leases.
Stop callables go to ``services.extras["stoppers"]``; the running parts are kept in
``services.extras["email"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from channels.base import ChannelKind
from channels.email.intake import EmailIntake
from channels.email.recipients import RecipientMap
from channels.email.sender import SmtpSender
from channels.email.settings import EmailSettings
from channels.email.smtp_listener import HubSmtpHandler, SmtpListener
from channels.inbox_senders import InboxSenders
from hub.inbox_config import overlay

if TYPE_CHECKING:
    from channels.email.imap_poller import ImapPoller
    from channels.email.recipients import InboxTarget
    from hub.services import Services

log = logging.getLogger(__name__)
Stopper = Callable[[], Awaitable[None]]


@dataclass
class EmailRuntime:
    settings: EmailSettings
    intake: EmailIntake
    recipients: RecipientMap
    listener: SmtpListener | None = None
    sender: SmtpSender | None = None  # the environment's relay
    poller: ImapPoller | None = None  # the environment's IMAP poller (first started)
    senders: InboxSenders = field(default_factory=lambda: InboxSenders(ChannelKind.EMAIL))
    pollers: dict[int, ImapPoller] = field(default_factory=dict)
    stoppers: dict[int, Stopper] = field(default_factory=dict)

    async def reload_recipients(self, services: Services) -> None:
        """Re-read inbox addresses after an admin changed them (no restart needed)."""
        self.recipients = await RecipientMap.load(self.settings, services.sessionmaker)
        if self.listener is not None:
            self.listener.handler.recipients = self.recipients

    async def start_inboxes(self, services: Services) -> None:
        for target in list(self.recipients.inboxes.values()):
            if target.kind == ChannelKind.EMAIL:
                await self._start_inbox(services, target)

    async def reload(self, services: Services, inbox_id: int) -> None:
        """An admin saved a mailbox: new addresses, and its sender and poller restarted."""
        await self._stop_inbox(inbox_id)
        await self.reload_recipients(services)
        target = self.recipients.inboxes.get(inbox_id)  # active inboxes only
        if target is not None and target.kind == ChannelKind.EMAIL:
            await self._start_inbox(services, target)

    async def stop_inboxes(self) -> None:
        for inbox_id in list(self.stoppers):
            await self._stop_inbox(inbox_id)

    async def _stop_inbox(self, inbox_id: int) -> None:
        self.senders.remove(inbox_id)
        stop = self.stoppers.pop(inbox_id, None)
        if stop is not None:
            try:
                await stop()
            except Exception:
                log.exception("stopping the IMAP poller of inbox %s failed", inbox_id)

    async def _start_inbox(self, services: Services, target: InboxTarget) -> None:
        config = target.config
        settings = overlay(self.settings, config)
        if config.get("relay_host"):
            self.senders.set(target.id, SmtpSender(settings, services.sessionmaker))
        env_target = bool(self.settings.imap_host) and target.name == self.settings.imap_inbox
        if not (config.get("imap_host") or env_target):
            return
        from channels.email.imap_poller import ImapPoller

        poller = ImapPoller(settings, self.intake, target)
        leases = services.extras.get("leases")

        async def start() -> None:
            poller.start()
            self.pollers[target.id] = poller
            if self.poller is None:
                self.poller = poller

        async def stop() -> None:
            if self.pollers.get(target.id) is poller:
                del self.pollers[target.id]
            if self.poller is poller:
                self.poller = None
            await poller.stop()

        if leases is None:
            await start()
            self.stoppers[target.id] = stop
        else:
            self.stoppers[target.id] = await leases.hold(f"imap:{target.id}", start, stop)


async def start_email(services: Services, settings: EmailSettings | None = None) -> EmailRuntime:
    settings = settings or EmailSettings.from_env()
    stoppers = services.extras.setdefault("stoppers", [])
    fax_runtime = services.extras.get("fax")  # started first: faxes sent as email attachments
    intake = EmailIntake(services, settings, fax=fax_runtime.intake if fax_runtime else None)
    recipients = await RecipientMap.load(settings, services.sessionmaker)
    runtime = EmailRuntime(settings, intake, recipients)
    if settings.relay_host:
        runtime.sender = SmtpSender(settings, services.sessionmaker)
        runtime.senders.fallback = runtime.sender
    services.outbox.register(ChannelKind.EMAIL, runtime.senders)
    if settings.listen:
        runtime.listener = SmtpListener(
            HubSmtpHandler(intake, recipients),
            host=settings.bind,
            port=settings.port,
            hostname=settings.hostname,
            data_size_limit=settings.max_message_bytes,
        )
        await runtime.listener.start()
        stoppers.append(runtime.listener.stop)
    if settings.imap_host and not any(
        t.name == settings.imap_inbox for t in recipients.inboxes.values()
    ):
        raise LookupError(f"HUB_EMAIL_IMAP_INBOX names no active inbox: {settings.imap_inbox}")
    await runtime.start_inboxes(services)
    stoppers.append(runtime.stop_inboxes)
    services.extras["email"] = runtime
    return runtime
