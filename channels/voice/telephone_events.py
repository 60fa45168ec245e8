"""RFC 4733 telephone-event (DTMF) reception, sans-IO.

Why not :class:`aiortp.DtmfReceiver`: it treats every packet with the current RTP timestamp
as the same event, so two presses of the same digit that share a timestamp (a replayed
pcap, or a sender that reuses the timestamp after an end) collapse into one, and "1 1"
arrives as "1". RFC 4733 §2.5.1 identifies an event by its timestamp *and* its lifecycle:
the marker bit starts an event (§2.5.1.1) and the E bit ends it (§2.5.1.4, sent three
times). So after an end has been reported, a packet with the marker bit, or a non-end
packet, starts a new event even with the same timestamp, while the redundant end packets
of the finished event are ignored.

An event whose end packets were all lost (the end is sent three times because it can be)
is still a key the caller pressed: when the next event begins, with a new timestamp, it is
reported then, as an event cannot go on once the sender has moved to the next. A late
packet of an event already reported is ignored, so it cannot count twice. (A sender cut
off mid-key, as SIPp is when its next pcap starts before the previous one has finished on
a loaded machine, would otherwise lose that digit.)
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field

EVENT_DIGITS = "0123456789*#ABCD"


@dataclass(slots=True)
class TelephoneEventReceiver:
    _timestamp: int | None = None
    _event: int | None = None  # the current event's code, once a packet of it came
    _ended: bool = False
    _reported: deque[int] = field(default_factory=lambda: deque(maxlen=4))  # their timestamps

    def on_packet(self, timestamp: int, marker: bool, payload: bytes) -> str:
        """Feed one telephone-event packet; returns the digits it completes ("" for none):
        an unended event it follows, then its own once its end comes."""
        if len(payload) < 4:
            return ""
        event, flags, _duration = struct.unpack_from("!BBH", payload)
        end = bool(flags & 0x80)
        out = ""
        if timestamp != self._timestamp:
            if timestamp in self._reported and not marker:
                return ""  # a straggler of an event already reported
            out = self._end_unended()
            self._start(timestamp)
        elif self._ended and (marker or not end):
            self._start(timestamp)
        self._event = event
        if end and not self._ended:
            out += self._report()
        return out

    def _start(self, timestamp: int) -> None:
        self._timestamp, self._event, self._ended = timestamp, None, False

    def _end_unended(self) -> str:
        return self._report() if self._event is not None and not self._ended else ""

    def _report(self) -> str:
        self._ended = True
        if self._timestamp is not None:
            self._reported.append(self._timestamp)
        event = self._event
        return EVENT_DIGITS[event] if event is not None and event < len(EVENT_DIGITS) else ""


def encode_event(digit: str, end: bool, duration: int, volume: int = 10) -> bytes:
    """A telephone-event payload (RFC 4733 §2.3)."""
    event = EVENT_DIGITS.index(digit.upper())
    return struct.pack("!BBH", event, (0x80 if end else 0) | (volume & 0x3F), duration)
