"""WAV reading/writing, resampling and stereo split, and clean rejection of bad audio."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speech.audio import (
    Audio,
    AudioError,
    StreamResampler,
    g711_wav_bytes,
    read_wav,
    resample,
    split_stereo,
    stereo,
    wav_bytes,
    write_wav,
)
from speech.g711 import ulaw_encode
from tests.support import require_tool


def _sine(freq: float, rate: int, seconds: float = 0.5, amp: float = 8000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _peak_hz(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate)[spectrum.argmax()])


def test_wav_round_trip_mono_and_stereo(tmp_path: Path) -> None:
    mono = Audio(_sine(440, 16000), 16000)
    write_wav(tmp_path / "mono.wav", mono)
    back = read_wav(tmp_path / "mono.wav")
    assert back.sample_rate == 16000 and np.array_equal(back.samples, mono.samples)

    both = stereo(Audio(_sine(300, 8000), 8000), Audio(_sine(1000, 8000, 0.25), 8000))
    back = read_wav(wav_bytes(both))
    assert back.channels == 2 and np.array_equal(back.samples, both.samples)
    left, right = split_stereo(back)
    assert abs(_peak_hz(left.samples, 8000) - 300) < 20
    assert abs(_peak_hz(right.samples[:2000], 8000) - 1000) < 20
    assert not right.samples[2000:].any()  # the shorter channel was padded with silence


@pytest.mark.parametrize(
    "sox_args",
    [
        ["-e", "u-law", "-b", "8"],
        ["-e", "a-law", "-b", "8"],
        ["-e", "unsigned", "-b", "8"],
        ["-e", "signed", "-b", "24"],
        ["-e", "signed", "-b", "32"],
        ["-e", "floating-point", "-b", "32"],
    ],
    ids=["ulaw", "alaw", "u8", "s24", "s32", "f32"],
)
def test_reads_the_wav_encodings_recorders_write(tmp_path: Path, sox_args: list[str]) -> None:
    """Files converted by sox read back close to the original 16-bit signal."""
    sox = require_tool("sox")
    original = Audio(_sine(1000, 8000), 8000)
    write_wav(tmp_path / "in.wav", original)
    subprocess.run([sox, tmp_path / "in.wav", *sox_args, tmp_path / "out.wav"], check=True)
    got = read_wav(tmp_path / "out.wav")
    assert got.sample_rate == 8000 and got.frames == original.frames
    error = np.abs(got.samples.astype(np.int32) - original.samples).max()
    assert error <= 400  # 8-bit formats quantize; the others are near exact


def test_resample_between_telephony_and_model_rates_keeps_pitch_and_length() -> None:
    tone = _sine(1000, 8000, 1.0)
    for rate in (16000, 22050, 48000):
        up = resample(tone, 8000, rate)
        assert up.dtype == np.int16 and abs(len(up) - rate) <= 2
        assert abs(_peak_hz(up, rate) - 1000) < 5
        down = resample(up, rate, 8000)
        assert abs(_peak_hz(down, 8000) - 1000) < 5
        # soxr's filter delay is compensated, so the round trip lines up with the original
        middle = slice(1000, 7000)
        assert np.abs(down[middle].astype(np.int32) - tone[middle]).max() < 300


def test_stream_resampler_matches_one_shot_resampling() -> None:
    tone = _sine(440, 8000, 1.0)
    stream = StreamResampler(8000, 16000)
    chunks = [stream.feed(tone[i : i + 160]) for i in range(0, len(tone), 160)]
    chunks.append(stream.feed(np.zeros(0, dtype=np.int16), last=True))
    streamed = np.concatenate(chunks)
    assert abs(len(streamed) - 16000) <= 2
    assert abs(_peak_hz(streamed, 16000) - 440) < 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, this is not audio at all", "not a WAV"),
        (b"RIFX" + b"\0" * 40, "big-endian"),
        (b"RIFF\x24\0\0\0WAVE", "no 'fmt '"),
    ],
    ids=["empty", "garbage", "rifx", "header-only"],
)
def test_rejects_unusable_bytes_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        read_wav(data)


def test_rejects_truncated_and_empty_wavs() -> None:
    good = wav_bytes(Audio(_sine(440, 8000), 8000))
    with pytest.raises(AudioError, match="truncated"):
        read_wav(good[:1000])
    with pytest.raises(AudioError, match="truncated"):
        read_wav(good[:40])  # header, no data chunk
    with pytest.raises(AudioError, match="empty WAV"):
        read_wav(wav_bytes(Audio(np.zeros(0, dtype=np.int16), 8000)))
    corrupt = bytearray(good)
    corrupt[32:34] = (7).to_bytes(2, "little")  # block align that fits no sample size
    with pytest.raises(AudioError, match="block align"):
        read_wav(bytes(corrupt))


def test_rejects_unsupported_encoding_and_missing_file(tmp_path: Path) -> None:
    sox = require_tool("sox")
    write_wav(tmp_path / "in.wav", Audio(_sine(440, 8000), 8000))
    adpcm = tmp_path / "adpcm.wav"
    subprocess.run([sox, tmp_path / "in.wav", "-e", "ima-adpcm", adpcm], check=True)
    with pytest.raises(AudioError, match="unsupported WAV encoding"):
        read_wav(adpcm)
    with pytest.raises(AudioError, match="cannot read"):
        read_wav(tmp_path / "nowhere.wav")


def test_rejects_bad_shapes_rates_and_channel_counts() -> None:
    with pytest.raises(AudioError, match="int16"):
        Audio(np.zeros(10, dtype=np.float32), 8000)  # type: ignore[arg-type]
    with pytest.raises(AudioError, match="sample rate"):
        Audio(np.zeros(10, dtype=np.int16), 0)
    with pytest.raises(AudioError, match="stereo"):
        split_stereo(Audio(np.zeros(10, dtype=np.int16), 8000))
    with pytest.raises(AudioError, match="sample rate"):
        resample(np.zeros(10, dtype=np.int16), 8000, -1)


def _valid_wavs() -> list[bytes]:
    tone = Audio(_sine(440, 8000, 0.05), 8000)
    return [wav_bytes(tone), g711_wav_bytes(ulaw_encode(tone.samples), "pcmu")]


@pytest.mark.parametrize("index", [0, 1], ids=["pcm16", "ulaw"])
def test_every_truncation_is_rejected_cleanly(index: int) -> None:
    """Cut anywhere: the reader returns whole frames or raises AudioError, nothing else."""
    data = _valid_wavs()[index]
    for cut in range(len(data)):
        try:
            audio = read_wav(data[:cut])
        except AudioError:
            continue
        assert audio.frames > 0


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_headers_never_crash(data: st.DataObject) -> None:
    """Random bytes written over the header give AudioError or a valid Audio."""
    wav = bytearray(_valid_wavs()[data.draw(st.integers(0, 1))])
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, 60))
        wav[position] = data.draw(st.integers(0, 255))
    try:
        audio = read_wav(bytes(wav))
    except AudioError:
        return
    assert audio.samples.dtype == np.int16 and audio.frames > 0
