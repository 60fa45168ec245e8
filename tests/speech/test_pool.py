"""Recognition off the event loop, in a bounded pool with back-pressure."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from speech.asr import WhisperRecognizer
from speech.audio import Audio, AudioError
from speech.pool import PoolBusy, RecognizerPool
from speech.settings import SpeechSettings
from speech.tts import Synthesizer

PHRASES = ["Yes, please.", "No, thank you.", "Speak to an agent.", "Order status.", "Billing."]


async def test_many_callers_share_the_pool_and_the_loop_keeps_running(
    synthesizer: Synthesizer, recognizer: WhisperRecognizer
) -> None:
    audios = [synthesizer.synthesize(p) for p in PHRASES]
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    async with RecognizerPool(recognizer, workers=1, queue_size=2) as pool:
        tick_task = asyncio.create_task(ticker())
        # With the phrases as hints, as an IVR menu listens: without them tiny.en heard
        # Piper's "Billing." as "Bill Link" in 1 of 100 renderings.
        results = await asyncio.gather(*(pool.transcribe_utterance(a, PHRASES) for a in audios))
        stop.set()
        await tick_task
    assert [result.hint for result in results] == PHRASES
    assert ticks >= 10, "the event loop was blocked while recognizing"


async def test_full_queue_pushes_back(recognizer: WhisperRecognizer) -> None:
    release = threading.Event()
    async with RecognizerPool(recognizer, workers=1, queue_size=1) as pool:
        running = asyncio.create_task(pool.submit(lambda: release.wait(10)))
        await asyncio.sleep(0.05)  # the worker has taken it; the queue is empty again
        queued = asyncio.create_task(pool.submit(lambda: "second"))
        await asyncio.sleep(0.05)
        assert pool.waiting == 1
        with pytest.raises(PoolBusy):
            await pool.try_submit(lambda: "third")
        blocked = asyncio.create_task(pool.submit(lambda: "fourth"))  # waits for a slot
        await asyncio.sleep(0.05)
        assert not blocked.done()
        release.set()
        assert await running is True
        assert await queued == "second" and await blocked == "fourth"


async def test_errors_reach_the_caller(recognizer: WhisperRecognizer) -> None:
    recognizer.warm_up()
    pool = RecognizerPool.from_settings(recognizer, SpeechSettings(asr_workers=2, asr_queue=3))
    assert (pool.workers, pool.queue_size) == (2, 3)
    async with pool:
        with pytest.raises(AudioError):
            await pool.transcribe_utterance(Audio(np.zeros(0, np.int16), 8000))
        silence = await pool.transcribe_utterance(Audio(np.zeros(8000, np.int16), 8000))
        assert silence.text == ""
