"""G.711 μ-law and A-law companding, vectorized with lookup tables.

The tables are built once from the bit-level rules of ITU-T G.711 (the segment/quantization
scheme of its Tables 1a/1b and 2a/2b, as in the classic Sun reference `g711.c` that sox and
Python's `audioop` use), so encoding and decoding are bit-exact with those implementations.
Encoding is a single table lookup indexed by the 16-bit sample; decoding a 256-entry lookup.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]

_ULAW_BIAS = 0x84  # 132: added so that every segment starts on a power of two
_ULAW_CLIP = 8159  # largest 14-bit magnitude μ-law can represent


def _segment(values: npt.NDArray[np.int64], ends: tuple[int, ...]) -> npt.NDArray[np.int64]:
    """Index of the first segment whose upper end is >= value (8 when above all)."""
    return np.searchsorted(np.asarray(ends), values, side="left").astype(np.int64)


def _build_ulaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int64) >> 2  # 14-bit, as G.711 μ-law works on
    negative = pcm < 0
    magnitude = np.where(negative, -pcm, pcm)
    mask = np.where(negative, 0x7F, 0xFF)
    magnitude = np.minimum(magnitude, _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = _segment(magnitude, (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF))
    code = (np.minimum(seg, 7) << 4) | ((magnitude >> (np.minimum(seg, 7) + 1)) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    table = (code ^ mask) & 0xFF
    # Index by the sample's uint16 bit pattern: 0..32767 are positive, 32768.. negative.
    return np.concatenate([table[32768:], table[:32768]]).astype(np.uint8)


def _build_ulaw_decode_table() -> npt.NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int64) & 0xFF
    t = ((code & 0x0F) << 3) + _ULAW_BIAS
    t <<= (code & 0x70) >> 4
    return np.where(code & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int64) >> 3  # 13-bit, as G.711 A-law works on
    negative = pcm < 0
    mask = np.where(negative, 0x55, 0xD5)
    magnitude = np.where(negative, -pcm - 1, pcm)
    seg = _segment(magnitude, (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF))
    clamped = np.minimum(seg, 7)
    shift = np.where(clamped < 2, 1, clamped)
    code = (clamped << 4) | ((magnitude >> shift) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    table = (code ^ mask) & 0xFF
    return np.concatenate([table[32768:], table[:32768]]).astype(np.uint8)


def _build_alaw_decode_table() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int64) ^ 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(code & 0x80, t, -t).astype(np.int16)


_ULAW_ENCODE = _build_ulaw_encode_table()
_ULAW_DECODE = _build_ulaw_decode_table()
_ALAW_ENCODE = _build_alaw_encode_table()
_ALAW_DECODE = _build_alaw_decode_table()


def _as_index(pcm: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    array = np.asarray(pcm)
    if array.dtype != np.int16:
        raise TypeError(f"G.711 encodes 16-bit PCM (int16); got {array.dtype}")
    return np.ascontiguousarray(array).reshape(-1).view(np.uint16)


def _as_codes(data: bytes | bytearray | memoryview) -> npt.NDArray[np.uint8]:
    return np.frombuffer(data, dtype=np.uint8)


def ulaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    """16-bit linear PCM to G.711 μ-law bytes (one byte per sample)."""
    return _ULAW_ENCODE[_as_index(pcm)].tobytes()


def ulaw_decode(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """G.711 μ-law bytes to 16-bit linear PCM."""
    return _ULAW_DECODE[_as_codes(data)]


def alaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    """16-bit linear PCM to G.711 A-law bytes (one byte per sample, even bits inverted)."""
    return _ALAW_ENCODE[_as_index(pcm)].tobytes()


def alaw_decode(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """G.711 A-law bytes to 16-bit linear PCM."""
    return _ALAW_DECODE[_as_codes(data)]
