"""RFC 4733 telephone-event (DTMF) reception, sans-IO.

Why not :class:`aiortp.DtmfReceiver`: it treats every packet with the current RTP timestamp
as the same event, so two presses of the same digit that share a timestamp (a replayed
pcap, or a sender that reuses the timestamp after an end) collapse into one, and "1 1"
arrives as "1". RFC 4733 §2.5.1 identifies an event by its timestamp *and* its lifecycle:
the marker bit starts an event (§2.5.1.1) and the E bit ends it (§2.5.1.4, sent three
times). So after an end has been reported, a packet with the marker bit, or a non-end
packet, starts a new event even with the same timestamp, while the redundant end packets
of the finished event are ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EVENT_DIGITS = "0123456789*#ABCD"


@dataclass(slots=True)
class TelephoneEventReceiver:
    _timestamp: int | None = None
    _ended: bool = False

    def on_packet(self, timestamp: int, marker: bool, payload: bytes) -> str | None:
        """Feed one telephone-event packet; returns the digit when its event ends."""
        if len(payload) < 4:
            return None
        event, flags, _duration = struct.unpack_from("!BBH", payload)
        end = bool(flags & 0x80)
        new_event = timestamp != self._timestamp or (self._ended and (marker or not end))
        if new_event:
            self._timestamp = timestamp
            self._ended = False
        if end and not self._ended:
            self._ended = True
            if event < len(EVENT_DIGITS):
                return EVENT_DIGITS[event]
        return None


def encode_event(digit: str, end: bool, duration: int, volume: int = 10) -> bytes:
    """A telephone-event payload (RFC 4733 §2.3)."""
    event = EVENT_DIGITS.index(digit.upper())
    return struct.pack("!BBH", event, (0x80 if end else 0) | (volume & 0x3F), duration)
