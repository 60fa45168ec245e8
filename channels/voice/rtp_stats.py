"""Receive statistics per RFC 3550 §6.4.1 and Appendix A.1/A.3/A.8, sans-IO."""

from __future__ import annotations

from dataclasses import dataclass

SEQ_MOD = 1 << 16


@dataclass(slots=True)
class RtpStats:
    """Counters kept for the call record."""

    packets_sent: int = 0
    octets_sent: int = 0
    packets_received: int = 0
    octets_received: int = 0
    packets_ignored: int = 0  # wrong source or not RTP
    send_dropped: int = 0  # socket buffer full: dropped rather than queued
    base_seq: int | None = None
    cycles: int = 0
    max_seq: int = 0
    jitter: float = 0.0  # in timestamp units (RFC 3550 §A.8)
    _transit: int | None = None
    _received_in_stream: int = 0
    _lost_before: int = 0

    def extend(self, seq: int) -> int:
        """Track wraparound and return the extended sequence number (§A.1)."""
        if self.base_seq is None:
            self.base_seq = seq
            self.max_seq = seq
            return seq
        delta = (seq - self.max_seq) % SEQ_MOD
        if delta < 0x8000:  # in order, possibly with a gap
            if seq < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = seq
            return self.cycles + seq
        # older packet (reordered or duplicate)
        cycles = self.cycles - SEQ_MOD if seq > self.max_seq else self.cycles
        return cycles + seq

    def restart(self) -> None:
        """A new stream (SSRC change, pcap replay): loss so far is kept, counting restarts."""
        self._lost_before += max(self.expected - self._received_in_stream, 0)
        self._received_in_stream = 0
        self.base_seq = None
        self.cycles = 0
        self._transit = None

    def on_packet(self, seq: int, timestamp: int, arrival_ts: int, size: int) -> int:
        """Account one received packet; ``arrival_ts`` is the arrival time in RTP units."""
        self.packets_received += 1
        self.octets_received += size
        self._received_in_stream += 1
        ext = self.extend(seq)
        transit = arrival_ts - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            self.jitter += (d - self.jitter) / 16.0
        self._transit = transit
        return ext

    @property
    def expected(self) -> int:
        if self.base_seq is None:
            return 0
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost (§A.3); may be negative with duplicates."""
        return self._lost_before + self.expected - self._received_in_stream

    def as_dict(self, clock_rate: int = 8000) -> dict[str, float | int]:
        return {
            "packets_sent": self.packets_sent,
            "packets_received": self.packets_received,
            "packets_lost": max(self.lost, 0),
            "packets_ignored": self.packets_ignored,
            "jitter_ms": round(self.jitter * 1000 / clock_rate, 3),
        }
