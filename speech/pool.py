"""A bounded worker pool that runs recognition off the event loop, with back-pressure.

Recognition is CPU-bound for hundreds of milliseconds. Run on the event loop, it would stall
every call's RTP and every web request; run in an unbounded executor, a burst of callers
would queue without limit and all of them would time out together. Here a fixed number of
worker threads take jobs from a bounded queue: `submit` waits while the queue is full (the
caller slows down), and `try_submit` refuses at once (so the IVR can play "please hold" or
fall back to DTMF instead of waiting).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from speech.asr import Recognizer, Transcript, Utterance
from speech.audio import Audio
from speech.settings import SpeechSettings

__all__ = ["PoolBusy", "RecognizerPool"]

T = TypeVar("T")
_Jobs = asyncio.Queue[tuple[Callable[[], Any], asyncio.Future[Any]]]


class PoolBusy(RuntimeError):
    """The recognition queue is full; try again later or use another input mode."""


class RecognizerPool:
    """`workers` recognitions at a time; at most `queue_size` more waiting."""

    def __init__(self, recognizer: Recognizer, workers: int = 1, queue_size: int = 16) -> None:
        if workers < 1 or queue_size < 1:
            raise ValueError("workers and queue_size must be at least 1")
        self.recognizer = recognizer
        self.workers = workers
        self.queue_size = queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asr")
        self._queue: _Jobs | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @classmethod
    def from_settings(cls, recognizer: Recognizer, settings: SpeechSettings) -> RecognizerPool:
        """A pool sized by ``HUB_SPEECH_ASR_WORKERS`` and ``HUB_SPEECH_ASR_QUEUE``."""
        return cls(recognizer, workers=settings.asr_workers, queue_size=settings.asr_queue)

    # -------------------------------------------------------------------------- lifecycle

    def _ensure_started(self) -> _Jobs:
        if self._closed:
            raise RuntimeError("the recognizer pool is closed")
        if self._queue is None:
            self._queue = asyncio.Queue(maxsize=self.queue_size)
            self._tasks = [
                asyncio.create_task(self._work(self._queue), name=f"asr-worker-{i}")
                for i in range(self.workers)
            ]
        return self._queue

    async def _work(
        self, queue: asyncio.Queue[tuple[Callable[[], Any], asyncio.Future[Any]]]
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job, future = await queue.get()
            try:
                if future.cancelled():
                    continue
                try:
                    result = await loop.run_in_executor(self._executor, job)
                except Exception as exc:  # delivered to the caller, not lost in a task
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(result)
            finally:
                queue.task_done()

    async def close(self) -> None:
        """Stop the workers (jobs still queued are cancelled) and the threads."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._queue is not None:
            while not self._queue.empty():
                _, future = self._queue.get_nowait()
                future.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> RecognizerPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def waiting(self) -> int:
        """Jobs queued and not yet started."""
        return 0 if self._queue is None else self._queue.qsize()

    # -------------------------------------------------------------------------- jobs

    async def submit(self, job: Callable[[], T]) -> T:
        """Run `job` in a worker; waits for a queue slot when the queue is full."""
        queue = self._ensure_started()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await queue.put((job, future))
        return await future

    async def try_submit(self, job: Callable[[], T]) -> T:
        """Like `submit`, but raise `PoolBusy` at once when the queue is full."""
        queue = self._ensure_started()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        try:
            queue.put_nowait((job, future))
        except asyncio.QueueFull:
            raise PoolBusy(f"{self.queue_size} recognitions already waiting") from None
        return await future

    async def transcribe_utterance(
        self, audio: Audio, hints: Sequence[str] | None = None
    ) -> Utterance:
        return await self.submit(
            functools.partial(self.recognizer.transcribe_utterance, audio, hints)
        )

    async def transcribe(self, audio: Audio, word_timestamps: bool = True) -> Transcript:
        return await self.submit(
            functools.partial(self.recognizer.transcribe, audio, word_timestamps)
        )

    async def transcribe_stereo(
        self, audio: Audio, speakers: tuple[str, str] = ("customer", "agent")
    ) -> Transcript:
        return await self.submit(
            functools.partial(self.recognizer.transcribe_stereo, audio, speakers)
        )
