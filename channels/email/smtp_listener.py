"""The inbound SMTP listener (RFC 5321), on the app's own event loop.

aiosmtpd speaks the protocol; this handler decides the replies:

- ``RCPT TO`` outside our domains or to an unknown mailbox: 550 (5.7.1 / 5.1.1);
- a message over the size limit: 552, from aiosmtpd's ``data_size_limit`` (both for the
  ``SIZE=`` announced in ``MAIL FROM``, RFC 1870, and for the data actually sent);
- a message we cannot attribute (no header section, no From): 554 5.6.0;
- a failure of ours (database down): 451 4.3.0, so the peer keeps the message and retries;
- 250 only once ``EmailIntake.receive`` has returned, i.e. after the commit. A peer that
  loses the connection before our 250 retries, and the Message-ID dedupes the copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.intake import EmailIntake
from channels.email.mime import MalformedMessage
from channels.email.recipients import RecipientMap, RecipientRefused
from hub.ingest import UnknownInbox

log = logging.getLogger(__name__)


class HubSmtpHandler:
    """aiosmtpd's duck-typed handler: ``handle_RCPT`` and ``handle_DATA``."""

    def __init__(self, intake: EmailIntake, recipients: RecipientMap) -> None:
        self.intake = intake
        self.recipients = recipients

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        try:
            self.recipients.resolve(address)
        except RecipientRefused as refused:
            return refused.reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            targets = [self.recipients.resolve(r) for r in envelope.rcpt_tos]
            receipt = await self.intake.receive(raw or b"", targets, envelope.mail_from)
        except MalformedMessage as exc:
            return f"554 5.6.0 Message refused, it is malformed: {exc}"
        except RecipientRefused as refused:
            return refused.reply
        except UnknownInbox as exc:
            return f"550 5.1.1 Mailbox unavailable: {exc}"
        except Exception:
            log.exception("SMTP message from %s could not be stored", envelope.mail_from)
            return "451 4.3.0 Temporary failure storing the message, please retry"
        if receipt.bounce_for:
            return "250 2.0.0 Delivery report received"
        ids = ",".join(str(r.message_id) for r in receipt.results)
        return f"250 2.0.0 Message accepted ({ids})"


class SmtpListener:
    """An aiosmtpd server bound on the running loop (no thread, unlike its Controller)."""

    def __init__(
        self,
        handler: Any,
        *,
        host: str,
        port: int,
        hostname: str,
        data_size_limit: int,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.hostname = hostname
        self.data_size_limit = data_size_limit
        self._server: asyncio.Server | None = None

    def _protocol(self) -> SMTP:
        return SMTP(
            self.handler,
            hostname=self.hostname,
            ident="Contact Hub ESMTP",
            data_size_limit=self.data_size_limit,
            decode_data=False,
            enable_SMTPUTF8=True,
            loop=asyncio.get_running_loop(),
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)
        sockets = self._server.sockets or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]  # when started on port 0
        log.info("SMTP listener on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def stopper(self) -> Callable[[], Awaitable[None]]:
        return self.stop
