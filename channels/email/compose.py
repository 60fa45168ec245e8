"""Building the agent's reply as an RFC 5322 message, sans-IO.

Threading (RFC 5322 §3.6.4): a fresh ``Message-ID`` that we keep as the outbound message's
``source_id``, so the customer's answer (``In-Reply-To`` = it) joins the same interaction;
``In-Reply-To`` is the message answered and ``References`` the thread so far. The subject
carries ``Re:`` once and the ``[#<interaction id>]`` tag for clients that drop headers.
The earlier message is quoted below the reply, ``>``-prefixed, as mail users expect.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime

from channels.base import OutboundMessage

_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|sv|antw)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_TAG = re.compile(r"\s*\[#\d{1,12}\]\s*")
MAX_REFERENCES = 20  # keep the header bounded; the first and the newest matter most


@dataclass(frozen=True, slots=True)
class Quoted:
    """An earlier message to quote under the reply."""

    author: str
    sent_at: datetime
    body: str


def reply_subject(subject: str | None, interaction_id: int) -> str:
    base = _TAG.sub(" ", _PREFIX.sub("", subject or "")).strip()
    base = base or "Your message"
    return f"Re: {base} [#{interaction_id}]"


def quote(previous: Quoted) -> str:
    when = previous.sent_at.strftime("%a, %d %b %Y %H:%M %Z").strip()
    lines = [f"On {when}, {previous.author} wrote:"]
    lines += [f"> {line}" if line else ">" for line in previous.body.splitlines()]
    return "\n".join(lines)


def new_message_id(hostname: str) -> str:
    return f"<ch.{secrets.token_hex(12)}@{hostname}>"


def bounded_references(refs: tuple[str, ...]) -> list[str]:
    refs = tuple(dict.fromkeys(r for r in refs if r.startswith("<") and r.endswith(">")))
    if len(refs) <= MAX_REFERENCES:
        return list(refs)
    return [refs[0], *refs[-(MAX_REFERENCES - 1) :]]


def build_reply(
    out: OutboundMessage,
    *,
    from_address: str,
    from_name: str,
    message_id: str,
    previous: Quoted | None = None,
    automatic: bool = False,
    now: datetime | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = HeaderAddress(display_name=from_name, addr_spec=from_address)
    msg["To"] = out.to.value
    msg["Subject"] = reply_subject(out.subject, out.interaction_id)
    msg["Date"] = format_datetime(now) if now else format_datetime(datetime.now().astimezone())
    msg["Message-ID"] = message_id
    references = bounded_references(out.references)
    if out.in_reply_to:
        msg["In-Reply-To"] = out.in_reply_to
    if references:
        msg["References"] = " ".join(references)
    if automatic:
        msg["Auto-Submitted"] = "auto-replied"  # RFC 3834 §5
        msg["X-Auto-Response-Suppress"] = "All"
    msg["X-ContactHub-Interaction"] = str(out.interaction_id)
    body = out.body.rstrip()
    if previous is not None and previous.body.strip():
        body = f"{body}\n\n{quote(previous)}"
    msg.set_content(body + "\n")
    for attachment in out.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        msg.add_attachment(
            attachment.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return msg
