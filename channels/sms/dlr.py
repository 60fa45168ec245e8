"""Delivery receipts: deliver_sm with a receipt type in esm_class (SMPP 3.4 §5.2.12).

The state comes from the ``receipted_message_id`` (0x001E) and ``message_state`` (0x0427)
TLVs when present (§5.3.2.12, §5.3.2.35), else from the de-facto receipt text of Appendix B:
``id:… sub:… dlvrd:… submit date:… done date:… stat:DELIVRD err:… text:…``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from channels.base import DeliveryStatus

# esm_class bits 5..2 (§5.2.12): 0x04 SMSC delivery receipt, 0x08 SME delivery ack,
# 0x10 SME manual/user ack, 0x20 intermediate delivery notification.
ESM_TYPE_MASK = 0x3C
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_MESSAGE_STATE = 0x0427
TAG_NETWORK_ERROR_CODE = 0x0423

# §5.2.28 message_state values and the 7-letter receipt text forms (Appendix B).
STATE_NAMES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
_STATUS = {
    "ENROUTE": DeliveryStatus.SENT,
    "ACCEPTD": DeliveryStatus.SENT,
    "DELIVRD": DeliveryStatus.DELIVERED,
    "EXPIRED": DeliveryStatus.FAILED,
    "DELETED": DeliveryStatus.FAILED,
    "UNDELIV": DeliveryStatus.FAILED,
    "REJECTD": DeliveryStatus.FAILED,
}
# "submit date" and "done date" hold a space; "text" runs to the end.
_FIELD = re.compile(
    r"(?P<key>id|sub|dlvrd|submit date|done date|stat|err|text)\s*:\s*"
    r"(?P<value>.*?)(?=\s+(?:id|sub|dlvrd|submit date|done date|stat|err|text)\s*:|$)",
    re.IGNORECASE | re.DOTALL,
)


class NotAReceipt(ValueError):
    """A deliver_sm that says it is a receipt but names no message."""


@dataclass(frozen=True, slots=True)
class Receipt:
    message_id: str
    state: str  # the 7-letter form: DELIVRD, UNDELIV…
    error: str | None = None

    @property
    def status(self) -> DeliveryStatus | None:
        """The hub's status, or None for UNKNOWN (which must not change anything)."""
        return _STATUS.get(self.state)

    @property
    def detail(self) -> str:
        return f"{self.state} err:{self.error}" if self.error else self.state


def is_receipt(esm_class: int, tlvs: dict[int, bytes]) -> bool:
    return bool(esm_class & ESM_TYPE_MASK) or (
        TAG_RECEIPTED_MESSAGE_ID in tlvs and TAG_MESSAGE_STATE in tlvs
    )


def parse_text(text: str) -> dict[str, str]:
    """The receipt text's fields, keys lower-cased (``submit date``, ``stat``…)."""
    return {m["key"].lower(): m["value"].strip() for m in _FIELD.finditer(text.strip())}


def parse(short_message: bytes, tlvs: dict[int, bytes]) -> Receipt:
    fields = parse_text(short_message.decode("latin-1"))
    message_id = tlvs.get(TAG_RECEIPTED_MESSAGE_ID, b"").rstrip(b"\0").decode("latin-1")
    message_id = message_id or fields.get("id", "")
    if not message_id:
        raise NotAReceipt("receipt names no message id")
    state_tlv = tlvs.get(TAG_MESSAGE_STATE)
    if state_tlv:
        state = STATE_NAMES.get(state_tlv[0], "UNKNOWN")
    else:
        state = fields.get("stat", "UNKNOWN").upper()[:7]
    error = fields.get("err")
    if error is None and TAG_NETWORK_ERROR_CODE in tlvs:
        error = tlvs[TAG_NETWORK_ERROR_CODE].hex()
    return Receipt(message_id, state, error if error not in (None, "", "000") else None)
