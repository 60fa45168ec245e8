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
