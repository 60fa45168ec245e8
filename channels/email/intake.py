"""One received message → committed in the hub (the SMTP listener and IMAP poller share it).

``EmailIntake.receive`` returns only after every target inbox has committed the message,
so its caller may then acknowledge (SMTP 250, IMAP ``\\Seen``). A DSN is not stored as a
customer message: it marks the original outbound message failed. A message sent to a fax
inbox (a fax-to-email gateway) has its TIFF/PDF attachments OCR'd as a fax.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    DeliveryUpdate,
    InboundMessage,
    IngestResult,
)
from channels.email.autoreply import ack_body, ack_settings, suppression_reason
from channels.email.dsn import parse_dsn
from channels.email.mime import ParsedEmail, ParseLimits, parse_message
from channels.email.recipients import InboxTarget
from channels.email.settings import EmailSettings
from models import Inbox, Message, SenderKind

if TYPE_CHECKING:
    from channels.fax.intake import FaxIntake
    from hub.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What happened to one received message (for logs, tests and the SMTP reply)."""

    results: tuple[IngestResult, ...] = ()
    bounce_for: str | None = None  # the Message-ID a DSN reported on
    acknowledged: tuple[int, ...] = ()  # interactions that got an auto-acknowledgement


class InboxConfigs:
    """Inbox configs read afresh for every message, one query for all who ask at once.

    Admins change an inbox's acknowledgement at run time, so each message reads its inbox
    again. A read answers only those who asked before it started (later askers wait for
    the next one), so nobody gets a config older than their question; the SMTP sessions
    whose commits finished together share one read instead of one session each.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._waiting: dict[int, list[asyncio.Future[dict[str, Any] | None]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def get(self, inbox_id: int) -> dict[str, Any] | None:
        """The inbox's config as committed now; None when the inbox no longer exists."""
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(inbox_id, []).append(future)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="email-inbox-configs")
        return await future

    async def _read(self) -> None:
        while self._waiting:
            waiting, self._waiting = self._waiting, {}
            try:
                async with self._sessionmaker() as db:
                    query = select(Inbox.id, Inbox.config).where(col(Inbox.id).in_(waiting))
                    configs = {i: dict(c or {}) for i, c in (await db.exec(query)).all()}
            except Exception as exc:  # this read's askers fail, as their own reads would have
                for futures in waiting.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for inbox_id, futures in waiting.items():
                for future in futures:
                    if not future.done():
                        future.set_result(configs.get(inbox_id))


