"""In-band DTMF: a streaming Goertzel detector and a tone generator (ITU-T Q.23 / Q.24).

Some gateways send key presses as tones inside the audio instead of RFC 4733 events (those
are the voice channel's job). The detector follows the Q.24 receiver rules:

- Frequencies are the Q.23 pairs. A tone within ±1.5 % of nominal must be accepted and one
  off by ±3.5 % rejected; each tone's frequency is estimated from the phase advance of its
  DFT bin between the two halves of a block, and the limit sits between the two (2.5 %).
- Twist (high-group level minus low-group level) is limited: +8 dB normal, -4 dB reverse
  (the Bell/AT&T figures Q.24 lists, and what Asterisk and spandsp default to).
- Minimum duration: a digit needs two consecutive blocks (≥ 25.5 ms, so Q.24's 40 ms tones
  always pass) and ends after two blocks without it, which also spans brief drop-outs.

Blocks are 102 samples at 8 kHz (12.75 ms), spandsp's choice: the row and column tones then
fall near each other's spectral nulls. Detection is vectorized over all whole blocks of a
fed chunk; only the small per-block state machine runs in Python.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["DTMF_KEYS", "DtmfDetector", "generate_dtmf"]

LOW_GROUP: tuple[float, ...] = (697.0, 770.0, 852.0, 941.0)
HIGH_GROUP: tuple[float, ...] = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS: tuple[str, ...] = ("123A", "456B", "789C", "*0#D")  # rows: low tone; columns: high
_KEY_TONES: dict[str, tuple[float, float]] = {
    key: (LOW_GROUP[row], HIGH_GROUP[col])
    for row, keys in enumerate(DTMF_KEYS)
    for col, key in enumerate(keys)
}
_FULL_SCALE_DBM0 = 3.14  # a full-scale sine is +3.14 dBm0 (ITU-T G.711 μ-law load capacity)


def _dbm0_to_amplitude(dbm0: float) -> float:
    return 32767.0 * 10 ** ((dbm0 - _FULL_SCALE_DBM0) / 20)


def generate_dtmf(
    digits: str,
    sample_rate: int = 8000,
    tone_ms: int = 100,
    gap_ms: int = 60,
    amplitude: int = 7000,
    twist_db: float = 0.0,
) -> npt.NDArray[np.int16]:
    """Int16 PCM of the digits' Q.23 tone pairs, each followed by a silent gap.

    `amplitude` is each low-group tone's peak; `twist_db` raises (or, negative, lowers) the
    high-group tone relative to it, to emulate a line's twist.
    """
    unknown = sorted({d for d in digits.upper() if d not in _KEY_TONES})
    if unknown:
        raise ValueError(f"not DTMF keys: {''.join(unknown)!r} (use 0-9, *, #, A-D)")
    tone_n = round(sample_rate * tone_ms / 1000)
    gap = np.zeros(round(sample_rate * gap_ms / 1000), dtype=np.float64)
    t = np.arange(tone_n) / sample_rate
    high_amp = amplitude * 10 ** (twist_db / 20)
    parts: list[npt.NDArray[np.float64]] = []
    for digit in digits.upper():
        low, high = _KEY_TONES[digit]
        tone = amplitude * np.sin(2 * np.pi * low * t) + high_amp * np.sin(2 * np.pi * high * t)
        parts.append(tone)
        parts.append(gap)
    signal = np.concatenate(parts) if parts else np.zeros(0)
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16)


class DtmfDetector:
    """Streaming in-band DTMF detector: `feed` PCM chunks, get the digits that just ended."""

    BLOCK_AT_8K = 102

    def __init__(
        self,
        sample_rate: int = 8000,
        min_level_dbm0: float = -30.0,
        max_normal_twist_db: float = 8.0,
        max_reverse_twist_db: float = 4.0,
        max_frequency_deviation: float = 0.025,
        min_tone_share: float = 0.6,
        relative_peak_db: float = 8.0,
        min_blocks: int = 2,
        end_blocks: int = 2,
    ) -> None:
        self.sample_rate = sample_rate
        self.block = max(16, round(self.BLOCK_AT_8K * sample_rate / 8000))
        self.min_amplitude = _dbm0_to_amplitude(min_level_dbm0)
        self.max_normal_twist_db = max_normal_twist_db
        self.max_reverse_twist_db = max_reverse_twist_db
        self.max_frequency_deviation = max_frequency_deviation
        self.min_tone_share = min_tone_share
        self.relative_peak = 10 ** (relative_peak_db / 10)
        self.min_blocks = min_blocks
        self.end_blocks = end_blocks
        freqs = np.array(LOW_GROUP + HIGH_GROUP)
        self._freqs = freqs
        n = np.arange(self.block)
        # One complex DFT bin per tone (its first half also gives the phase-advance estimate).
        self._basis = np.exp(-2j * np.pi * np.outer(n, freqs) / sample_rate)
        self._half = self.block // 2
        self._pending = np.zeros(0, dtype=np.int16)
        self._current: str | None = None  # candidate digit seen in the last block(s)
        self._hits = 0
        self._misses = 0
        self._confirmed = False

    def reset(self) -> None:
        """Forget any partial tone (e.g. when a new prompt starts)."""
        self._pending = np.zeros(0, dtype=np.int16)
        self._current, self._hits, self._misses, self._confirmed = None, 0, 0, False

    def feed(self, pcm: npt.NDArray[np.int16]) -> list[str]:
        """Consume PCM at `sample_rate`; return the digits whose tone completed in it."""
        data = np.concatenate([self._pending, np.asarray(pcm, dtype=np.int16).reshape(-1)])
        whole = len(data) - len(data) % self.block
        self._pending = data[whole:]
        if whole == 0:
            return []
        blocks = data[:whole].astype(np.float64).reshape(-1, self.block)
        found: list[str] = []
        for key in self._classify(blocks):
            ended = self._step(key)
            if ended:
                found.append(ended)
        return found

    def flush(self) -> list[str]:
        """End of stream: return a digit whose tone was still sounding."""
        ended = self._current if self._confirmed else None
        self.reset()
        return [ended] if ended else []

    def _step(self, key: str | None) -> str | None:
        if self._confirmed:
            assert self._current is not None
            if key == self._current:
                self._misses = 0
                return None
            self._misses += 1
            if self._misses < self.end_blocks:
                return None
            ended = self._current
            self._current, self._hits, self._misses, self._confirmed = key, int(bool(key)), 0, False
            return ended
        if key is not None and key == self._current:
            self._hits += 1
        else:
            self._current, self._hits = key, int(key is not None)
        if self._current is not None and self._hits >= self.min_blocks:
            self._confirmed, self._misses = True, 0
        return None

    def _classify(self, blocks: npt.NDArray[np.float64]) -> list[str | None]:
        keys: list[str | None] = [None] * len(blocks)
        n = self.block
        energy = np.einsum("ij,ij->i", blocks, blocks)
        # Two tones at the minimum level need at least this much energy (|X|² ≤ n·Σx²), so
        # quieter blocks (most of a call) are skipped before any DFT.
        live = np.nonzero(energy >= n * self.min_amplitude**2 / 4)[0]
        if len(live) == 0:
            return keys
        block, energy = blocks[live], energy[live]
        full = block @ self._basis
        power = full.real**2 + full.imag**2
        low_i = power[:, :4].argmax(axis=1)
        high_i = power[:, 4:].argmax(axis=1) + 4
        rows = np.arange(len(block))
        low_p, high_p = power[rows, low_i], power[rows, high_i]
        amp_low, amp_high = 2 * np.sqrt(low_p) / n, 2 * np.sqrt(high_p) / n
        twist_db = 10 * np.log10(np.maximum(high_p, 1e-12) / np.maximum(low_p, 1e-12))
        share = 2 * (low_p + high_p) / (n * np.maximum(energy, 1e-12))
        ok = (amp_low >= self.min_amplitude) & (amp_high >= self.min_amplitude)
        ok &= (twist_db <= self.max_normal_twist_db) & (twist_db >= -self.max_reverse_twist_db)
        ok &= share >= self.min_tone_share
        for group, best in ((slice(0, 4), low_i), (slice(4, 8), high_i)):
            others = power[:, group].copy()
            others[rows, best - group.start] = 0
            ok &= power[rows, best] >= self.relative_peak * others.max(axis=1)
        candidates = np.nonzero(ok)[0]
        if len(candidates) == 0:
            return keys
        # Frequency estimate: phase advance of each tone's bin between the two half blocks.
        first = block[candidates, : self._half] @ self._basis[: self._half]
        second = full[candidates] - first
        good = np.ones(len(candidates), dtype=bool)
        for best in (low_i[candidates], high_i[candidates]):
            picked = np.arange(len(candidates))
            advance = np.angle(second[picked, best] * np.conj(first[picked, best]))
            offset_hz = advance * self.sample_rate / (2 * np.pi * self._half)
            good &= np.abs(offset_hz) <= self.max_frequency_deviation * self._freqs[best]
        for index in candidates[good]:
            keys[live[index]] = DTMF_KEYS[low_i[index]][high_i[index] - 4]
        return keys


def tone_pair(digit: str) -> tuple[float, float]:
    """The (low, high) Q.23 frequencies of a key."""
    return _KEY_TONES[digit.upper()]
