"""IVR prompts are rendered once per process (and once per cache directory), at 8 kHz."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from speech.asr import WhisperRecognizer
from speech.audio import Audio
from speech.prompts import PromptCache
from speech.tts import Synthesizer

MENU = "For billing, press 2. For anything else, stay on the line."


def loud_seconds(pcm: np.ndarray) -> float:
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160).astype(np.float64)
    return float((np.sqrt((frames**2).mean(axis=1)) > 500).sum() * 0.02)


async def test_a_prompt_is_made_once_then_served_from_memory_and_from_disk(
    synthesizer: Synthesizer, recognizer: WhisperRecognizer, tmp_path: Path
) -> None:
    cache = PromptCache(synthesizer, tmp_path / "prompts")
    assert cache.cached(MENU) is None
    first = await cache.render(MENU)
    assert cache.syntheses == 1
    # 8 kHz telephony audio of the whole prompt, which a listener understands
    assert loud_seconds(first) >= 1.5
    heard = await asyncio.to_thread(recognizer.transcribe, Audio(first, 8000))
    assert "billing" in heard.text.lower()

    again = await cache.render(MENU)
    assert np.array_equal(again, first)
    assert cache.syntheses == 1 and cache.memory_hits == 1

    restarted = PromptCache(synthesizer, tmp_path / "prompts")  # a new process, same disk
    from_disk = await restarted.render(MENU)
    assert restarted.syntheses == 0 and restarted.disk_hits == 1
    assert np.array_equal(from_disk, first)

    slower = PromptCache(Synthesizer(length_scale=1.4), tmp_path / "prompts")
    slow = await slower.render(MENU)  # another voice setting is never served stale audio
    assert slower.syntheses == 1
    assert len(slow) > len(first) * 1.2


async def test_callers_asking_at_once_share_one_rendering(
    synthesizer: Synthesizer, tmp_path: Path
) -> None:
    cache = PromptCache(synthesizer, tmp_path / "prompts")
    text = "Your call is important to us. Please stay on the line."
    a, b, c = await asyncio.gather(cache.render(text), cache.render(text), cache.render(text))
    assert cache.syntheses == 1
    assert np.array_equal(a, b) and np.array_equal(a, c)


async def test_a_caller_who_barges_in_still_leaves_the_prompt_cached(
    synthesizer: Synthesizer, tmp_path: Path
) -> None:
    cache = PromptCache(synthesizer, tmp_path / "prompts")
    text = "Welcome to the help line. Calls are recorded. Please listen to the options."
    stream = cache.stream(text)
    first_sentence = await anext(stream)
    assert loud_seconds(first_sentence) > 0.3
    await stream.aclose()  # the caller talked over the first sentence
    whole = await cache.render(text)  # the next caller
    assert cache.syntheses == 1
    assert len(whole) > len(first_sentence)
    assert np.array_equal(whole[: len(first_sentence)], first_sentence)
    assert PromptCache(synthesizer, tmp_path / "prompts").cached(text) is not None


async def test_memory_is_bounded_and_the_disk_keeps_the_rest(
    synthesizer: Synthesizer, tmp_path: Path
) -> None:
    cache = PromptCache(synthesizer, tmp_path / "prompts", max_memory_bytes=1)
    one = await cache.render("Press one.")
    await cache.render("Press two.")
    again = cache.cached("Press one.")  # dropped from memory, read back from disk
    assert cache.disk_hits == 1 and cache.syntheses == 2
    assert again is not None and np.array_equal(again, one)
