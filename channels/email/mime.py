"""Sans-IO MIME parsing: the bytes of one RFC 5322 message → the fields the hub stores.

Nothing here touches the network or the database, so every torture case is a unit test
that feeds bytes. The rules:

- the ``text/plain`` part is the body when there is one; the first ``text/html`` part is
  kept raw (``ParsedEmail.html``) for the web layer to sanitize (``sanitize.sanitize_html``);
  a message with HTML only gets a text body extracted from the HTML so it is searchable;
- content transfer encodings (RFC 2045 §6) are undone with ``get_payload(decode=True)``
  rather than ``get_content()``, which raises ``KeyError``/``LookupError`` on some real
  malformed parts; unknown charsets and undecodable bytes degrade to UTF-8 with
  replacement characters and a note in ``problems``;
- malformed multiparts (a missing boundary, RFC 2046 §5.1) keep whatever text can be
  found, and the defect becomes a problem the agent sees;
- attachments beyond the size or count caps are dropped with a problem, never silently;
- a message with no usable ``From`` is kept with the envelope sender (SMTP ``MAIL FROM``,
  IMAP ``Return-Path``) and a problem saying so: an upstream server has already accepted
  it, so a cosmetic fault must not bounce it. Only a message we cannot attribute at all
  (no header section, no address anywhere) is refused with :class:`MalformedMessage`,
  which the SMTP listener turns into a 554;
- ``content_digest`` covers what a relay does not change (From, Date, Subject, the decoded
  body and attachments; not ``Received:`` and other trace headers), so two different
  messages that share a ``Message-ID`` are told apart while a redelivery is not.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html as html_lib
import re
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import Header, decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr

from channels.base import InboundAttachment

MSG_ID = re.compile(r"<[^<>\s]+>")
_WS = re.compile(r"\s+")


class MalformedMessage(ValueError):
    """The bytes are not a message we can attribute to a sender (SMTP 554)."""


@dataclass(frozen=True, slots=True)
class ParseLimits:
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_attachments: int = 20


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    message_id: str  # "<id@host>" (RFC 5322 §3.6.4); synthesized from a hash when missing
    from_address: str  # lower-cased
    from_name: str | None
    subject: str
    text: str
    html: str | None
    attachments: tuple[InboundAttachment, ...]
    thread_refs: tuple[str, ...]  # In-Reply-To first, then References (newest first)
    problems: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names, first value
    content_type: str = "text/plain"
    synthesized_id: bool = False
    text_from_html: bool = False  # no text/plain part: ``text`` was extracted from ``html``
    content_digest: str = ""  # SHA-256 hex of what a relay does not change (module docstring)

    @property
    def is_report(self) -> bool:
        return self.content_type == "multipart/report"


def normalize_message_id(value: str | None) -> str | None:
    """The canonical ``<left@right>`` form, or None (RFC 5322 §3.6.4)."""
    if not value:
        return None
    found = MSG_ID.search(str(value))
    if found:
        return found.group(0)
    bare = str(value).strip()
    if bare and " " not in bare and "@" in bare:
        return f"<{bare}>"
    return None


def message_ids(value: str | None) -> list[str]:
    return MSG_ID.findall(str(value)) if value else []


def parse_bytes(raw: bytes) -> Message:
    """The MIME tree with the ``compat32`` policy: ~40× cheaper than ``policy.default``,
    whose header registry parses every header we touch; we decode the few we need."""
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def decode_words(value: str | Header) -> str:
    """RFC 2047 encoded words → text; raw 8-bit header bytes are read as UTF-8."""
    if isinstance(value, Header):  # compat32 wraps raw 8-bit headers ("unknown-8bit")
        return "".join(
            part.decode("utf-8", "replace") if isinstance(part, bytes) else part
            for part, _charset in decode_header(value)
        )
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if "=?" not in value:
        return value
    try:
        decoded = str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
        return value
    return decoded or value  # a damaged encoded word: show it as it came


def header(msg: Message, name: str) -> str:
    """A header as decoded text, never raising on a malformed encoded word."""
    value = msg.get(name)
    if value is None:
        return ""
    return _WS.sub(" ", decode_words(value)).strip()


def decode_text(payload: bytes, charset: str | None, where: str) -> tuple[str, str | None]:
    """Decode a text part; unknown charsets or bad bytes degrade with a problem note."""
    declared = (charset or "us-ascii").strip().strip('"').lower()
    try:
        return payload.decode(declared), None
    except LookupError:
        text = payload.decode("utf-8", errors="replace")
        return text, f"unknown charset {declared!r} in {where}; shown as UTF-8"
    except UnicodeDecodeError:
        pass
    if declared in ("us-ascii", "ascii"):
        # Undeclared 8-bit text is common; UTF-8 is the likeliest intent.
        try:
            return payload.decode("utf-8"), None
        except UnicodeDecodeError:
            pass
    text = payload.decode("utf-8", errors="replace")
    return text, f"bytes in {where} are not valid {declared}; some characters were replaced"


def html_to_text(markup: str) -> str:
    """Plain text from HTML, for search and previews (the raw HTML is kept separately)."""
    import nh3

    stripped = nh3.clean(
        re.sub(r"(?i)<\s*(br|/p|/div|/li|/tr|/h\d)\b[^>]*>", "\n", markup),
        tags=set(),
        clean_content_tags={"script", "style", "head", "title"},
    )
    lines = [_WS.sub(" ", html_lib.unescape(line)).strip() for line in stripped.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _filename(part: Message, index: int) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name:
        name = decode_words(str(name))
        return name.replace("/", "_").replace("\\", "_").strip()[:200] or f"part-{index}"
    subtype = part.get_content_subtype() or "bin"
    return f"part-{index}.{'eml' if part.get_content_type() == 'message/rfc822' else subtype}"


def _is_attachment(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment":
        return True
    try:
        has_name = part.get_filename() is not None
    except Exception:
        has_name = True
    return has_name and part.get_content_maintype() != "text"


def _payload_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner:
            return inner[0].as_bytes()
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if data is None:
        raw = part.get_payload()
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    return data


def _defect_notes(msg: Message) -> list[str]:
    notes = []
    for part in msg.walk():
        for defect in getattr(part, "defects", []):
            name = type(defect).__name__
            if name in (
                "StartBoundaryNotFoundDefect",
                "CloseBoundaryNotFoundDefect",
                "MultipartInvariantViolationDefect",
                "NoBoundaryInMultipartDefect",
                "MultipartConversionError",
            ):
                notes.append(
                    f"malformed multipart ({name.removesuffix('Defect')}); "
                    "the message may be incomplete"
                )
            elif name in (
                "InvalidBase64PaddingDefect",
                "InvalidBase64CharactersDefect",
                "InvalidBase64LengthDefect",
            ):
                notes.append(f"damaged base64 content ({name.removesuffix('Defect')})")
    return list(dict.fromkeys(notes))


def _first_address(raw: str) -> tuple[str, str | None] | None:
    try:
        pairs = getaddresses([raw])
    except Exception:
        pairs = [parseaddr(raw)]
    for name, address in pairs:
        if "@" in address and " " not in address.strip():
            return address.strip().lower(), (name.strip() or None)
    return None


def extract_sender(msg: Message, envelope_from: str | None = None) -> tuple[str, str | None]:
    """The sender's (address, display name): From, then Sender and Return-Path, then the
    envelope sender; :class:`MalformedMessage` when there is no address anywhere."""
    for name in ("From", "Sender", "Return-Path"):
        found = _first_address(header(msg, name))
        if found is not None:
            return found
    found = _first_address(envelope_from or "")
    if found is not None:
        return found[0], None
    raise MalformedMessage("no sender address in the From header or the envelope")


def content_digest(
    msg: Message, text: str, html: str | None, attachments: list[InboundAttachment]
) -> str:
    """SHA-256 over From, Date, Subject, the decoded body and the attachments."""
    digest = hashlib.sha256()
    for part in (header(msg, "From"), header(msg, "Date"), header(msg, "Subject"), text):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    digest.update((html or "").encode("utf-8", "surrogatepass") + b"\0")
    for attachment in attachments:
        digest.update(f"{attachment.filename}\0{attachment.content_type}\0".encode())
        digest.update(hashlib.sha256(attachment.data).digest())
    return digest.hexdigest()


def parse_message(
    raw: bytes, limits: ParseLimits | None = None, envelope_from: str | None = None
) -> ParsedEmail:
    """Parse one message; raises :class:`MalformedMessage` only when it cannot be kept."""
    limits = limits or ParseLimits()
    if not raw.strip():
        raise MalformedMessage("empty message")
    msg = parse_bytes(raw)
    if not msg.keys():
        raise MalformedMessage("no header section (RFC 5322 §2.1)")
    from_address, from_name = extract_sender(msg, envelope_from)
    problems: list[str] = _defect_notes(msg)
    if _first_address(header(msg, "From")) is None:
        problems.append(f"no sender address in the From header; kept with {from_address}")

    message_id = normalize_message_id(header(msg, "Message-ID"))
    synthesized = message_id is None
    if message_id is None:
        # Deterministic, so a redelivery of the same bytes still dedupes.
        message_id = f"<{hashlib.sha256(raw).hexdigest()[:40]}@no-message-id.invalid>"
    refs = message_ids(header(msg, "In-Reply-To")) + list(
        reversed(message_ids(header(msg, "References")))
    )
    thread_refs = tuple(dict.fromkeys(r for r in refs if r != message_id))

    text_parts: list[str] = []
    html: str | None = None
    attachments: list[InboundAttachment] = []
    dropped = 0
    for index, part in enumerate(msg.walk()):
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if _is_attachment(part) or ctype not in ("text/plain", "text/html"):
            data = _payload_bytes(part)
            if not data and ctype.startswith("multipart/"):
                continue
            name = _filename(part, index)
            if len(attachments) >= limits.max_attachments:
                dropped += 1
                continue
            if len(data) > limits.max_attachment_bytes:
                problems.append(
                    f"attachment {name!r} ({len(data)} bytes) is over the "
                    f"{limits.max_attachment_bytes}-byte cap and was not stored"
                )
                continue
            attachments.append(InboundAttachment(name, ctype, data))
            continue
        payload = _payload_bytes(part)
        text, problem = decode_text(payload, part.get_content_charset(), f"the {ctype} part")
        if problem:
            problems.append(problem)
        if ctype == "text/html":
            if html is None:
                html = text
        else:
            text_parts.append(text)
    if dropped:
        problems.append(
            f"{dropped} attachment(s) beyond the limit of {limits.max_attachments} were not stored"
        )
    body = "\n\n".join(t.strip("\r\n") for t in text_parts if t.strip())
    text_from_html = bool(not body and html)
    if text_from_html:
        body = html_to_text(html or "")
    if not body and not html and msg.get_content_maintype() == "multipart" and problems:
        # A multipart whose structure we could not read: show the raw body, do not drop it.
        raw_body = (
            raw.split(b"\r\n\r\n", 1)[-1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[-1]
        )
        body, _ = decode_text(raw_body, "utf-8", "the raw body")
    headers: dict[str, str] = {}
    for name in msg:
        lowered = name.lower()
        if lowered not in headers:
            headers[lowered] = header(msg, name)
    return ParsedEmail(
        message_id=message_id,
        from_address=from_address,
        from_name=from_name,
        subject=header(msg, "Subject"),
        text=body.replace("\r\n", "\n"),
        html=html,
        attachments=tuple(attachments),
        thread_refs=thread_refs,
        problems=tuple(dict.fromkeys(problems)),
        headers=headers,
        content_type=msg.get_content_type(),
        synthesized_id=synthesized,
        text_from_html=text_from_html,
        content_digest=content_digest(msg, body, html, attachments),
    )
