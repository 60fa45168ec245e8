"""Piper synthesis: sentence streaming, telephony frames, markup, the prompt cache, locking."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from speech.asr import WhisperRecognizer
from speech.audio import resample
from speech.g711 import alaw_decode, ulaw_decode
from speech.markup import MarkupError, Pause, parse_prompt, plain_text
from speech.settings import SpeechSettings
from speech.tts import FRAME_BYTES, Synthesizer

THREE = "Thanks for calling. Your order is on the way! Is there anything else?"


def test_synthesize_gives_pcm_at_the_voice_rate(synthesizer: Synthesizer) -> None:
    audio = synthesizer.synthesize("Welcome to Contact Hub.")
    assert audio.sample_rate == 22050 and audio.channels == 1
    assert 0.8 < audio.duration < 4.0
    assert np.abs(audio.samples.astype(np.int32)).max() > 5000


def test_sentences_stream_one_by_one_and_add_up_to_the_whole(synthesizer: Synthesizer) -> None:
    parts = list(synthesizer.iter_sentences(THREE))
    assert len(parts) == 3
    whole = synthesizer.synthesize(THREE)  # served from the cache the stream filled
    assert np.array_equal(np.concatenate([p.samples for p in parts]), whole.samples)


def test_pause_markup_is_exact_silence(synthesizer: Synthesizer) -> None:
    parts = list(synthesizer.iter_sentences("Hello. <pause 800ms> Goodbye."))
    assert len(parts) == 3
    assert parts[1].frames == round(0.8 * 22050) and not parts[1].samples.any()


def test_spelled_markup_is_heard_letter_by_letter(
    synthesizer: Synthesizer, recognizer: WhisperRecognizer
) -> None:
    said = recognizer.transcribe_utterance(synthesizer.synthesize("<spell>XK7</spell>")).text
    letters = "".join(ch for ch in said.upper() if ch.isalnum())
    assert letters in {"XK7", "XKSEVEN"}, said


def test_markup_parsing() -> None:
    assert parse_prompt("Code <spell>AB</spell>. <pause 1.5s>Dial <digits>0800-12</digits>.") == [
        "Code ay, bee.",
        Pause(1500),
        "Dial zero eight zero zero, one two.",
    ]
    assert plain_text("Press <digits>#</digits>.<pause>") == "Press pound."
    for bad in ("Hi <b>there</b>", "<digits>12a</digits>", "<pause 20s>", "<spell>☃</spell>"):
        with pytest.raises(MarkupError):
            parse_prompt(bad)


@pytest.mark.parametrize(("codec", "decode"), [("pcmu", ulaw_decode), ("pcma", alaw_decode)])
def test_telephony_frames_are_20ms_of_g711(synthesizer: Synthesizer, codec: str, decode) -> None:  # type: ignore[no-untyped-def]
    frames = list(synthesizer.iter_telephony(THREE, codec))  # type: ignore[arg-type]
    assert frames and all(len(f) == FRAME_BYTES for f in frames)
    pcm = decode(b"".join(frames))
    reference = resample(synthesizer.synthesize(THREE).samples, 22050, 8000)
    assert abs(len(pcm) - len(reference)) < FRAME_BYTES * 3  # one partial frame per sentence
    assert np.corrcoef(pcm[: len(reference) // 3], reference[: len(reference) // 3])[0, 1] > 0.95


async def test_stream_telephony_yields_before_the_rest_is_synthesized(tmp_path: Path) -> None:
    synth = Synthesizer(cache_dir=tmp_path)
    text = "First sentence comes quickly. The second one is made later. And then a third."
    stream = synth.stream_telephony(text, "pcmu")
    first = await anext(stream)
    assert len(first) == FRAME_BYTES
    assert len(list(tmp_path.rglob("*.pcm"))) == 1  # only the first sentence exists so far
    rest = [frame async for frame in stream]
    assert len(list(tmp_path.rglob("*.pcm"))) == 3
    assert [first, *rest] == list(synth.iter_telephony(text, "pcmu"))


def test_repeated_prompt_comes_from_the_cache(tmp_path: Path) -> None:
    synth = Synthesizer(cache_dir=tmp_path)
    synth.warm_up()
    assert not list(tmp_path.rglob("*.*")), "warming up leaves the prompt cache alone"
    first = synth.synthesize("Your call is important to us.")
    [entry] = list(tmp_path.rglob("*.pcm"))
    assert np.array_equal(np.frombuffer(entry.read_bytes(), np.int16), first.samples)
    entry.write_bytes(b"\0\0" * 100)  # a marker only the cache could return
    assert Synthesizer(cache_dir=tmp_path).synthesize("Your call is important to us.").frames == 100
    # Another text, or another speaking rate, is another entry.
    synth.synthesize("Your call matters to us.")
    Synthesizer(cache_dir=tmp_path, length_scale=1.3).synthesize("Your call is important to us.")
    assert len(list(tmp_path.rglob("*.pcm"))) == 3


def test_concurrent_synthesis_is_serialized_and_correct(recognizer: WhisperRecognizer) -> None:
    synth = Synthesizer()  # no cache: every call reaches Piper
    texts = ["Press one for sales.", "Press two for support.", "Press three for billing."]
    results: dict[str, str | None] = {}

    def speak(text: str) -> None:
        # Heard as the IVR hears a menu: with its options as hints. Without them tiny.en
        # misheard Piper's "three for billing" 14 times in 150 ("3 for Bill N").
        results[text] = recognizer.transcribe_utterance(synth.synthesize(text), texts).hint

    threads = [threading.Thread(target=speak, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {text: text for text in texts}


def test_missing_voice_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="voice config"):
        Synthesizer(voice=tmp_path / "nope.onnx")
    config = tmp_path / "fake.onnx.json"
    config.write_text(json.dumps({"audio": {"sample_rate": 16000}}))
    with pytest.raises(FileNotFoundError):
        Synthesizer(voice=tmp_path / "fake.onnx")


def test_stream_is_usable_from_a_running_loop(synthesizer: Synthesizer) -> None:
    async def collect() -> int:
        return len([f async for f in synthesizer.stream_telephony("Goodbye.", "pcma")])

    assert asyncio.run(collect()) > 10


def test_without_variation_a_text_always_sounds_the_same(tmp_path: Path) -> None:
    """Piper samples noise; with ``tts_variation`` off (as this suite runs) it does not."""
    varied = SpeechSettings(tts_variation=True)
    fixed = SpeechSettings(tts_variation=False)
    text = "Your call is important to us."
    one, two = (Synthesizer(settings=fixed).synthesize(text) for _ in range(2))
    assert np.array_equal(one.samples, two.samples)
    renderings = {Synthesizer(settings=varied).synthesize(text).samples.tobytes() for _ in range(3)}
    assert len(renderings) > 1
