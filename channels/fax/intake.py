"""Received faxes (from the spool, the email gateway or the upload API) → the hub.

Every source ends here: documents are checked and decoded, OCR'd so the text is the message
body (searchable like any message), page images and thumbnails are stored, and one
``InboundMessage`` is ingested. ``receive_documents`` returns only after the commit, so the
caller may then acknowledge (move the spool file, answer 250 or 201).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import phonenumbers
import sqlalchemy as sa

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    InboundAttachment,
    InboundMessage,
    Ingestor,
    IngestResult,
)
from channels.fax.document import FaxDocument, RenderStopped, process_document, sniff
from channels.fax.ocr import OcrEngine
from channels.fax.settings import FaxSettings
from channels.fax.tiff import DocumentRefused
from channels.fax.worker import FaxWorkers
from hub.attachments import AttachmentStore
from hub.contacts import AddressError, normalize_phone
from models import Direction, Interaction, Message

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import async_sessionmaker
    from sqlmodel.ext.asyncio.session import AsyncSession

_DIGITS = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def number_from_text(text: str, region: str = "US") -> str | None:
    """The first phone number in ``text`` (a header, a subject, a TSI), in E.164."""
    if not text:
        return None
    for match in phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.POSSIBLE
    ):
        return phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
    found = _DIGITS.search(text)
    if found:
        try:
            number = phonenumbers.parse(found.group(0), region)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def content_source_id(data: bytes) -> str:
    """A provider id from the bytes when the source gives none, so a re-send dedupes."""
    return f"fax:sha256:{hashlib.sha256(data).hexdigest()}"


async def find_stored(
    sessionmaker: async_sessionmaker[AsyncSession],
    inbox_id: int,
    source_id: str | None,
    digests: list[str],
) -> IngestResult | None:
    """The message already stored in ``inbox_id`` under ``source_id``, or one holding a fax
    document for each of ``digests`` (SHA-256 of the bytes as received), as a duplicate.

    Asked before anything is decoded, so a resent file costs a query, not a render. The
    digests live in ``Message.meta["fax"]["digests"]`` (JSON, refused documents included):
    the query matches their text, which is portable across SQLite and PostgreSQL, and the
    match is then checked field by field. It reads the inbox's fax messages, which fax
    volumes keep cheap.
    """
    m, i = Message.__table__.c, Interaction.__table__.c  # type: ignore[attr-defined]
    wanted = []
    if source_id:
        wanted.append(m.source_id == source_id)
    for digest in digests:
        wanted.append(
            sa.and_(
                m.content_type == "fax",
                sa.cast(m.meta, sa.Text).like(f"%{digest}%"),
            )
        )
    if not wanted:
        return None
    query = (
        sa.select(m.id, m.interaction_id, i.contact_id, m.source_id, m.meta)
        .join(Interaction, i.id == m.interaction_id)
        .where(m.inbox_id == inbox_id, m.direction == Direction.INBOUND.value, sa.or_(*wanted))
        .order_by(m.id)
    )
    async with sessionmaker() as db:
        connection = await db.connection()
        rows = (await connection.execute(query)).all()
    for row in rows:
        if source_id and row.source_id == source_id:
            return IngestResult(row.id, row.interaction_id, row.contact_id, True)
    for row in rows:
        fax = (row.meta or {}).get("fax") if isinstance(row.meta, dict) else None
        held = fax.get("digests") if isinstance(fax, dict) else None
        if digests and isinstance(held, list) and set(held).issuperset(digests):
            return IngestResult(row.id, row.interaction_id, row.contact_id, True)
    return None


def anonymous_sender(source_id: str) -> Address:
    """A caller that sent no number: its own pseudo-address, so faxes do not merge."""
    tag = hashlib.sha256(source_id.encode()).hexdigest()[:16]
    return Address(AddressKind.EMAIL, f"anonymous-fax+{tag}@fax.invalid", "Unknown fax sender")


class FaxIntake:
    def __init__(
        self,
        ingest: Ingestor,
        attachments: AttachmentStore,
        settings: FaxSettings,
        ocr: OcrEngine | None = None,
        *,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        workers: FaxWorkers | None = None,
    ) -> None:
        self.ingest = ingest
        self.attachments = attachments
        self.settings = settings
        self.sessionmaker = sessionmaker  # None: duplicates are found at ingest only
        self._claims: dict[tuple[int, tuple[str, ...]], tuple[asyncio.Lock, list[int]]] = {}
        # Received documents are decoded and read in worker processes, killed at the limits.
        self.workers = workers or FaxWorkers(settings.ocr_workers)
        # Trusted CPU work (rendering our own replies) stays on a thread pool.
        self.ocr = ocr or OcrEngine(
            lang=settings.ocr_lang, workers=settings.ocr_workers, tessdata=settings.ocr_tessdata
        )

    async def process(self, data: bytes) -> FaxDocument:
        """Check, decode and OCR one document; raises DocumentRefused."""
        return await process_document(
            data,
            self.settings.limits,
            self.workers,
            lang=self.settings.ocr_lang,
            tessdata=self.settings.ocr_tessdata,
        )

    @contextlib.asynccontextmanager
    async def one_at_a_time(self, inbox_id: int, documents: list[bytes]) -> AsyncIterator[None]:
        """Hold off a second copy of the same file(s) for the same inbox until the first is
        committed, so its check for a stored copy sees the first and answers "duplicate".
        Without it a provider that retries while a slow file is still rendering (its own
        time-out is shorter than ours) would have the same file decoded on every worker
        at once. Per hub process; across processes the check and ingest still dedupe."""
        digests = tuple(sorted(hashlib.sha256(d).hexdigest() for d in documents if sniff(d)))
        if not digests:
            yield
            return
        key = (inbox_id, digests)
        claim = self._claims.get(key)
        if claim is None:
            claim = self._claims[key] = (asyncio.Lock(), [0])
        lock, users = claim
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._claims[key]

    async def find_stored(
        self, inbox_id: int, source_id: str | None, documents: list[bytes]
    ) -> IngestResult | None:
        """An earlier copy of this fax (same provider id, or the same document bytes)."""
        if self.sessionmaker is None:
            return None
        digests = [hashlib.sha256(d).hexdigest() for d in documents if sniff(d)]
        return await find_stored(self.sessionmaker, inbox_id, source_id, digests)

    async def receive_documents(
        self,
        *,
        inbox_id: int,
        sender: Address | None,
        documents: list[InboundAttachment],
        source_id: str,
        origin: str,
        subject: str | None = None,
        extra_body: str = "",
        problems: list[str] | None = None,
        strict: bool = False,
        meta: dict[str, Any] | None = None,
        processed: dict[int, FaxDocument | DocumentRefused] | None = None,
    ) -> IngestResult:
        """OCR every TIFF/PDF among ``documents`` and ingest one fax message.

        ``strict`` (the upload API) raises DocumentRefused for a refused document; otherwise
        the refusal becomes a problem on a message the agent still sees, and the file is
        kept as an attachment. A document whose render was stopped at a time limit
        (RenderStopped) is kept that way on every path. A fax already stored (same
        ``source_id``, or the same document bytes) is answered as a duplicate before any
        decoding.
        """
        args = (inbox_id, sender, documents, source_id, origin, subject, extra_body, problems)
        if processed is not None:  # the caller checked for a stored copy, and holds the claim
            return await self._receive(*args, strict, meta, processed)
        faxes = [d.data for d in documents if sniff(d.data)]
        async with self.one_at_a_time(inbox_id, faxes):
            stored = await self.find_stored(inbox_id, source_id, faxes)
            if stored is not None:
                return stored
            return await self._receive(*args, strict, meta, processed)

    async def _receive(
        self,
        inbox_id: int,
        sender: Address | None,
        documents: list[InboundAttachment],
        source_id: str,
        origin: str,
        subject: str | None,
        extra_body: str,
        problems: list[str] | None,
        strict: bool,
        meta: dict[str, Any] | None,
        processed: dict[int, FaxDocument | DocumentRefused] | None,
    ) -> IngestResult:
        notes = list(problems or [])
        pages: list[dict[str, Any]] = []
        texts: list[str] = []
        kept: list[InboundAttachment] = []
        names: list[str] = []
        digests: list[str] = []  # of every fax document, refused or not: resends dedupe
        for index, document in enumerate(documents):
            kind = sniff(document.data)
            if kind is None:
                kept.append(document)  # a cover note, a logo: kept as a plain attachment
                continue
            digests.append(hashlib.sha256(document.data).hexdigest())
            try:
                fax = (processed or {}).get(index) or await self.process(document.data)
                if isinstance(fax, DocumentRefused):
                    raise fax  # the caller already tried it
            except DocumentRefused as refused:
                if strict and not isinstance(refused, RenderStopped):
                    raise
                if isinstance(refused, RenderStopped):
                    # It passed every header check, only too slow for us: perhaps a real
                    # drawing, so the agent gets the file as it came, with the note.
                    kept.append(document)
                notes.append(f"fax document {document.filename!r} was refused: {refused.reason}")
                continue
            kept.append(document)
            names.append(document.filename)
            notes.extend(fax.problems)
            for page in fax.pages:
                pages.append(
                    {
                        "document": document.filename,
                        "page": len(pages) + 1,
                        "image": self.attachments.put(page.png),
                        "thumbnail": self.attachments.put(page.thumbnail),
                        "content_type": "image/png",
                        "width": page.width,
                        "height": page.height,
                        "resolution": list(page.resolution) if page.resolution else None,
                        "stretched": page.stretched,
                    }
                )
            texts.append(fax.text)
        if not names and not notes:
            notes.append("no TIFF or PDF fax document was attached")
        body = "\n\n".join(t for t in texts if t.strip())
        if not body:
            body = f"[fax, {len(pages)} page(s), no text recognized]" if pages else "[no fax pages]"
        if extra_body.strip():
            body = f"{body}\n\n--- note from the gateway ---\n{extra_body.strip()}"
        if sender is not None and sender.kind is AddressKind.PHONE:
            try:
                number = normalize_phone(sender.value, self.settings.default_region)
                sender = Address(AddressKind.PHONE, number, sender.display_name)
            except AddressError:
                notes.append(f"the caller's number {sender.value!r} is not a phone number")
                sender = None
        if sender is None:
            notes.append("the caller's number was not transmitted")
            sender = anonymous_sender(source_id)
        shown = sender.value if sender.kind is AddressKind.PHONE else "an unknown number"
        message = InboundMessage(
            inbox_id=inbox_id,
            channel=ChannelKind.FAX,
            sender=sender,
            body=body,
            source_id=source_id,
            content_type="fax",
            subject=subject or f"Fax from {shown}, {len(pages)} page(s)",
            attachments=tuple(kept),
            problems=tuple(dict.fromkeys(notes)),
            meta={
                **(meta or {}),
                "fax": {
                    "origin": origin,
                    "documents": names,
                    "digests": digests,
                    "page_count": len(pages),
                    "pages": pages,
                },
            },
        )
        return await self.ingest.ingest(message)

    async def aclose(self) -> None:
        self.ocr.close()
        await self.workers.close()
