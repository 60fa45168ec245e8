"""Hold and unhold by re-INVITE (RFC 3264 §8.4), with music on hold from a WAV."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from channels.voice.call import Call
from channels.voice.playback import tone
from speech.audio import Audio, write_wav
from tests.channels.voice.helpers import level_at, open_tap, rms, run_sipp

pytestmark = pytest.mark.sipp

MOH_HZ = 500.0


async def test_hold_plays_music_and_unhold_stops_it(
    sipp: str, make_endpoint, tmp_path: Path
) -> None:
    moh = tmp_path / "moh.wav"
    write_wav(moh, Audio(tone((MOH_HZ,), 2.0, 0.3), 8000))
    tap = await open_tap()
    marks: dict[str, float] = {}
    calls: list[Call] = []

    async def on_call(call: Call) -> None:
        calls.append(call)
        await call.answer()
        await asyncio.sleep(0.6)
        marks["hold"] = time.monotonic()
        await call.hold()
        await asyncio.sleep(1.5)
        marks["unhold"] = time.monotonic()
        await call.unhold()
        await asyncio.sleep(0.8)
        marks["end"] = time.monotonic()
        await call.hangup()

    endpoint = await make_endpoint(on_call, moh_wav=moh)
    run = await run_sipp(
        "caller_held.xml", endpoint.port, tmp_path / "sipp", keys={"tap_port": tap.port}
    )
    tap.close()
    assert run.returncode == 0, run.errors()  # SIPp checked a=sendonly, then a=sendrecv
    before = tap.audio(until=marks["hold"])
    held = tap.audio(since=marks["hold"] + 0.3, until=marks["unhold"])
    after = tap.audio(since=marks["unhold"] + 0.3, until=marks["end"])
    assert rms(before) < 50  # answered, nothing playing: silence
    assert held.shape[0] > 8000 and level_at(held, MOH_HZ) > 3000  # the music
    assert rms(after) < 50  # music stopped
    events = [what for _, what in calls[0].timeline]
    assert "re-INVITE sent (sendonly)" in events and "re-INVITE answered 200" in events
    assert "re-INVITE sent (sendrecv)" in events