class EmailIntake:
    def __init__(
        self, services: Services, settings: EmailSettings, fax: FaxIntake | None = None
    ) -> None:
        self.services = services
        self.settings = settings
        self.fax = fax
        self.limits = ParseLimits(settings.max_attachment_bytes, settings.max_attachments)
        self.inbox_configs = InboxConfigs(services.sessionmaker)

    async def receive(
        self,
        raw: bytes,
        targets: list[InboxTarget],
        envelope_from: str | None,
        *,
        transport: str = "smtp",
    ) -> Receipt:
        """Parse and commit ``raw`` for each target inbox; raises MalformedMessage (554)."""
        report = parse_dsn(raw) if b"multipart/report" in raw[:65536].lower() else None
        if report is not None and report.original_message_id:
            for target in targets:
                if report.status is None:
                    continue
                update = DeliveryUpdate(
                    target.id, report.original_message_id, report.status, report.detail
                )
                if await self.services.ingest.update_delivery(update):
                    log.info("DSN: %s %s", report.original_message_id, report.detail)
            return Receipt(bounce_for=report.original_message_id)
        parsed = parse_message(raw, self.limits, envelope_from)
        results: list[IngestResult] = []
        acked: list[int] = []
        for target in dict((t.id, t) for t in targets).values():
            if target.kind is ChannelKind.FAX and self.fax is not None:
                result = await self._receive_fax(parsed, target, transport)
            else:
                result = await self._ingest_email(parsed, target, transport)
            results.append(result)
            if (
                target.kind is ChannelKind.EMAIL
                and not result.duplicate
                and await self._auto_ack(parsed, target, result, envelope_from)
            ):
                acked.append(result.interaction_id)
        return Receipt(results=tuple(results), acknowledged=tuple(acked))

    async def _ingest_email(
        self, parsed: ParsedEmail, target: InboxTarget, transport: str
    ) -> IngestResult:
        """Store once per (Message-ID, content). The first message with a Message-ID keeps
        it as its ``source_id``, so replies that reference it thread. Another message
        that reuses the Message-ID with different content (a broken mailer, a forged id)
        is stored too, under the id plus its digest; a redelivery of either is a duplicate.
        Checked after the ingest, so two different messages racing in cannot shadow one
        another."""
        result = await self.services.ingest.ingest(self._inbound(parsed, target, transport))
        if not result.duplicate:
            return result
        async with self.services.sessionmaker() as db:
            stored = await db.get(Message, result.message_id)
        stored_digest = ((stored.meta or {}).get("email") or {}).get("digest") if stored else None
        if stored_digest in (None, parsed.content_digest):
            return result
        log.info("Message-ID %s reused by a different message: kept both", parsed.message_id)
        source_id = f"{parsed.message_id}#{parsed.content_digest[:16]}"
        return await self.services.ingest.ingest(
            self._inbound(parsed, target, transport, source_id=source_id)
        )

    def _inbound(
        self,
        parsed: ParsedEmail,
        target: InboxTarget,
        transport: str,
        source_id: str | None = None,
    ) -> InboundMessage:
        email_meta: dict[str, object] = {"transport": transport, "digest": parsed.content_digest}
        if parsed.synthesized_id:
            email_meta["message_id_missing"] = True
        meta: dict[str, object] = {"email": email_meta}
        return InboundMessage(
            inbox_id=target.id,
            channel=ChannelKind.EMAIL,
            sender=Address(AddressKind.EMAIL, parsed.from_address, parsed.from_name),
            body=parsed.text,
            source_id=source_id or parsed.message_id,
            # "html": no text part, so the console shows sanitize_html(html); else the text.
            content_type="html" if parsed.text_from_html else "text",
            html=parsed.html,
            subject=parsed.subject or None,
            attachments=parsed.attachments,
            thread_refs=parsed.thread_refs,
            problems=parsed.problems,
            meta=meta,
        )

    async def _receive_fax(
        self, parsed: ParsedEmail, target: InboxTarget, transport: str
    ) -> IngestResult:
        assert self.fax is not None
        from channels.fax.intake import number_from_text

        number = None
        for name in ("x-fax-from", "x-fax-number", "x-callerid", "x-fax-cid"):
            number = number_from_text(parsed.headers.get(name, ""))
            if number:
                break
        number = (
            number
            or number_from_text(parsed.subject)
            or number_from_text(parsed.from_address.split("@", 1)[0])
        )
        sender = (
            Address(AddressKind.PHONE, number)
            if number
            else Address(AddressKind.EMAIL, parsed.from_address, parsed.from_name)
        )
        problems = list(parsed.problems)
        if number is None:
            problems.append(
                "the fax gateway did not say which number sent this fax; "
                "the sender is its email address"
            )
        return await self.fax.receive_documents(
            inbox_id=target.id,
            sender=sender,
            documents=list(parsed.attachments),
            source_id=parsed.message_id,
            origin=f"email gateway ({transport}) from {parsed.from_address}",
            subject=parsed.subject or None,
            extra_body=parsed.text,
            problems=problems,
        )

    async def _auto_ack(
        self,
        parsed: ParsedEmail,
        target: InboxTarget,
        result: IngestResult,
        envelope_from: str | None,
    ) -> bool:
        reason = suppression_reason(parsed, envelope_from)
        if reason is not None:
            log.info("no auto-acknowledgement for %s: %s", parsed.message_id, reason)
            return False
        config = await self.inbox_configs.get(target.id)  # fresh: admins change it at run time
        enabled, text = ack_settings(
            target.config if config is None else config,
            self.settings.auto_ack,
            self.settings.auto_ack_text,
        )
        if not enabled:
            return False
        async with self.services.sessionmaker() as db:
            earlier = (
                await db.exec(
                    select(func.count()).where(
                        Message.interaction_id == result.interaction_id,
                        Message.sender_kind == SenderKind.SYSTEM,
                        col(Message.private).is_(False),
                    )
                )
            ).one()
        if earlier:
            return False  # one acknowledgement per thread, not one per message
        await self.services.outbox.reply(
            result.interaction_id,
            body=ack_body(text, result.interaction_id),
            agent_id=None,
            subject=parsed.subject or None,
            sender_kind=SenderKind.SYSTEM,
            meta={"auto_ack": True},
        )
        return True
