"""The shared 20 ms media clock.

One timer drives every call: each tick it takes one frame from every leg's jitter
buffer, decodes all of them in one vectorised G.711 pass, runs the conferences, asks each
call for its outbound frame, encodes in one pass and sends. One task for all calls keeps
the per-call cost to a few microseconds of Python, which is what lets a 2-core machine
carry hundreds of calls.

The clock is absolute (``t0 + n × 20 ms``); after a stall it catches up at most
``MAX_CATCHUP`` ticks, then re-anchors rather than bursting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from channels.voice.offer_answer import PCMA, PCMU
from hub.tasks import cancel_and_wait
from speech.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

if TYPE_CHECKING:
    from channels.voice.call import Call
    from channels.voice.mixer import Conference
    from channels.voice.rtp_session import RtpSession

log = logging.getLogger(__name__)

TICK = 0.020
FRAME = 160
MAX_CATCHUP = 10  # 200 ms: a burst the far end's jitter buffer absorbs
SILENCE: npt.NDArray[np.int16] = np.zeros(FRAME, dtype=np.int16)
SILENCE.setflags(write=False)
_DECODE: dict[int, Callable[[bytes], npt.NDArray[np.int16]]] = {
    PCMU: ulaw_decode,
    PCMA: alaw_decode,
}
_ENCODE: dict[int, Callable[[npt.NDArray[np.int16]], bytes]] = {
    PCMU: ulaw_encode,
    PCMA: alaw_encode,
}
_SILENT_PAYLOAD = {PCMU: ulaw_encode(SILENCE), PCMA: alaw_encode(SILENCE)}


def _take_frame(rtp: RtpSession, pcm: npt.NDArray[np.int16] | None) -> npt.NDArray[np.int16]:
    """160 samples for this tick from packets of any ptime (10, 30, 40 ms…).

    Decoded samples beyond the frame wait in ``rtp.leftover``; more packets are taken from
    the jitter buffer only while the frame is short, so the buffer drains at the
    sender's packet rate, not at ours.
    """
    decode = _DECODE.get(rtp.payload_type)
    parts = [] if rtp.leftover is None else [rtp.leftover]
    have = 0 if rtp.leftover is None else rtp.leftover.shape[0]
    if pcm is not None:
        parts.append(pcm)
        have += pcm.shape[0]
    while have < FRAME and decode is not None:
        payload = rtp.jitter.pop()
        if payload is None:
            break
        more = decode(payload)
        parts.append(more)
        have += more.shape[0]
    if not parts:
        rtp.leftover = None
        return SILENCE
    buf = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if buf.shape[0] > FRAME:
        rtp.leftover = buf[FRAME:]
        return buf[:FRAME]
    rtp.leftover = None
    if buf.shape[0] == FRAME:
        return buf
    out = np.zeros(FRAME, dtype=np.int16)
    out[: buf.shape[0]] = buf
    return out


class MediaEngine:
    def __init__(self) -> None:
        self.calls: set[Call] = set()
        self.conferences: set[Conference[Call]] = set()
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self.late_ticks = 0
        self.tick_seconds = 0.0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            now = loop.time()
            behind = int((now - next_at) / TICK)
            if behind > MAX_CATCHUP:
                self.late_ticks += behind
                next_at = now
                behind = 0
            for _ in range(behind + 1):
                started = time.perf_counter()
                try:
                    self.tick()
                except Exception:  # one bad call must not stop every call's audio
                    log.exception("media tick failed")
                self.tick_seconds += time.perf_counter() - started
                next_at += TICK
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def tick(self) -> None:
        self.ticks += 1
        calls = [c for c in self.calls if c.rtp is not None]
        # 1. one frame in from every leg, decoded per codec in one pass
        by_codec: dict[int, list[tuple[Call, bytes]]] = {}
        inbound: dict[Call, npt.NDArray[np.int16]] = {}
        for call in calls:
            rtp = call.rtp
            assert rtp is not None
            if rtp.leftover is not None:  # packets of another ptime: the sample path
                inbound[call] = _take_frame(rtp, None)
                continue
            payload = rtp.jitter.pop()
            if payload is None:
                inbound[call] = SILENCE
            elif len(payload) == FRAME and rtp.payload_type in _DECODE:
                by_codec.setdefault(rtp.payload_type, []).append((call, payload))
            else:
                decode = _DECODE.get(rtp.payload_type)
                inbound[call] = _take_frame(rtp, decode(payload)) if decode else SILENCE
        for pt, items in by_codec.items():
            pcm = _DECODE[pt](b"".join(p for _, p in items)).reshape(-1, FRAME)
            for i, (call, _) in enumerate(items):
                inbound[call] = pcm[i]
        for call in calls:
            call._media_in(inbound[call])
        # 2. conferences
        mixed: dict[Call, npt.NDArray[np.int16]] = {}
        for conf in self.conferences:
            ins = {
                c: (SILENCE if c.held or c.muted else inbound.get(c, SILENCE)) for c in conf.members
            }
            mixed.update(conf.mix(ins))
        # 3. one frame out to every leg, encoded per codec in one pass
        out_by_codec: dict[int, list[tuple[Call, npt.NDArray[np.int16]]]] = {}
        for call in calls:
            pcm = call._media_out(mixed.get(call))
            rtp = call.rtp
            assert rtp is not None
            if pcm is None:
                rtp.send_frame(_SILENT_PAYLOAD.get(rtp.payload_type, _SILENT_PAYLOAD[PCMU]))
            else:
                out_by_codec.setdefault(rtp.payload_type, []).append((call, pcm))
        for pt, outs in out_by_codec.items():
            encode = _ENCODE.get(pt, ulaw_encode)
            data = encode(np.concatenate([p for _, p in outs]))
            for i, (call, _) in enumerate(outs):
                assert call.rtp is not None
                call.rtp.send_frame(data[i * FRAME : (i + 1) * FRAME])
