"""G.711 codecs are bit-exact with the reference implementations phones and sox use."""

from __future__ import annotations

import subprocess
import warnings

import numpy as np
import pytest

from speech.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from tests.support import require_tool

EVERY_SAMPLE = np.arange(-32768, 32768, dtype=np.int16)
EVERY_CODE = bytes(range(256))


def _audioop():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:  # Python 3.13 removed it; the sox test still runs
            pytest.skip("audioop is gone from this Python; the sox comparison covers G.711")
    return audioop


def test_ulaw_matches_audioop_for_every_sample_and_code() -> None:
    audioop = _audioop()
    assert ulaw_encode(EVERY_SAMPLE) == audioop.lin2ulaw(EVERY_SAMPLE.tobytes(), 2)
    assert ulaw_decode(EVERY_CODE).tobytes() == audioop.ulaw2lin(EVERY_CODE, 2)


def test_alaw_matches_audioop_for_every_sample_and_code() -> None:
    audioop = _audioop()
    assert alaw_encode(EVERY_SAMPLE) == audioop.lin2alaw(EVERY_SAMPLE.tobytes(), 2)
    assert alaw_decode(EVERY_CODE).tobytes() == audioop.alaw2lin(EVERY_CODE, 2)


def _sox_convert(data: bytes, src: list[str], dst: list[str]) -> bytes:
    sox = require_tool("sox")
    raw = ["-t", "raw", "-r", "8000", "-c", "1"]
    return subprocess.run(
        [sox, "-D", *raw, *src, "-", *raw, *dst, "-"], input=data, capture_output=True, check=True
    ).stdout


@pytest.mark.parametrize(
    ("encoding", "encode", "decode", "grid"),
    [("u-law", ulaw_encode, ulaw_decode, 4), ("a-law", alaw_encode, alaw_decode, 8)],
)
def test_codecs_match_sox(encoding: str, encode, decode, grid: int) -> None:  # type: ignore[no-untyped-def]
    """Decoding is bit-exact with sox; so is encoding of samples on the codec's 14/13-bit grid.

    (Off the grid sox rounds to it first while the G.711 reference code truncates; the
    audioop tests above check that truncation for every sample.)
    """
    linear = ["-e", "signed", "-b", "16"]
    law = ["-e", encoding, "-b", "8"]
    assert decode(EVERY_CODE).tobytes() == _sox_convert(EVERY_CODE, law, linear)
    on_grid = np.arange(-32768, 32768, grid, dtype=np.int16)
    assert encode(on_grid) == _sox_convert(on_grid.tobytes(), linear, law)


def test_decode_then_encode_is_lossless_for_every_code() -> None:
    """A G.711 byte survives decode→encode unchanged, so relaying audio never degrades it."""
    relayed = ulaw_encode(ulaw_decode(EVERY_CODE))
    # μ-law has two zeros; negative zero (0x7F) comes back as positive zero (0xFF).
    assert relayed == EVERY_CODE[:0x7F] + b"\xff" + EVERY_CODE[0x80:]
    assert alaw_encode(alaw_decode(EVERY_CODE)) == EVERY_CODE


def test_encoder_refuses_non_int16_input() -> None:
    with pytest.raises(TypeError, match="int16"):
        ulaw_encode(np.zeros(10, dtype=np.float32))  # type: ignore[arg-type]
