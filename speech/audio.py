"""Audio in memory: the `Audio` value, WAV read/write, resampling and stereo split.

Everything the engines take or return is 16-bit PCM (`int16`), mono ``(n,)`` or interleaved
``(n, channels)``. Input from outside (files, uploads, gateways) is checked here, so a corrupt,
truncated, empty or unsupported file raises `AudioError` with a message a person can act on,
never an exception from deep inside numpy or a model.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import soxr

from speech.g711 import alaw_decode, ulaw_decode

__all__ = [
    "Audio",
    "AudioError",
    "StreamResampler",
    "decode_compressed",
    "g711_wav_bytes",
    "pcm_to_float",
    "read_wav",
    "resample",
    "split_stereo",
    "stereo",
    "wav_bytes",
    "write_wav",
]

# WAVE format tags (RFC 2361) this reader understands.
_PCM = 0x0001
_IEEE_FLOAT = 0x0003
_ALAW = 0x0006
_MULAW = 0x0007
_EXTENSIBLE = 0xFFFE
_MIN_RATE, _MAX_RATE = 1000, 384_000


class AudioError(ValueError):
    """Audio that cannot be used: corrupt, truncated, empty or in an unsupported format."""


@dataclass(frozen=True, slots=True)
class Audio:
    """16-bit PCM at a sample rate; `samples` is ``(n,)`` for mono or ``(n, channels)``."""

    samples: npt.NDArray[np.int16]
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.dtype != np.int16:
            raise AudioError(f"samples must be int16 PCM, got {self.samples.dtype}")
        if self.samples.ndim not in (1, 2):
            raise AudioError(f"samples must be (n,) or (n, channels), got {self.samples.shape}")
        if not _MIN_RATE <= self.sample_rate <= _MAX_RATE:
            raise AudioError(f"unsupported sample rate {self.sample_rate} Hz")

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[1])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    def mono(self) -> Audio:
        """Mixed down to one channel (the mean, so nothing clips)."""
        if self.channels == 1:
            return self if self.samples.ndim == 1 else Audio(self.samples[:, 0], self.sample_rate)
        mixed = self.samples.astype(np.int32).mean(axis=1)
        return Audio(mixed.round().astype(np.int16), self.sample_rate)

    def resampled(self, rate: int) -> Audio:
        """This audio at another sample rate."""
        if rate == self.sample_rate:
            return self
        return Audio(resample(self.samples, self.sample_rate, rate), rate)


def pcm_to_float(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    """int16 PCM to float32 in [-1, 1), the form Whisper and Silero VAD take."""
    return pcm.astype(np.float32) / 32768.0


# ---------------------------------------------------------------------------- WAV reading


def read_wav(source: str | PathLike[str] | bytes | bytearray | memoryview | BinaryIO) -> Audio:
    """Read a RIFF/WAVE file: PCM 8/16/24/32-bit, float, G.711 μ-law or A-law; to int16.

    `source` is a path, the file's bytes, or a binary file object.
    """
    data = _load_bytes(source)
    if not data:
        raise AudioError("empty input: no bytes to read")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        if data[:4] == b"RIFX":
            raise AudioError("big-endian RIFX WAV files are not supported")
        raise AudioError("not a WAV file: the RIFF/WAVE header is missing")
    fmt: tuple[int, int, int, int, int] | None = None
    payload: bytes | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(body)
        elif chunk_id == b"data":
            if len(body) < size:
                raise AudioError(
                    f"truncated WAV: the data chunk declares {size} bytes "
                    f"but only {len(body)} are present"
                )
            payload = body
            break
        offset += 8 + size + (size & 1)  # chunks are padded to an even length
    if fmt is None:
        raise AudioError("corrupt WAV: no 'fmt ' chunk before the audio data")
    if payload is None:
        raise AudioError("truncated WAV: no 'data' chunk")
    return _decode(payload, *fmt)


def _load_bytes(
    source: str | PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | PathLike):
        try:
            return Path(source).read_bytes()
        except OSError as exc:
            raise AudioError(f"cannot read {source}: {exc.strerror or exc}") from exc
    return source.read()


def _parse_fmt(body: bytes) -> tuple[int, int, int, int, int]:
    """(format tag, channels, sample rate, block align, bits per sample)."""
    if len(body) < 16:
        raise AudioError("corrupt WAV: the 'fmt ' chunk is shorter than 16 bytes")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        if len(body) < 40:
            raise AudioError("corrupt WAV: WAVE_FORMAT_EXTENSIBLE without its sub-format")
        (tag,) = struct.unpack_from("<H", body, 24)  # first two bytes of the sub-format GUID
    if channels < 1:
        raise AudioError("corrupt WAV: zero channels")
    if not _MIN_RATE <= rate <= _MAX_RATE:
        raise AudioError(f"unsupported sample rate {rate} Hz")
    return tag, channels, rate, block_align, bits


def _decode(payload: bytes, tag: int, channels: int, rate: int, align: int, bits: int) -> Audio:
    width = {_PCM: bits // 8, _IEEE_FLOAT: bits // 8, _ALAW: 1, _MULAW: 1}.get(tag)
    if width is None:
        raise AudioError(f"unsupported WAV encoding (format tag 0x{tag:04x}); use PCM or G.711")
    pcm_ok = tag != _PCM or bits in (8, 16, 24, 32)
    if not pcm_ok or (tag == _IEEE_FLOAT and bits not in (32, 64)):
        raise AudioError(f"unsupported WAV sample size: {bits} bits")
    if align != width * channels:
        raise AudioError(f"corrupt WAV: block align {align} does not match {channels}×{width} B")
    if not payload:
        raise AudioError("empty WAV: the data chunk holds no samples")
    usable = len(payload) - len(payload) % align
    if usable == 0:
        raise AudioError("truncated WAV: not even one whole sample frame")
    raw = payload[:usable]
    if tag == _MULAW:
        pcm = ulaw_decode(raw)
    elif tag == _ALAW:
        pcm = alaw_decode(raw)
    elif tag == _IEEE_FLOAT:
        floats = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8")
        floats = np.nan_to_num(floats, nan=0.0, posinf=1.0, neginf=-1.0)
        pcm = np.clip(np.round(floats * 32767.0), -32768, 32767).astype(np.int16)
    elif bits == 8:
        pcm = ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    elif bits == 16:
        pcm = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    elif bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        pcm = (triples[:, 1].astype(np.uint16) | (triples[:, 2].astype(np.uint16) << 8)).view(
            np.int16
        )
    else:
        pcm = (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)
    samples = pcm.reshape(-1, channels) if channels > 1 else pcm
    return Audio(np.ascontiguousarray(samples), rate)


# ---------------------------------------------------------------------------- WAV writing


def decode_compressed(data: bytes, sample_rate: int = 16000, max_seconds: float = 600.0) -> Audio:
    """Decode a compressed recording (OGG/Opus voice notes, MP3, M4A…) to mono PCM.

    Uses PyAV (FFmpeg), which faster-whisper already depends on. Anything FFmpeg cannot read,
    and anything longer than ``max_seconds``, raises `AudioError`.
    """
    import io

    import av

    if not data:
        raise AudioError("empty audio file")
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    chunks: list[npt.NDArray[np.int16]] = []
    total, limit = 0, int(max_seconds * sample_rate)
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioError("the file has no audio stream")
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                    total += len(chunk)
                    if total > limit:
                        raise AudioError(f"audio is longer than {max_seconds:.0f} s")
                    chunks.append(chunk)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
    except av.FFmpegError as exc:
        raise AudioError(f"cannot decode audio: {exc}") from exc
    if not chunks or total == 0:
        raise AudioError("the file holds no audio samples")
    return Audio(np.concatenate(chunks), sample_rate)


def wav_bytes(audio: Audio) -> bytes:
    """The audio as a 16-bit PCM WAV file, in memory."""
    body = np.ascontiguousarray(audio.samples).astype("<i2").tobytes()
    channels = audio.channels
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(body),
        b"WAVE",
        b"fmt ",
        16,
        _PCM,
        channels,
        audio.sample_rate,
        audio.sample_rate * 2 * channels,
        2 * channels,
        16,
        b"data",
        len(body),
    )
    return header + body


def g711_wav_bytes(payload: bytes, codec: str, sample_rate: int = 8000) -> bytes:
    """8-bit G.711 bytes as a WAV file (format tag 7 μ-law or 6 A-law), as phones play it."""
    tag = {"pcmu": _MULAW, "pcma": _ALAW}.get(codec)
    if tag is None:
        raise AudioError(f"codec must be 'pcmu' or 'pcma', not {codec!r}")
    pad = b"\0" if len(payload) % 2 else b""
    fmt = struct.pack("<HHIIHHH", tag, 1, sample_rate, sample_rate, 1, 8, 0)
    chunks = (
        b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"fact" + struct.pack("<II", 4, len(payload))  # non-PCM WAVs carry a sample count
        + b"data" + struct.pack("<I", len(payload)) + payload + pad
    )  # fmt: skip
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def write_wav(target: str | PathLike[str] | BinaryIO, audio: Audio) -> None:
    """Write the audio as a 16-bit PCM WAV file to a path or a binary file object."""
    data = wav_bytes(audio)
    if isinstance(target, str | PathLike):
        Path(target).write_bytes(data)
    else:
        target.write(data)


# ---------------------------------------------------------------------------- resampling


def _check_rate(rate: int) -> None:
    if not _MIN_RATE <= rate <= _MAX_RATE:
        raise AudioError(f"unsupported sample rate {rate} Hz")


def resample(pcm: npt.NDArray[np.int16], from_rate: int, to_rate: int) -> npt.NDArray[np.int16]:
    """Resample int16 PCM, ``(n,)`` or ``(n, channels)``, with soxr (8/16/22.05/48 kHz…)."""
    _check_rate(from_rate)
    _check_rate(to_rate)
    array = np.asarray(pcm)
    if array.dtype != np.int16:
        raise AudioError(f"resample takes int16 PCM, got {array.dtype}")
    if from_rate == to_rate or array.shape[0] == 0:
        return array.copy()
    return soxr.resample(np.ascontiguousarray(array), from_rate, to_rate, quality="HQ")


class StreamResampler:
    """Resampling of a stream chunk by chunk (e.g. 8 kHz RTP to 16 kHz), with no edge clicks."""

    def __init__(self, from_rate: int, to_rate: int, channels: int = 1) -> None:
        _check_rate(from_rate)
        _check_rate(to_rate)
        self.from_rate, self.to_rate = from_rate, to_rate
        self._stream = (
            None
            if from_rate == to_rate
            else soxr.ResampleStream(from_rate, to_rate, channels, dtype="int16", quality="HQ")
        )

    def feed(self, pcm: npt.NDArray[np.int16], last: bool = False) -> npt.NDArray[np.int16]:
        """Resample the next chunk; pass ``last=True`` on the final one to drain the filter."""
        if self._stream is None:
            return np.asarray(pcm, dtype=np.int16).copy()
        return self._stream.resample_chunk(np.ascontiguousarray(pcm, dtype=np.int16), last=last)


# ---------------------------------------------------------------------------- channels


def split_stereo(audio: Audio) -> tuple[Audio, Audio]:
    """(left, right) as two mono `Audio`; call recordings keep one party per channel."""
    if audio.channels != 2:
        raise AudioError(f"expected a stereo (2-channel) recording, got {audio.channels}")
    left = np.ascontiguousarray(audio.samples[:, 0])
    right = np.ascontiguousarray(audio.samples[:, 1])
    return Audio(left, audio.sample_rate), Audio(right, audio.sample_rate)


def stereo(left: Audio, right: Audio) -> Audio:
    """Two mono tracks at one rate interleaved as stereo; the shorter one is padded."""
    if left.sample_rate != right.sample_rate:
        raise AudioError("both channels must have the same sample rate")
    n = max(left.frames, right.frames)
    out = np.zeros((n, 2), dtype=np.int16)
    out[: left.frames, 0] = left.mono().samples
    out[: right.frames, 1] = right.mono().samples
    return Audio(out, left.sample_rate)
