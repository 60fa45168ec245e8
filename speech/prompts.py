"""IVR prompts rendered once: Piper audio as 8 kHz telephony PCM, in memory and on disk.

A menu prompt is heard by every caller, so it must cost one synthesis per process at most
(and none after a restart): the whole prompt is kept as 8 kHz int16 PCM in a bounded
in-memory LRU and in a file under the cache directory. The key is a hash of the
synthesizer's identity (voice, speed, noise) and the text, so an edited prompt or another
voice never serves stale audio.

Synthesis runs in one worker thread per process: off the event loop (it takes hundreds of
milliseconds) and serialized (Piper's espeak-ng phonemizer is not thread-safe). A prompt that
is not cached yet is streamed sentence by sentence, so the caller hears the first sentence
while the rest is made; callers who ask for a prompt that is being made wait for that one
rendering instead of starting another.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt

from speech.audio import Audio, resample
from speech.tts import TELEPHONY_RATE, Synthesizer

__all__ = ["PromptCache"]

Pcm = npt.NDArray[np.int16]
DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024  # about 70 minutes of 8 kHz prompts

# One thread for every synthesis in the process: serialized, and never on the event loop.
_TTS_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")


class _Rendering:
    """One prompt being made: its sentences so far, shared by everyone who plays it."""

    def __init__(self) -> None:
        self.chunks: list[Pcm] = []
        self.done = False
        self.error: Exception | None = None
        self.changed = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None

    def ready(self, index: int) -> bool:
        """Whether a listener that has played ``index`` chunks can go on."""
        return index < len(self.chunks) or self.done

    async def add(self, chunk: Pcm) -> None:
        async with self.changed:
            self.chunks.append(chunk)
            self.changed.notify_all()

    async def finish(self) -> None:
        async with self.changed:
            self.done = True
            self.changed.notify_all()


class PromptCache:
    """8 kHz prompts of one synthesizer, rendered once: memory first, then disk, then Piper."""

    def __init__(
        self,
        synthesizer: Synthesizer,
        cache_dir: str | Path | None = None,
        max_memory_bytes: int = DEFAULT_MEMORY_BYTES,
    ) -> None:
        self.synthesizer = synthesizer
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.max_memory_bytes = max_memory_bytes
        self._memory: OrderedDict[str, Pcm] = OrderedDict()
        self._memory_bytes = 0
        self._rendering: dict[str, _Rendering] = {}
        self.syntheses = 0  # prompts made by Piper (not found in memory or on disk)
        self.disk_hits = 0
        self.memory_hits = 0

    # ------------------------------------------------------------------------ keys, storage

    def key(self, text: str) -> str:
        """The cache key of a prompt: the synthesizer's identity and the text."""
        raw = f"{self.synthesizer.identity}\0pcm8k\0{text}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def _path(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / key[:2] / f"{key}.pcm8k"

    def _remember(self, key: str, pcm: Pcm) -> None:
        if key in self._memory:
            self._memory.move_to_end(key)
            return
        pcm.setflags(write=False)  # shared by every call that plays it
        self._memory[key] = pcm
        self._memory_bytes += pcm.nbytes
        while self._memory_bytes > self.max_memory_bytes and len(self._memory) > 1:
            _, dropped = self._memory.popitem(last=False)
            self._memory_bytes -= dropped.nbytes

    def _write(self, key: str, pcm: Pcm) -> None:
        path = self._path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent reader (another process) never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(pcm.astype("<i2").tobytes())
        os.replace(tmp, path)

    def cached(self, text: str) -> Pcm | None:
        """The prompt's 8 kHz PCM if it costs no synthesis (memory, else disk), else None."""
        key = self.key(text)
        pcm = self._memory.get(key)
        if pcm is not None:
            self._memory.move_to_end(key)
            self.memory_hits += 1
            return pcm
        path = self._path(key)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        pcm = np.frombuffer(data, dtype="<i2").astype(np.int16)
        self.disk_hits += 1
        self._remember(key, pcm)
        return pcm

    # ------------------------------------------------------------------------ rendering

    def _sentences(self, text: str) -> Iterator[Audio]:
        return self.synthesizer.iter_sentences(text)

    @staticmethod
    def _next_8k(sentences: Iterator[Audio]) -> Pcm | None:
        """Synthesize the next sentence (or pause) at 8 kHz; None when the prompt is done.
        Runs in the TTS thread."""
        audio = next(sentences, None)
        if audio is None:
            return None
        return resample(audio.mono().samples, audio.sample_rate, TELEPHONY_RATE)

    def _start(self, key: str, text: str) -> _Rendering:
        rendering = self._rendering.get(key)
        if rendering is None:
            rendering = self._rendering[key] = _Rendering()
            rendering.task = asyncio.get_running_loop().create_task(
                self._render(key, text, rendering), name="tts-prompt"
            )
        return rendering

    async def _render(self, key: str, text: str, rendering: _Rendering) -> None:
        """Make the whole prompt even if its first listener hangs up or barges in, so the
        next caller finds it cached."""
        loop = asyncio.get_running_loop()
        try:
            sentences = self._sentences(text)
            while True:
                chunk = await loop.run_in_executor(_TTS_EXECUTOR, self._next_8k, sentences)
                if chunk is None:
                    break
                await rendering.add(chunk)
            parts = rendering.chunks
            whole = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
            self.syntheses += 1
            self._remember(key, whole)
            await loop.run_in_executor(None, self._write, key, whole)
        except Exception as exc:  # delivered to every listener of this prompt
            rendering.error = exc
        finally:
            self._rendering.pop(key, None)
            await rendering.finish()

    async def stream(self, text: str) -> AsyncIterator[Pcm]:
        """The prompt as 8 kHz PCM chunks: all at once when cached, else one sentence at a
        time as Piper makes it; callers asking for a prompt being made share that rendering."""
        pcm = self.cached(text)
        if pcm is not None:
            yield pcm
            return
        rendering = self._start(self.key(text), text)
        index = 0
        while True:
            async with rendering.changed:
                await rendering.changed.wait_for(functools.partial(rendering.ready, index))
            if index < len(rendering.chunks):
                chunk, index = rendering.chunks[index], index + 1
                yield chunk
                continue
            if rendering.error is not None:
                raise rendering.error
            return

    async def render(self, text: str) -> Pcm:
        """The whole prompt as 8 kHz PCM (rendered now if it is not cached)."""
        parts = [chunk async for chunk in self.stream(text)]
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
