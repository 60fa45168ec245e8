"""The shared 20 ms media clock, on a thread and event loop of its own.

One timer drives every call: each tick it takes one frame from every leg's jitter
buffer, decodes all of them in one vectorised G.711 pass, runs the conferences, asks each
call for its outbound frame, encodes in one pass and sends. One task for all calls keeps
the per-call cost to a few microseconds of Python, which is what lets a 2-core machine
carry hundreds of calls.

The clock is absolute (``t0 + n × 20 ms``); after a stall it catches up at most
``MAX_CATCHUP`` ticks, then re-anchors rather than bursting.

Why a thread (the "media loop"): the hub's event loop also serves HTTP and SSE, and
fanning one event out to 500 console tabs holds it for tens of milliseconds, long enough
to make a 20 ms frame late. So the clock, RTP receive (the datagram endpoints are created
on the media loop, :meth:`MediaEngine.run`) and RTP send run on the media loop, which does
nothing else. A busy hub loop then costs media at most a GIL switch interval (5 ms), not
the length of its busiest callback. A process per media engine would remove even that,
but would put the whole :class:`~channels.voice.call.Call` API behind IPC; a thread keeps
it an ordinary object.

The rules between the two loops, kept small on purpose:

- **One lock** (:attr:`MediaEngine.lock`, re-entrant). The media thread holds it for a
  whole tick and while it handles a datagram; the hub side takes it, briefly and never
  across an ``await``, to change anything the media thread reads: the calls and
  conferences in the engine, a call's playback, recorder, hold music, conference
  membership, and its RTP session's negotiated parameters.
- **Sockets belong to the media loop.** RTP ports are opened there (:meth:`run`) and
  closed there (:meth:`submit`).
- **Media events go to the hub loop** (:meth:`to_hub`): a digit, a finished prompt, a
  barge-in, and every decoded frame for :meth:`Call.audio_stream` (the IVR's endpointer
  runs on the hub loop) are posted with ``call_soon_threadsafe``, one batch per tick, so
  hub-side listeners, futures and queues are only ever touched on their own loop.

``MediaEngine(thread=False)`` (``HUB_VOICE_MEDIA_THREAD=0``) runs the clock as a task on
the hub's loop, the way it ran before; it is kept for ``bench/media_clock.py``'s
comparison and costs only the branches in :meth:`to_hub`, :meth:`run` and :meth:`submit`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

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
T = TypeVar("T")

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
    """Every call's media on one clock; see the module docstring for the threading."""

    def __init__(self, thread: bool = True) -> None:
        self.calls: set[Call] = set()
        self.conferences: set[Conference[Call]] = set()
        self.lock = threading.RLock()
        self.use_thread = thread
        self.hub_loop: asyncio.AbstractEventLoop | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the media loop
        self.thread: threading.Thread | None = None
        self.clock_thread_id: int | None = None  # the thread the clock last ticked on
        self._task: asyncio.Task[None] | None = None
        self._outbox: list[tuple[Callable[..., Any], tuple[Any, ...]]] | None = None
        self.ticks = 0
        self.late_ticks = 0
        self.tick_seconds = 0.0

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start the clock: on a new thread's loop, or as a task on the caller's loop."""
        if self._task is not None or self.thread is not None:
            return
        self.hub_loop = asyncio.get_running_loop()
        if not self.use_thread:
            self.loop = self.hub_loop
            self._task = self.loop.create_task(self._run(), name="media-clock")
            return
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._main, args=(ready,), name="media-clock", daemon=True
        )
        self.thread.start()
        ready.wait(10)  # a new loop is up in well under a millisecond

    def _main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        self._task = loop.create_task(self._run(), name="media-clock")
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def stop(self) -> None:
        if self.thread is None:
            await cancel_and_wait(self._task)
            self._task = None
            return
        loop, thread = self.loop, self.thread
        assert loop is not None
        with contextlib.suppress(RuntimeError):  # the loop has already gone
            await self.run(cancel_and_wait(self._task))
            loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)
        self._task = None
        self.thread = None

    # --- crossing between the hub loop and the media loop --------------------------

    def on_media_thread(self) -> bool:
        return self.thread is not None and threading.get_ident() == self.thread.ident

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the media loop (e.g. opening an RTP port)."""
        if self.thread is None or self.loop is None:
            return await coro
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(future)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` on the media loop soon (e.g. closing an RTP socket)."""
        if self.thread is None or self.loop is None or self.on_media_thread():
            fn(*args)
            return
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the media loop has stopped: nothing else uses the object
            fn(*args)

    def to_hub(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` on the hub loop: at once when already there (or when media
        runs on the hub loop), else posted; inside a tick, posts wait for its end and go
        as one batch (one wake-up of the hub loop per tick, not one per call)."""
        if not self.on_media_thread():
            fn(*args)
            return
        if self._outbox is not None:
            self._outbox.append((fn, args))
            return
        self._post([(fn, args)])

    def _post(self, batch: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
        assert self.hub_loop is not None
        with contextlib.suppress(RuntimeError):  # the hub loop is closing: drop them
            self.hub_loop.call_soon_threadsafe(_run_batch, batch)

    # --- the clock -----------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self.clock_thread_id = threading.get_ident()
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
        """One 20 ms step for every call, under :attr:`lock`; events it raises reach the
        hub loop after the step."""
        batching = self.on_media_thread()
        with self.lock:
            if batching:
                self._outbox = []
            try:
                self._tick()
            finally:
                batch, self._outbox = self._outbox, None
        if batch:
            self._post(batch)

    def _tick(self) -> None:
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


def _run_batch(batch: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
    """Media events, delivered on the hub loop in the order the media thread raised them."""
    for fn, args in batch:
        try:
            fn(*args)
        except Exception:
            log.exception("media event handler failed")
