"""A small reorder/jitter buffer for 20 ms audio frames, sans-IO.

Packets are keyed by their extended sequence number (RFC 3550 §A.1). Playout starts once
``prefill`` frames are buffered, then the media clock pops exactly one frame per tick: a
missing frame yields ``None`` (the caller conceals it with silence), a late frame is
dropped, and a buffer that grows past ``max_frames`` (clock drift, a burst) is trimmed to
the newest frames. A large sequence jump or a new SSRC restarts playout.

Below ``max_frames`` a backlog would otherwise stand for the rest of the call: after a
stall, the frames that arrived at once are played one per tick while new ones keep coming,
so the party hears everything that much later from then on (the sender's clock running a
little fast does the same, slowly). Steady playout leaves ``prefill`` - 1 frames after a
pop, fewer with jitter; when for a whole ``shrink_window`` of pops more than ``prefill``
were always left, one frame is skipped: 20 ms a second at most, which a listener does not
notice, until the backlog is gone.

What the buffer received but never played is counted (:meth:`playout_counters`, kept on the
call's leg): a frame that came too late, one trimmed from an overflow, one skipped. Network
loss shows in the RTP statistics; these show the audio lost at the hub itself, to a stall of
its media clock or a burst from the far end, so a recording with a gap says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RESYNC_GAP = 100  # sequence jump treated as a new stream (pcap replays, SSRC restarts)


@dataclass(slots=True)
class JitterBuffer:
    prefill: int = 2
    max_frames: int = 12
    frames: dict[int, bytes] = field(default_factory=dict)
    next_seq: int | None = None
    late: int = 0
    concealed: int = 0
    skipped: int = 0  # frames dropped to shrink a standing backlog
    trimmed: int = 0  # frames dropped when the buffer overflowed
    shrink_window: int = 50  # pops (1 s at 20 ms) the backlog must last before a skip
    _low: int = 1 << 30  # fewest frames left after a pop in this window
    _pops: int = 0

    def reset(self) -> None:
        self.frames.clear()
        self.next_seq = None
        self._low, self._pops = 1 << 30, 0

    def put(self, ext_seq: int, payload: bytes) -> None:
        nxt = self.next_seq
        if nxt is not None:
            if ext_seq < nxt:
                if nxt - ext_seq > RESYNC_GAP:
                    self.reset()
                else:
                    self.late += 1
                    return
            elif ext_seq - nxt > RESYNC_GAP:
                self.reset()
        self.frames[ext_seq] = payload
        if len(self.frames) > self.max_frames:
            keep = sorted(self.frames)[-self.prefill :]
            self.trimmed += len(self.frames) - len(keep)
            self.frames = {s: self.frames[s] for s in keep}
            self.next_seq = keep[0]

    def pop(self) -> bytes | None:
        """The frame due at this tick, or ``None`` (not started, or lost/late)."""
        if self.next_seq is None:
            if len(self.frames) < self.prefill:
                return None
            self.next_seq = min(self.frames)
        payload = self.frames.pop(self.next_seq, None)
        if payload is None:
            if not self.frames:
                # underrun: wait for the stream to come back and re-prefill
                self.next_seq = None
                self._low = 0
                return None
            self.concealed += 1
        self.next_seq += 1
        self._shrink()
        return payload

    def playout_counters(self) -> dict[str, int]:
        """Frames received but never played, by why (see the module's docstring)."""
        return {
            "frames_late": self.late,
            "frames_concealed": self.concealed,
            "frames_dropped": self.trimmed + self.skipped,
        }

    def _shrink(self) -> None:
        self._low = min(self._low, len(self.frames))
        self._pops += 1
        if self._pops < self.shrink_window:
            return
        if self._low > self.prefill and self.next_seq in self.frames:
            del self.frames[self.next_seq]
            self.next_seq += 1
            self.skipped += 1
        self._low, self._pops = 1 << 30, 0
