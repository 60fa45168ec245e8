"""QA transcription: a two-party stereo call yields segments by speaker, in time order."""

from __future__ import annotations

import itertools

import numpy as np

from speech.asr import WhisperRecognizer
from speech.audio import Audio, read_wav, stereo, wav_bytes
from speech.tts import Synthesizer
from speech.wer import word_errors
from tests.speech.conftest import phone_line, speech_bounds

TURNS = [  # (speaker, start second, words)
    ("customer", 0.5, "Hi, I am calling about my last invoice."),
    ("agent", 3.6, "Sure, can you give me the invoice number?"),
    ("customer", 7.0, "Yes, the one from last month."),
    ("agent", 9.6, "Thank you, I found it."),
]


def _place(track: np.ndarray, audio: Audio, at: float) -> None:
    start = round(at * audio.sample_rate)
    track[start : start + audio.frames] += audio.samples


def test_stereo_call_is_split_by_speaker_in_time_order(
    synthesizer: Synthesizer, recognizer: WhisperRecognizer
) -> None:
    rate, length = 8000, 12.5
    tracks = {
        "customer": np.zeros(int(rate * length), np.int16),
        "agent": np.zeros(int(rate * length), np.int16),
    }
    truth = []
    for speaker, at, words in TURNS:
        audio = phone_line(synthesizer.synthesize(words))
        _place(tracks[speaker], audio, at)
        begin, end = speech_bounds(audio)
        truth.append((speaker, at + begin, at + end, words))
    call = stereo(Audio(tracks["customer"], rate), Audio(tracks["agent"], rate))
    call = read_wav(wav_bytes(call))  # as it would come from the recorder

    transcript = recognizer.transcribe_stereo(call, speakers=("customer", "agent"))

    segments = transcript.segments
    assert [s.speaker for s in segments] == [t[0] for t in truth]
    starts = [s.start for s in segments]
    assert starts == sorted(starts)
    for segment, (_, begin, end, words) in zip(segments, truth, strict=True):
        assert abs(segment.start - begin) < 0.8, (segment, begin)
        assert abs(segment.end - end) < 0.8, (segment, end)
        # The right words on the right side; each word is up to tiny.en and Piper's noise,
        # which turned "It is seven seven four two" into "this 7 7 4 2" and "The number is
        # seven…" into "The number to 777 -42" (digits are tested in test_roundtrip).
        errors, count = word_errors(words, segment.text)
        assert errors <= max(1, count // 3), (words, segment.text)
        assert segment.words, "word timestamps are included"
        for word in segment.words:
            assert segment.start - 0.05 <= word.start <= word.end <= segment.end + 0.05


def test_mono_recording_has_segments_with_word_times(
    synthesizer: Synthesizer, recognizer: WhisperRecognizer
) -> None:
    said = "Your order is on the way. It will arrive on Friday."
    audio = synthesizer.synthesize(said)
    transcript = recognizer.transcribe(audio, word_timestamps=True)
    assert transcript.segments and transcript.duration == audio.duration
    words = [w for s in transcript.segments for w in s.words]
    assert word_errors(said, " ".join(w.text for w in words))[0] <= 1
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert words[-1].end <= audio.duration + 0.1
