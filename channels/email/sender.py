"""Outbound email through a relay with aiosmtplib: threading headers, retries, a status.

RFC 5321 §4.2.1: a 4yz reply (and a dropped connection) is transient, so we retry with
exponential backoff; a 5yz reply is permanent, so the message fails at once with the
server's own words as the detail the agent sees. The generated Message-ID is returned as
the provider id even on failure, so a later DSN (RFC 3464) can still find the message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from email.message import EmailMessage

import aiosmtplib
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import DeliveryStatus, OutboundMessage, SendResult
from channels.email.compose import Quoted, build_reply, new_message_id
from channels.email.settings import EmailSettings
from models import Direction, Inbox, Message

log = logging.getLogger(__name__)


def _permanent(exc: Exception) -> bool:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code >= 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code >= 500
    return False


def _describe(exc: Exception) -> str:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return f"{type(exc).__name__}: {exc}"


class SmtpSender:
    """A ``ChannelSender`` for email; one per process, registered with the outbox."""

    def __init__(
        self,
        settings: EmailSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._sessionmaker = sessionmaker
        self._sleep = sleep

    async def send(self, message: OutboundMessage) -> SendResult:
        if not message.to.value or "@" not in message.to.value:
            return SendResult(DeliveryStatus.FAILED, detail="the contact has no email address")
        inbox_name, previous, answered = await self._context(message)
        if answered and answered in message.references:
            # In-Reply-To names the customer's message, not our own acknowledgement.
            message = replace(message, in_reply_to=answered)
        message_id = new_message_id(self.settings.hostname)
        email = build_reply(
            message,
            from_address=self.settings.address_for(inbox_name),
            from_name=inbox_name,
            message_id=message_id,
            previous=previous,
            automatic=bool(message.meta.get("auto_ack")),
        )
        return await self.deliver(email, message_id)

    async def deliver(self, email: EmailMessage, message_id: str) -> SendResult:
        s = self.settings
        attempts = max(1, s.send_attempts)
        last = "not attempted"
        for attempt in range(1, attempts + 1):
            try:
                await aiosmtplib.send(
                    email,
                    hostname=s.relay_host,
                    port=s.relay_port,
                    username=s.relay_username or None,
                    password=s.relay_password or None,
                    start_tls=s.relay_starttls,
                    use_tls=False,
                    tls_context=s.tls_context() if s.relay_starttls else None,
                    timeout=30,
                )
            except (aiosmtplib.SMTPException, OSError) as exc:
                last = _describe(exc)
                if _permanent(exc):
                    return SendResult(DeliveryStatus.FAILED, message_id, f"refused: {last}")
                log.warning("email %s attempt %d/%d: %s", message_id, attempt, attempts, last)
                if attempt < attempts:
                    await self._sleep(s.backoff_seconds * 2 ** (attempt - 1))
                continue
            detail = f"accepted by {s.relay_host}:{s.relay_port}"
            if attempt > 1:
                detail += f" after {attempt} attempts"
            return SendResult(DeliveryStatus.SENT, message_id, detail)
        return SendResult(
            DeliveryStatus.FAILED, message_id, f"gave up after {attempts} attempts: {last}"
        )

    async def _context(self, message: OutboundMessage) -> tuple[str, Quoted | None, str | None]:
        """The inbox's name (our From), the customer's latest message (quoted) and its id."""
        async with self._sessionmaker() as db:
            inbox = await db.get(Inbox, message.inbox_id)
            earlier = (
                await db.exec(
                    select(Message)
                    .where(
                        Message.interaction_id == message.interaction_id,
                        Message.direction == Direction.INBOUND,
                        col(Message.private).is_(False),
                        col(Message.id) < message.message_id,
                    )
                    .order_by(col(Message.id).desc())
                    .limit(1)
                )
            ).first()
        name = inbox.name if inbox else "Contact Hub"
        if earlier is None:
            return name, None, None
        previous = Quoted(author=message.to.value, sent_at=earlier.created_at, body=earlier.body)
        return name, previous, earlier.source_id
