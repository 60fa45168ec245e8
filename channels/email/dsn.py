"""Delivery status notifications (RFC 3464), sans-IO.

A DSN is ``multipart/report; report-type=delivery-status`` (RFC 6522) with three parts: a
human-readable text, a ``message/delivery-status`` part (per-message fields, a blank line,
then per-recipient fields: ``Action``, ``Status``, ``Diagnostic-Code``…) and the returned
message or its headers (``message/rfc822`` or ``text/rfc822-headers``), whose Message-ID
names the message that bounced.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser

from channels.base import DeliveryStatus
from channels.email.mime import message_ids, normalize_message_id, parse_bytes


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """One recipient's per-recipient fields (RFC 3464 §2.3)."""

    action: str
    status_code: str
    recipient: str
    diagnostic: str

    @property
    def detail(self) -> str:
        parts = [f"{self.action} {self.status_code}".strip()]
        if self.recipient:
            parts.append(f"for {self.recipient}")
        if self.diagnostic:
            parts.append(f"({self.diagnostic})")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class DsnReport:
    original_message_id: str | None
    recipients: tuple[RecipientOutcome, ...]

    @property
    def status(self) -> DeliveryStatus | None:
        """Failed as soon as one recipient failed; delivered when every one was; None while
        any is only "delayed", "relayed" or "expanded" (nothing final yet, §2.3.3)."""
        actions = {r.action for r in self.recipients}
        if "failed" in actions:
            return DeliveryStatus.FAILED
        if actions == {"delivered"}:
            return DeliveryStatus.DELIVERED
        return None

    @property
    def detail(self) -> str:
        """The failures first (they are what the agent must act on), then the rest."""
        ordered = sorted(self.recipients, key=lambda r: r.action != "failed")
        return "; ".join(r.detail for r in ordered)[:480] or "unknown"


def _field_blocks(text: str) -> list[dict[str, str]]:
    """Split a delivery-status body into header blocks (RFC 3464 §2.1)."""
    blocks: list[dict[str, str]] = []
    for chunk in text.replace("\r\n", "\n").split("\n\n"):
        if not chunk.strip():
            continue
        parsed = HeaderParser().parsestr(chunk.strip() + "\n\n", headersonly=True)
        blocks.append({k.lower(): " ".join(str(v).split()) for k, v in parsed.items()})
    return blocks


def _delivery_status_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        # The stdlib parses message/delivery-status into a list of header blocks.
        return "\n\n".join("\n".join(f"{k}: {v}" for k, v in block.items()) for block in payload)
    data = part.get_payload(decode=True) or b""
    return data.decode("utf-8", errors="replace")


def _returned_message_id(part: Message) -> str | None:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner:
            return normalize_message_id(str(inner[0].get("Message-ID", "")))
        return None
    data = part.get_payload(decode=True) or b""
    headers = BytesHeaderParser().parsebytes(data)
    return normalize_message_id(str(headers.get("Message-ID", "")))


def parse_dsn(raw: bytes) -> DsnReport | None:
    """Every recipient's outcome from a DSN, or None when ``raw`` is not a DSN."""
    msg = parse_bytes(raw)
    if msg.get_content_type() != "multipart/report":
        return None
    if (msg.get_param("report-type") or "").lower() != "delivery-status":
        return None
    blocks: list[dict[str, str]] = []
    original: str | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            blocks += [b for b in _field_blocks(_delivery_status_text(part)) if "action" in b]
        elif ctype in ("message/rfc822", "text/rfc822-headers") and original is None:
            original = _returned_message_id(part)
    if original is None:
        # Some MTAs only thread the report to the original.
        refs = message_ids(str(msg.get("In-Reply-To", ""))) or message_ids(
            str(msg.get("References", ""))
        )
        original = refs[-1] if refs else None
    return DsnReport(original_message_id=original, recipients=tuple(map(_outcome, blocks)))


def _outcome(fields: dict[str, str]) -> RecipientOutcome:
    recipient = fields.get("final-recipient") or fields.get("original-recipient") or ""
    return RecipientOutcome(
        action=fields.get("action", "").lower() or "unknown",
        status_code=fields.get("status", ""),
        recipient=recipient.split(";", 1)[-1].strip(),
        diagnostic=fields.get("diagnostic-code", "").split(";", 1)[-1].strip(),
    )
