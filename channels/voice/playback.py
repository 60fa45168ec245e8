"""What a call can play: 8 kHz int16 audio, served one 20 ms frame per media-clock tick.

Sources are pulled by the media clock (never pushed), so a slow producer (TTS) shows as
silence, not as a burst. The clock pulls on the media thread; a :class:`StreamSource`'s
producer runs on the hub loop, so its buffer has a lock of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from speech.audio import Audio, StreamResampler, read_wav, resample

RATE = 8000
FRAME = 160
Pcm = npt.NDArray[np.int16]


class FrameSource(Protocol):
    def next_frame(self) -> Pcm | None:
        """The next 160 samples, or ``None`` when the source is finished."""

    def close(self) -> None: ...


def load_wav_8k(path: str | Path) -> Pcm:
    """A WAV file as 8 kHz mono int16 (resampled if needed)."""
    audio = read_wav(path).mono()
    if audio.sample_rate != RATE:
        return resample(audio.samples, audio.sample_rate, RATE)
    return audio.samples


class PcmSource:
    """Plays a buffer once, or loops it (music on hold)."""

    def __init__(self, samples: Pcm, loop: bool = False) -> None:
        if samples.shape[0] == 0:
            samples = np.zeros(FRAME, dtype=np.int16)
        pad = (-samples.shape[0]) % FRAME
        if pad:
            samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
        self._frames = samples.reshape(-1, FRAME)
        self._pos = 0
        self.loop = loop

    def next_frame(self) -> Pcm | None:
        if self._pos >= len(self._frames):
            if not self.loop:
                return None
            self._pos = 0
        frame = self._frames[self._pos]
        self._pos += 1
        return frame

    def close(self) -> None:
        self._pos = len(self._frames)
        self.loop = False


def tone(freqs: tuple[float, ...], seconds: float, level: float = 0.25) -> Pcm:
    """A sum of sines at 8 kHz, e.g. a generated music-on-hold pattern."""
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) / max(len(freqs), 1)
    return (np.asarray(wave) * level * 32767).astype(np.int16)


def default_moh() -> Pcm:
    """Generated music on hold: a soft 440/660 Hz chime, 0.6 s on, 0.4 s off."""
    on = tone((440.0, 660.0), 0.6, 0.2)
    return np.concatenate([on, np.zeros(int(0.4 * RATE), dtype=np.int16)])


class StreamSource:
    """Frames from an async producer (e.g. TTS chunks) at any sample rate.

    A background task drains ``chunks`` into a buffer; the clock takes 160 samples per
    tick. The source ends when the producer is exhausted and the buffer is empty.
    """

    def __init__(self, chunks: AsyncIterable[Pcm | Audio], sample_rate: int = RATE) -> None:
        self._buf = np.zeros(0, dtype=np.int16)
        self._done = False
        self._rate = sample_rate
        self._resampler: StreamResampler | None = None
        self._lock = threading.Lock()  # the producer's loop vs. the media clock's thread
        self._task = asyncio.get_running_loop().create_task(self._pump(chunks))

    async def _pump(self, chunks: AsyncIterable[Pcm | Audio]) -> None:
        try:
            async for chunk in chunks:
                if isinstance(chunk, Audio):
                    rate, pcm = chunk.sample_rate, chunk.mono().samples
                else:
                    rate, pcm = self._rate, np.asarray(chunk, dtype=np.int16)
                if rate != RATE:
                    if self._resampler is None or self._resampler.from_rate != rate:
                        self._resampler = StreamResampler(rate, RATE)
                    pcm = self._resampler.feed(pcm)
                with self._lock:
                    self._buf = np.concatenate([self._buf, pcm])
            if self._resampler is not None:
                tail = self._resampler.feed(np.zeros(0, np.int16), last=True)
                with self._lock:
                    self._buf = np.concatenate([self._buf, tail])
        finally:
            self._done = True

    def next_frame(self) -> Pcm | None:
        with self._lock:
            return self._next_frame()

    def _next_frame(self) -> Pcm | None:
        if self._buf.shape[0] >= FRAME:
            frame, self._buf = self._buf[:FRAME], self._buf[FRAME:]
            return frame
        if self._done:
            if self._buf.shape[0]:
                frame = np.zeros(FRAME, dtype=np.int16)
                frame[: self._buf.shape[0]] = self._buf
                self._buf = self._buf[:0]
                return frame
            return None
        return np.zeros(FRAME, dtype=np.int16)  # producer is late: silence

    def close(self) -> None:
        self._task.cancel()
        with self._lock:
            self._buf = self._buf[:0]
        self._done = True
