"""Stereo call recording: the caller on the left, the other party on the right.

Frames are buffered and written about once a second, so recording costs little per tick.
The WAV header is fixed up on :meth:`StereoRecorder.close` (Python's :mod:`wave`).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]
FLUSH_FRAMES = 50


class StereoRecorder:
    def __init__(self, path: str | Path, sample_rate: int = 8000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 (closed in close())
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self._left: list[Pcm] = []
        self._right: list[Pcm] = []
        self.frames = 0
        self.closed = False

    def write(self, left: Pcm, right: Pcm) -> None:
        if self.closed:
            return
        self._left.append(left)
        self._right.append(right)
        if len(self._left) >= FLUSH_FRAMES:
            self.flush()

    def flush(self) -> None:
        if not self._left:
            return
        both = np.empty((sum(len(x) for x in self._left), 2), dtype="<i2")
        both[:, 0] = np.concatenate(self._left)
        both[:, 1] = np.concatenate(self._right)
        self._wav.writeframes(both.tobytes())
        self.frames += both.shape[0]
        self._left.clear()
        self._right.clear()

    def close(self) -> Path:
        if not self.closed:
            self.flush()
            self._wav.close()
            self.closed = True
        return self.path
