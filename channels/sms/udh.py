"""User Data Header: the concatenation information elements (3GPP TS 23.040 §9.2.3.24).

IEI 0x00 carries an 8-bit reference, IEI 0x08 a 16-bit one (§9.2.3.24.1 and .8); both then
give the total number of parts and this part's 1-based sequence number. Other elements are
skipped, not rejected, because handsets add port and language elements freely.
"""

from __future__ import annotations

from dataclasses import dataclass

IEI_CONCAT_8BIT = 0x00
IEI_CONCAT_16BIT = 0x08
ESM_UDHI = 0x40  # SMPP 3.4 §5.2.12: esm_class bit 6, "UDHI Indicator set"


class UdhError(ValueError):
    """A UDH that claims more octets than the message has."""


@dataclass(frozen=True, slots=True)
class Concat:
    ref: int
    total: int
    seq: int


def concat_header(ref: int, total: int, seq: int) -> bytes:
    """The 6-octet UDH for part ``seq`` of ``total`` with an 8-bit reference (IEI 0x00)."""
    if not (1 <= seq <= total <= 255):
        raise ValueError(f"part {seq} of {total} is out of range")
    return bytes((5, IEI_CONCAT_8BIT, 3, ref & 0xFF, total, seq))


def split_udh(user_data: bytes) -> tuple[bytes, bytes]:
    """(UDH including its length octet, the rest) of a short_message with UDHI set."""
    if not user_data:
        raise UdhError("empty user data with the UDHI bit set")
    length = user_data[0] + 1
    if length > len(user_data):
        raise UdhError(f"UDH says {length - 1} octets, message has {len(user_data) - 1}")
    return user_data[:length], user_data[length:]


def parse_concat(udh: bytes) -> Concat | None:
    """The concatenation element of a UDH (with its length octet), if it has one."""
    i, end = 1, len(udh)
    while i + 2 <= end:
        iei, iedl = udh[i], udh[i + 1]
        data = udh[i + 2 : i + 2 + iedl]
        if len(data) != iedl:
            raise UdhError(f"information element 0x{iei:02x} is truncated")
        if iei == IEI_CONCAT_8BIT and iedl == 3:
            concat = Concat(data[0], data[1], data[2])
        elif iei == IEI_CONCAT_16BIT and iedl == 4:
            concat = Concat(int.from_bytes(data[:2], "big"), data[2], data[3])
        else:
            i += 2 + iedl
            continue
        # §9.2.3.24.1: a part number of 0 or above the total is to be ignored.
        if concat.total == 0 or not (1 <= concat.seq <= concat.total):
            return None
        return concat
    return None
