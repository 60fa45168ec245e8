"""Received faxes (from the spool, the email gateway or the upload API) → the hub.

Every source ends here: documents are checked and decoded, OCR'd so the text is the message
body (searchable like any message), page images and thumbnails are stored, and one
``InboundMessage`` is ingested. ``receive_documents`` returns only after the commit, so the
caller may then acknowledge (move the spool file, answer 250 or 201).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import phonenumbers

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    InboundAttachment,
    InboundMessage,
    Ingestor,
    IngestResult,
)
from channels.fax.document import FaxDocument, process_document, sniff
from channels.fax.ocr import OcrEngine
from channels.fax.settings import FaxSettings
from channels.fax.tiff import DocumentRefused
from hub.attachments import AttachmentStore
from hub.contacts import AddressError, normalize_phone

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
    ) -> None:
        self.ingest = ingest
        self.attachments = attachments
        self.settings = settings
        self.ocr = ocr or OcrEngine(
            lang=settings.ocr_lang,
            workers=settings.ocr_workers,
            timeout=settings.ocr_timeout_seconds,
            tessdata=settings.ocr_tessdata,
        )

    async def process(self, data: bytes) -> FaxDocument:
        """Check, decode and OCR one document; raises DocumentRefused."""
        return await process_document(data, self.settings.limits, self.ocr)

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
        processed: dict[int, FaxDocument] | None = None,
    ) -> IngestResult:
        """OCR every TIFF/PDF among ``documents`` and ingest one fax message.

        ``strict`` (the upload API) raises DocumentRefused for a refused document; otherwise
        the refusal becomes a problem on a message the agent still sees.
        """
        notes = list(problems or [])
        pages: list[dict[str, Any]] = []
        texts: list[str] = []
        kept: list[InboundAttachment] = []
        names: list[str] = []
        for index, document in enumerate(documents):
            kind = sniff(document.data)
            if kind is None:
                kept.append(document)  # a cover note, a logo: kept as a plain attachment
                continue
            try:
                fax = (processed or {}).get(index) or await self.process(document.data)
            except DocumentRefused as refused:
                if strict:
                    raise
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
                    "page_count": len(pages),
                    "pages": pages,
                },
            },
        )
        return await self.ingest.ingest(message)

    def close(self) -> None:
        self.ocr.close()
