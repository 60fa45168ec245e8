"""GSM 03.38 7-bit default alphabet and its extension table (3GPP TS 23.038 §6.2.1).

Why our own: the SMPP libraries on PyPI either lack the extension table or tie it to their
I/O. An extension character (``€``, ``[``, ``{``…) costs two septets: ESC (0x1B) and its code,
which is what a segment counter must count.
"""

from __future__ import annotations

# TS 23.038 §6.2.1, code points 0x00..0x7F; 0x1B is the escape to the extension table.
BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(BASIC) == 128
ESC = 0x1B
# TS 23.038 §6.2.1.1, the default extension table (the only one without a national shift).
EXTENSION: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_BASIC_CODE = {ch: code for code, ch in enumerate(BASIC) if code != ESC}
_EXT_CHAR = {code: ch for ch, code in EXTENSION.items()}


class NotGsm7(ValueError):
    """The text holds a character outside the GSM 7-bit alphabet and its extension."""


def char_septets(ch: str) -> int | None:
    """Septets one character costs: 1 (basic), 2 (extension) or None (not GSM-7)."""
    if ch in _BASIC_CODE:
        return 1
    if ch in EXTENSION:
        return 2
    return None


def is_gsm7(text: str) -> bool:
    return all(ch in _BASIC_CODE or ch in EXTENSION for ch in text)


def septet_length(text: str) -> int:
    """Septets ``text`` needs; raises NotGsm7 for a character outside the alphabet."""
    total = 0
    for ch in text:
        cost = char_septets(ch)
        if cost is None:
            raise NotGsm7(f"{ch!r} is not in the GSM 7-bit alphabet")
        total += cost
    return total


def encode(text: str) -> bytes:
    """One septet per octet (unpacked), as SMPP carries data_coding 0 to most SMSCs."""
    out = bytearray()
    for ch in text:
        code = _BASIC_CODE.get(ch)
        if code is not None:
            out.append(code)
        elif ch in EXTENSION:
            out += bytes((ESC, EXTENSION[ch]))
        else:
            raise NotGsm7(f"{ch!r} is not in the GSM 7-bit alphabet")
    return bytes(out)


def decode(septets: bytes) -> str:
    """Unpacked septets to text; an unknown escape decodes as its basic character
    (TS 23.038 §6.2.1.1: "display the character from the default table")."""
    out: list[str] = []
    escaped = False
    for octet in septets:
        code = octet & 0x7F
        if escaped:
            out.append(_EXT_CHAR.get(code, BASIC[code] if code != ESC else " "))
            escaped = False
        elif code == ESC:
            escaped = True
        else:
            out.append(BASIC[code])
    return "".join(out)


def pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets 8-into-7 octets, LSB first (TS 23.038 §6.1.2.1.1).

    ``fill_bits`` (0..6) pads the start so septets begin on a septet boundary after a UDH
    (TS 23.040 §9.2.3.24).
    """
    acc = 0
    bits = fill_bits
    out = bytearray()
    for septet in septets:
        acc |= (septet & 0x7F) << bits
        bits += 7
        while bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack(octets: bytes, count: int, fill_bits: int = 0) -> bytes:
    """The inverse of :func:`pack`: ``count`` septets from packed ``octets``."""
    value = int.from_bytes(octets, "little") >> fill_bits
    return bytes((value >> (7 * i)) & 0x7F for i in range(count))
