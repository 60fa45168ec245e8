"""In-band DTMF: all 16 keys through noise and twist, Q.24 limits, and streaming use."""

from __future__ import annotations

import numpy as np
import pytest

from speech.audio import resample
from speech.dtmf import DtmfDetector, generate_dtmf, tone_pair
from speech.g711 import ulaw_decode, ulaw_encode
from speech.tts import Synthesizer

ALL_KEYS = "123A456B789C*0#D"


def _detect(pcm: np.ndarray, chunk: int = 160) -> str:
    detector = DtmfDetector(sample_rate=8000)
    digits: list[str] = []
    for start in range(0, len(pcm), chunk):
        digits += detector.feed(pcm[start : start + chunk])
    return "".join(digits + detector.flush())


def _with_noise(pcm: np.ndarray, snr_db: float, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tone_rms = np.sqrt(np.mean(pcm[pcm != 0].astype(np.float64) ** 2))
    noise = rng.normal(0.0, tone_rms / 10 ** (snr_db / 20), len(pcm))
    return np.clip(np.round(pcm + noise), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("twist_db", [0.0, 6.0, -3.0])
@pytest.mark.parametrize("chunk", [160, 37])
def test_all_sixteen_keys_through_noise_and_twist(twist_db: float, chunk: int) -> None:
    pcm = _with_noise(generate_dtmf(ALL_KEYS, twist_db=twist_db), snr_db=15)
    assert _detect(pcm, chunk) == ALL_KEYS


def test_repeated_keys_are_separate_presses() -> None:
    assert _detect(generate_dtmf("1100##", tone_ms=50, gap_ms=45)) == "1100##"


def test_q24_minimum_durations_are_accepted() -> None:
    """Q.24: 40 ms tones with 40 ms pauses must be received."""
    assert _detect(generate_dtmf(ALL_KEYS, tone_ms=40, gap_ms=40)) == ALL_KEYS


def test_too_short_tones_are_ignored() -> None:
    assert _detect(generate_dtmf(ALL_KEYS, tone_ms=15, gap_ms=40)) == ""


@pytest.mark.parametrize("twist_db", [10.0, -6.0])
def test_twist_beyond_the_limits_is_rejected(twist_db: float) -> None:
    assert _detect(generate_dtmf(ALL_KEYS, twist_db=twist_db)) == ""


@pytest.mark.parametrize(("deviation", "expected"), [(0.015, ALL_KEYS), (0.035, "")])
def test_q24_frequency_tolerance(deviation: float, expected: str) -> None:
    """Accept tones within ±1.5 % of nominal; reject those off by ±3.5 %."""
    t = np.arange(800) / 8000
    silence = np.zeros(480, dtype=np.int16)
    for sign in (1, -1):
        parts = []
        for key in ALL_KEYS:
            low, high = tone_pair(key)
            phase = 2 * np.pi * (1 + sign * deviation) * t
            tone = 6000 * (np.sin(low * phase) + np.sin(high * phase))
            parts += [np.round(tone).astype(np.int16), silence]
        assert _detect(np.concatenate(parts)) == expected


def test_too_quiet_tones_are_ignored() -> None:
    """Below -30 dBm0 per tone (amplitude ~700) is line noise, not a key press."""
    assert _detect(generate_dtmf("5", amplitude=300)) == ""
    assert _detect(generate_dtmf("5", amplitude=1500)) == "5"


def test_a_digit_is_reported_when_its_tone_ends() -> None:
    detector = DtmfDetector()
    tone = generate_dtmf("7", tone_ms=200, gap_ms=0)
    assert detector.feed(tone) == []  # still sounding: the key is held down
    assert detector.feed(np.zeros(400, dtype=np.int16)) == ["7"]
    assert detector.feed(np.zeros(400, dtype=np.int16)) == []


def test_generator_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="not DTMF keys"):
        generate_dtmf("12x")


def test_no_false_digits_on_speech(synthesizer: Synthesizer) -> None:
    """Voiced speech has strong harmonics in the DTMF band; none may pass as a key press."""
    prompts = [
        "Welcome to Contact Hub. Please listen carefully, as our menu options have changed.",
        "For billing questions, press one. To check an order, press two.",
        "My account number is four four seven one nine zero two, and my name is Sarah Johnson.",
        "Hello? Hello! Can you hear me? I need help with my internet connection right now.",
    ]
    for prompt in prompts:
        audio = synthesizer.synthesize(prompt)
        pcm = resample(audio.samples, audio.sample_rate, 8000)
        assert _detect(pcm) == "", prompt
        assert _detect(ulaw_decode(ulaw_encode(pcm))) == "", prompt
