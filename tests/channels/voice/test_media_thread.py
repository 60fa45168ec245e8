"""The media clock and RTP run on a thread of their own: a hub loop that is blocked (an SSE
fan-out to 500 tabs holds it for tens of ms) does not stop a call's outbound frames.

Frames are counted by a receiver whose arrival times the kernel stamps, during a window in
which the test blocks its own loop, the loop that started the endpoint (the hub's). The
count, not a timing threshold, is asserted: with media on its own thread most of the
window's 10 frames still leave; with media on the hub loop (the old way) none can.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from channels.voice.call import Call
from channels.voice.playback import tone
from tests.channels.voice.helpers import run_sipp
from tests.channels.voice.rtp_receiver import StampedReceiver

pytestmark = pytest.mark.sipp

BLOCK_S = 0.2  # 10 frames' worth


def _spin(seconds: float) -> None:
    """Hold the GIL and the loop, as a long pure-Python callback (the fan-out) does."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.parametrize("media_thread", [True, False], ids=["media-thread", "hub-loop"])
async def test_frames_leave_while_the_hub_loop_is_blocked(
    sipp: str, make_endpoint, tmp_path: Path, media_thread: bool
) -> None:
    receiver = StampedReceiver().start()
    up, done = asyncio.Event(), asyncio.Event()
    calls: list[Call] = []

    async def on_call(call: Call) -> None:
        await call.answer()
        calls.append(call)
        prompt = asyncio.ensure_future(call.play(tone((440.0,), 1.0), loop=True))
        up.set()
        await done.wait()
        prompt.cancel()
        await call.hangup()

    endpoint = await make_endpoint(on_call, media_thread=media_thread)
    caller = asyncio.ensure_future(
        run_sipp(
            "caller_talk.xml",
            endpoint.port,
            tmp_path / "sipp",
            keys={"tap_port": receiver.port},
        )
    )
    try:
        await asyncio.wait_for(up.wait(), 15)
        await asyncio.sleep(0.3)  # frames are flowing
        engine, call = endpoint.engine, calls[0]
        assert call.rtp is not None
        hub_loop = asyncio.get_running_loop()
        if media_thread:
            # structural: the clock ticks and the call's socket lives on another thread
            assert engine.thread is not None and engine.thread.is_alive()
            assert engine.loop is not None and engine.loop is not hub_loop
            assert engine.clock_thread_id == engine.thread.ident != threading.get_ident()
            assert call.rtp.loop is engine.loop
        else:
            assert engine.loop is hub_loop and call.rtp.loop is hub_loop
        windows = []
        for block in (time.sleep, _spin):  # the loop blocked; then the GIL held as well
            start = time.time()
            block(BLOCK_S)
            windows.append((start, time.time()))
            await asyncio.sleep(0.3)
    finally:
        done.set()
        run = await caller
        receiver.stop()
    assert run.returncode == 0, run.errors()
    counts = [receiver.between(start, end) for start, end in windows]
    assert receiver.between(0, float("inf")) > 40  # the call's frames reached the receiver
    if media_thread:
        assert all(n >= 5 for n in counts), counts  # of the 10 due in each window
    else:
        assert all(n <= 1 for n in counts), counts  # the old way: nothing leaves meanwhile
