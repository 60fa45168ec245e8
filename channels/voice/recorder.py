"""Stereo call recording: the caller on the left, the other party on the right.

Frames are copied into a preallocated half-second interleaved buffer and written twice a
second, so recording costs two slice copies per 20 ms tick. The WAV header is fixed up on
:meth:`StereoRecorder.close` (Python's :mod:`wave`).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]
FRAME = 160
FLUSH_FRAMES = 25  # 0.5 s: 16 KiB per recording call


class StereoRecorder:
    def __init__(self, path: str | Path, sample_rate: int = 8000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 (closed in close())
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self._buf = np.zeros((FLUSH_FRAMES * FRAME, 2), dtype="<i2")
        self._used = 0  # samples (per channel) in the buffer
        self.frames = 0
        self.closed = False

    def write(self, left: Pcm, right: Pcm) -> None:
        """One 20 ms frame per channel (160 samples each)."""
        if self.closed:
            return
        n = left.shape[0]
        if self._used + n > self._buf.shape[0]:
            self.flush()
        self._buf[self._used : self._used + n, 0] = left
        self._buf[self._used : self._used + n, 1] = right[:n]
        self._used += n
        if self._used == self._buf.shape[0]:
            self.flush()

    def flush(self) -> None:
        if not self._used:
            return
        self._wav.writeframes(self._buf[: self._used].tobytes())
        self.frames += self._used
        self._used = 0

    def close(self) -> Path:
        if not self.closed:
            self.flush()
            self._wav.close()
            self.closed = True
        return self.path
