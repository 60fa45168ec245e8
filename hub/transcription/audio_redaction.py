"""The redacted copy of a stereo recording: what redaction took out of the text is silenced
in the audio too, on the channel of the person who said it, with a margin either side
(word timings are a few tens of milliseconds off). The copy is a WAV in the same format
(the recorder's 16-bit stereo), written to a temporary name and renamed into place, so a
crash never leaves half a file under the real name.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hub.transcription.metrics import merge

CUSTOMER_CHANNEL, HUB_CHANNEL = 0, 1


# Two silenced spans on one channel this close, with no transcribed word between them, are
# one number said with a pause (see bridge_gaps).
BRIDGE_MS = 1500

Span = tuple[int, int, int]  # (channel, start ms, end ms)


def bridge_gaps(
    spans: Iterable[Span], words: Iterable[Span], max_gap_ms: int = BRIDGE_MS
) -> list[Span]:
    """The spans, with the gap between two of them on one channel silenced too when it is
    under ``max_gap_ms`` and no kept word (``words``, as spans) lies in it.

    Why: Whisper splits a number said with pauses into two segments, and its word timings at
    the split fall short, so the gap between the two redacted parts still holds digits
    (heard in a test: "five five five" between "two one two" and "zero one four two").
    A gap with no word in it holds nothing the transcript keeps, so silencing it costs
    nothing.
    """
    kept: dict[int, list[tuple[int, int]]] = {}
    for channel, start, end in words:
        kept.setdefault(channel, []).append((start, end))
    out: list[Span] = []
    for channel, start, end in sorted(spans):
        if out and out[-1][0] == channel:
            _, last_start, last_end = out[-1]
            gap_has_word = any(a < start and b > last_end for a, b in kept.get(channel, ()))
            if start - last_end <= max_gap_ms and not gap_has_word:
                out[-1] = (channel, last_start, max(last_end, end))
                continue
        out.append((channel, start, end))
    return out


def silence_spans(
    source: Path, target: Path, spans: Iterable[tuple[int, int, int]], margin_ms: int
) -> list[tuple[int, int, int]]:
    """Copy ``source`` to ``target`` with each (channel, start_ms, end_ms) span, widened by
    ``margin_ms``, set to zero. Returns the spans as silenced (channel, start, end ms)."""
    with wave.open(str(source), "rb") as wav:
        params = wav.getparams()
        frames = wav.readframes(params.nframes)
    if params.sampwidth != 2:
        raise ValueError(f"{source} is not 16-bit PCM")
    pcm = np.frombuffer(frames, dtype="<i2").reshape(-1, params.nchannels).copy()
    rate = params.framerate
    per_channel: dict[int, list[tuple[int, int]]] = {}
    for channel, start, end in spans:
        lo = max(0, start - margin_ms)
        hi = min(int(len(pcm) * 1000 / rate), end + margin_ms)
        if hi > lo:
            per_channel.setdefault(min(channel, params.nchannels - 1), []).append((lo, hi))
    done: list[tuple[int, int, int]] = []
    for channel, intervals in sorted(per_channel.items()):
        for lo, hi in merge(intervals):
            pcm[lo * rate // 1000 : hi * rate // 1000, channel] = 0
            done.append((channel, lo, hi))
    partial = target.with_name(target.name + ".part")
    with wave.open(str(partial), "wb") as out:
        out.setnchannels(params.nchannels)
        out.setsampwidth(params.sampwidth)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    os.replace(partial, target)
    return done
