"""Choosing GSM-7 or UCS-2 and cutting long texts into concatenated parts.

3GPP TS 23.040 §9.2.3.24.1: a part carries 140 octets of user data; a 6-octet UDH leaves
153 septets (GSM-7) or 67 UCS-2 characters; a single unsplit message holds 160 or 70.
An extension character (``€``) is two septets and never split from its escape; a UTF-16
surrogate pair (an emoji) is two UCS-2 units and never split either.

:func:`segment_count` and :func:`describe` are what the console's segment counter calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from channels.sms import gsm7
from channels.sms.udh import ESM_UDHI, concat_header

SINGLE = {"gsm7": 160, "ucs2": 70}
MULTI = {"gsm7": 153, "ucs2": 67}
MAX_PARTS = 255  # the UDH's 8-bit total


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"

    @property
    def data_coding(self) -> int:
        """SMPP 3.4 §5.2.19: 0x00 SMSC default alphabet (GSM-7), 0x08 UCS-2."""
        return 0x00 if self is Encoding.GSM7 else 0x08


def choose_encoding(text: str) -> Encoding:
    return Encoding.GSM7 if gsm7.is_gsm7(text) else Encoding.UCS2


def _units(ch: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return gsm7.char_septets(ch) or 0
    return 2 if ord(ch) > 0xFFFF else 1


def text_units(text: str, encoding: Encoding | None = None) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) the text needs."""
    encoding = encoding or choose_encoding(text)
    return sum(_units(ch, encoding) for ch in text)


def split(text: str, encoding: Encoding | None = None) -> list[str]:
    """The texts of the parts, in order; one part when the text fits a single message."""
    encoding = encoding or choose_encoding(text)
    if text_units(text, encoding) <= SINGLE[encoding]:
        return [text]
    limit = MULTI[encoding]
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        cost = _units(ch, encoding)
        if used + cost > limit:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += cost
    if current:
        parts.append("".join(current))
    return parts


def segment_count(text: str) -> int:
    """How many SMS the text costs (0 for an empty text)."""
    return len(split(text)) if text else 0


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What a segment counter shows: "UCS-2 · 2 SMS · 57 left in this part"."""

    encoding: Encoding
    segments: int
    units: int  # septets or UCS-2 code units
    per_segment: int  # 160/70 for one part, 153/67 once split
    remaining: int  # units still free in the last part
    non_gsm_chars: tuple[str, ...]  # the characters that forced UCS-2, for a hint


def describe(text: str) -> SegmentInfo:
    encoding = choose_encoding(text)
    units = text_units(text, encoding)
    parts = split(text, encoding) if text else []
    per = SINGLE[encoding] if len(parts) <= 1 else MULTI[encoding]
    last = text_units(parts[-1], encoding) if parts else 0
    odd = tuple(dict.fromkeys(ch for ch in text if gsm7.char_septets(ch) is None))
    return SegmentInfo(encoding, len(parts), units, per, per - last, odd)


@dataclass(frozen=True, slots=True)
class SubmitPart:
    """One submit_sm's worth: the fields that differ between parts."""

    short_message: bytes
    esm_class: int
    data_coding: int


def encode_text(text: str, encoding: Encoding) -> bytes:
    if encoding is Encoding.GSM7:
        return gsm7.encode(text)
    return text.encode("utf-16-be")


def build_parts(text: str, ref: int) -> list[SubmitPart]:
    """The submit_sm payloads for ``text``; UDH IEI 0x00 with ``ref`` when split.

    Each part's short_message is at most 140 octets for UCS-2 (6 + 67×2) and 159 for
    unpacked GSM-7 (6 + 153), which the SMSC packs to 140.
    """
    encoding = choose_encoding(text)
    texts = split(text, encoding)
    if len(texts) > MAX_PARTS:
        raise ValueError(f"text needs {len(texts)} parts; at most {MAX_PARTS} fit one UDH")
    if len(texts) == 1:
        return [SubmitPart(encode_text(text, encoding), 0, encoding.data_coding)]
    return [
        SubmitPart(
            concat_header(ref, len(texts), seq) + encode_text(part, encoding),
            ESM_UDHI,
            encoding.data_coding,
        )
        for seq, part in enumerate(texts, start=1)
    ]
