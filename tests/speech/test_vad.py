"""Endpointing and barge-in on real speech through the Silero VAD model."""

from __future__ import annotations

import numpy as np
import pytest

from speech.asr import WhisperRecognizer
from speech.audio import Audio
from speech.dtmf import generate_dtmf
from speech.tts import Synthesizer
from speech.vad import BargeInDetector, EndpointConfig, Endpointer, EndpointEvent
from speech.wer import normalize_for_wer
from tests.speech.conftest import phone_line, speech_bounds, with_silence

SAID = "I would like to check the status of my order, please."


@pytest.fixture(scope="module")
def caller(synthesizer: Synthesizer) -> Audio:
    return phone_line(synthesizer.synthesize(SAID))


def _frames(pcm: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """20 ms RTP-sized frames at 8 kHz, with their first sample's index."""
    return [(i, pcm[i : i + 160]) for i in range(0, len(pcm), 160)]


def _run(endpointer: Endpointer, audio: Audio) -> list[EndpointEvent]:
    events: list[EndpointEvent] = []
    for _, frame in _frames(audio.samples):
        events += endpointer.feed(frame)
    return events


def test_speech_between_silences_is_one_utterance_with_sensible_bounds(
    caller: Audio, recognizer: WhisperRecognizer
) -> None:
    audio = with_silence(caller, before=1.0, after=1.5, noise=40)
    begin, end = speech_bounds(caller)
    events = _run(Endpointer(8000, EndpointConfig(end_silence_ms=700)), audio)

    assert [e.kind for e in events] == ["speech_start", "speech_end"]
    started, ended = events
    assert abs(started.time - (1.0 + begin)) < 0.15
    assert abs(ended.time - (1.0 + end)) < 0.3
    assert ended.start == started.time
    utterance = ended.utterance
    assert utterance is not None and utterance.sample_rate == 8000
    assert end - begin < utterance.duration < end - begin + 0.6  # speech plus a little margin
    # Its first and last words are there: nothing was cut off. (The middle is up to tiny.en,
    # which heard "the status of" as "this data in" in 1 of 100 of Piper's renderings.)
    heard = normalize_for_wer(recognizer.transcribe_utterance(utterance).text)
    assert heard[:2] == ["i", "would"] and heard[-1] == "please", heard


def test_silence_timeout_is_a_setting(caller: Audio) -> None:
    """A pause shorter than end_silence_ms keeps the turn open; a longer one ends it."""
    gap = with_silence(caller, before=0.5, after=0.6)
    twice = Audio(np.concatenate([gap.samples, caller.samples, np.zeros(16000, np.int16)]), 8000)
    patient = _run(Endpointer(8000, EndpointConfig(end_silence_ms=1200)), twice)
    assert [e.kind for e in patient] == ["speech_start", "speech_end"]
    hasty = _run(Endpointer(8000, EndpointConfig(end_silence_ms=300)), twice)
    assert [e.kind for e in hasty] == ["speech_start", "speech_end"]
    assert hasty[1].time < patient[1].time - 2.0  # ended after the first sentence


def test_a_pause_hands_over_the_turn_so_far_before_its_end_is_decided(caller: Audio) -> None:
    """``early_ms``: a pause gives the turn's audio as it will end if nobody speaks again
    (the very samples of ``speech_end``); speech after the pause makes that one out of date."""
    once = with_silence(caller, before=0.5, after=1.0)
    config = EndpointConfig(end_silence_ms=700, early_ms=300)
    endpointer = Endpointer(8000, config)
    events = _run(endpointer, once)
    assert [e.kind for e in events] == ["speech_start", "speech_pause", "speech_end"]
    _, pause, end = events
    assert pause.utterance is not None and end.utterance is not None
    assert (pause.start, pause.time) == (end.start, end.time)
    assert np.array_equal(pause.utterance.samples, end.utterance.samples)

    gap = with_silence(caller, before=0.5, after=0.6)  # a pause between two sentences
    twice = Audio(np.concatenate([gap.samples, caller.samples, np.zeros(16000, np.int16)]), 8000)
    events = _run(Endpointer(8000, EndpointConfig(end_silence_ms=1200, early_ms=300)), twice)
    kinds = [e.kind for e in events]
    assert kinds[0] == "speech_start" and kinds[-1] == "speech_end", kinds
    pauses = [e for e in events if e.kind == "speech_pause"]
    assert len(pauses) >= 2  # one in the gap, one at the end
    assert pauses[0].time < events[-1].time - 2.0  # the first is out of date…
    assert pauses[-1].time == events[-1].time  # …the last is the turn
    off = _run(Endpointer(8000, EndpointConfig(end_silence_ms=700)), once)
    assert [e.kind for e in off] == ["speech_start", "speech_end"]  # 0: no pause events


def test_no_input_and_max_speech(caller: Audio) -> None:
    quiet = Audio(np.random.default_rng(1).normal(0, 40, 8000 * 4).astype(np.int16), 8000)
    events = _run(Endpointer(8000, EndpointConfig(no_input_ms=3000)), quiet)
    assert [e.kind for e in events] == ["no_input"]
    assert 2.9 < events[0].time < 3.2
    long_talk = with_silence(caller, before=0.3, after=0.5)
    events = _run(Endpointer(8000, EndpointConfig(max_speech_ms=1500)), long_talk)
    assert [e.kind for e in events] == ["speech_start", "max_speech"]
    assert events[1].utterance is not None and 1.3 < events[1].utterance.duration < 2.0


def test_endpointer_reset_listens_again(caller: Audio) -> None:
    endpointer = Endpointer(8000)
    audio = with_silence(caller, before=0.5, after=1.0)
    assert [e.kind for e in _run(endpointer, audio)] == ["speech_start", "speech_end"]
    assert _run(endpointer, audio) == []  # the turn is over until reset
    endpointer.reset()
    assert [e.kind for e in _run(endpointer, audio)] == ["speech_start", "speech_end"]
    endpointer.reset(EndpointConfig(no_input_ms=1000))  # the next question is shorter
    events = _run(endpointer, Audio(np.zeros(8000 * 2, np.int16), 8000))
    assert [e.kind for e in events] == ["no_input"] and events[0].time <= 1.05


def test_barge_in_on_speech_but_not_on_noise_or_tones(caller: Audio) -> None:
    detector = BargeInDetector(8000)
    audio = with_silence(caller, before=1.0, after=0.5, noise=40)
    fired = [
        i / 8000 for i in range(0, audio.frames, 160) if detector.feed(audio.samples[i : i + 160])
    ]
    begin, _ = speech_bounds(caller)
    assert len(fired) == 1 and 1.0 + begin < fired[0] < 1.0 + begin + 0.6

    for distraction in (
        np.random.default_rng(2).normal(0, 300, 8000 * 3).astype(np.int16),
        generate_dtmf("123456789*0#"),
    ):
        detector.reset()
        assert not any(
            detector.feed(distraction[i : i + 160]) for i in range(0, len(distraction), 160)
        )
