"""Start the email channel inside the hub process: listener, sender, IMAP poller.

Called from ``hub.channel_runtime.start_channels``. Each part starts only when its settings
ask for it: ``HUB_EMAIL_LISTEN=1`` (SMTP listener), ``HUB_EMAIL_RELAY_HOST`` (outbound
sender), ``HUB_EMAIL_IMAP_HOST`` (IMAP poller). Stop callables go to
``services.extras["stoppers"]``; the running parts are kept in ``services.extras["email"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from channels.base import ChannelKind
from channels.email.intake import EmailIntake
from channels.email.recipients import RecipientMap
from channels.email.sender import SmtpSender
from channels.email.settings import EmailSettings
from channels.email.smtp_listener import HubSmtpHandler, SmtpListener

if TYPE_CHECKING:
    from channels.email.imap_poller import ImapPoller
    from hub.services import Services


@dataclass
class EmailRuntime:
    settings: EmailSettings
    intake: EmailIntake
    recipients: RecipientMap
    listener: SmtpListener | None = None
    sender: SmtpSender | None = None
    poller: ImapPoller | None = None

    async def reload_recipients(self, services: Services) -> None:
        """Re-read inbox addresses after an admin changed them (no restart needed)."""
        self.recipients = await RecipientMap.load(self.settings, services.sessionmaker)
        if self.listener is not None:
            self.listener.handler.recipients = self.recipients


async def start_email(services: Services, settings: EmailSettings | None = None) -> EmailRuntime:
    settings = settings or EmailSettings.from_env()
    stoppers = services.extras.setdefault("stoppers", [])
    fax_runtime = services.extras.get("fax")  # started first: faxes sent as email attachments
    intake = EmailIntake(services, settings, fax=fax_runtime.intake if fax_runtime else None)
    recipients = await RecipientMap.load(settings, services.sessionmaker)
    runtime = EmailRuntime(settings, intake, recipients)
    if settings.relay_host:
        runtime.sender = SmtpSender(settings, services.sessionmaker)
        services.outbox.register(ChannelKind.EMAIL, runtime.sender)
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
    if settings.imap_host:
        from channels.email.imap_poller import ImapPoller

        target = next(
            (t for t in recipients.inboxes.values() if t.name == settings.imap_inbox), None
        )
        if target is None:
            raise LookupError(f"HUB_EMAIL_IMAP_INBOX names no active inbox: {settings.imap_inbox}")
        runtime.poller = ImapPoller(settings, intake, target)
        runtime.poller.start()
        stoppers.append(runtime.poller.stop)
    services.extras["email"] = runtime
    return runtime
