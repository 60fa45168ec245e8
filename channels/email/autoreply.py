"""Auto-acknowledgements without mail loops (RFC 3834).

RFC 3834 §2: never answer a message that is itself automatic (``Auto-Submitted`` other
than ``no``), bulk or list mail (``Precedence: bulk|list|junk``, ``List-Id``), a delivery
report, or a message with an empty return path (``MAIL FROM:<>``, RFC 5321 §4.5.5). Our own
acknowledgements carry ``Auto-Submitted: auto-replied`` (§5) so a well-behaved peer does not
answer them either.

An inbox configures its acknowledgement with ``Inbox.config["auto_ack"]``:
``{"enabled": true, "text": "… {reference} …"}``; ``{reference}`` becomes ``[#<id>]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.email.mime import ParsedEmail

_ROBOT_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply",
     "listserv", "majordomo", "bounce", "bounces"}
)  # fmt: skip


def suppression_reason(parsed: ParsedEmail, envelope_from: str | None) -> str | None:
    """Why this message must not get an automatic answer, or None when it may."""
    h = parsed.headers
    if envelope_from is not None and envelope_from.strip("<> ") == "":
        return "empty return path (a bounce or a notification)"
    auto = h.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = h.get("precedence", "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return f"Precedence: {precedence}"
    if "list-id" in h or "list-unsubscribe" in h:
        return "mailing-list message"
    suppress = h.get("x-auto-response-suppress", "").lower()
    if any(token in suppress for token in ("all", "autoreply", "oof")):
        return f"X-Auto-Response-Suppress: {suppress}"
    if "x-autoreply" in h or "x-autorespond" in h:
        return "vendor auto-reply header"
    if parsed.is_report:
        return "delivery or disposition report"
    local = parsed.from_address.split("@", 1)[0]
    if local in _ROBOT_LOCAL_PARTS or local.startswith("owner-") or local.endswith("-request"):
        return f"robot sender {parsed.from_address}"
    return None


def ack_settings(inbox_config: Mapping[str, Any], default_enabled: bool, default_text: str):
    """(enabled, text) for an inbox: its ``config["auto_ack"]`` overrides the settings."""
    own = inbox_config.get("auto_ack") if isinstance(inbox_config, Mapping) else None
    if isinstance(own, Mapping):
        return bool(own.get("enabled", default_enabled)), str(own.get("text") or default_text)
    if isinstance(own, bool):
        return own, default_text
    return default_enabled, default_text


def ack_body(template: str, interaction_id: int) -> str:
    reference = f"[#{interaction_id}]"
    if "{reference}" in template:
        return template.replace("{reference}", reference)
    return f"{template.rstrip()}\n\nReference: {reference}"
