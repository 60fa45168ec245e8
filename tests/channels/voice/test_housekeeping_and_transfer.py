"""OPTIONS, early media, SIP INFO DTMF, hold by the caller, and a blind transfer (REFER)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from channels.voice.call import Call, CallEvent, Collected
from channels.voice.playback import tone
from tests.channels.voice.helpers import level_at, open_tap, run_sipp

pytestmark = pytest.mark.sipp


async def test_early_media_info_dtmf_remote_hold_and_refer(
    sipp: str, make_endpoint, tmp_path: Path
) -> None:
    tap = await open_tap()
    seen: dict[str, object] = {}
    events: list[str] = []
    finished = asyncio.Event()

    async def on_call(call: Call) -> None:
        unheld = asyncio.Event()

        def listen(c: Call, e: CallEvent) -> None:
            events.append(e.kind)
            if e.kind == "remote_unhold":
                unheld.set()

        call.add_listener(listen)
        await call.early_media()
        await call.play(tone((900.0,), 0.5))  # heard before the answer
        seen["answered_at"] = asyncio.get_running_loop().time()
        await call.answer()
        seen["digits"] = await call.collect_dtmf(max_digits=1, timeout=5)
        await asyncio.wait_for(unheld.wait(), 5)
        seen["transfer"] = await call.transfer("sip:+15559990000@pstn.example", timeout=5)
        seen["call"] = call
        finished.set()

    endpoint = await make_endpoint(on_call)
    run = await run_sipp(
        "caller_housekeeping.xml", endpoint.port, tmp_path / "sipp", keys={"tap_port": tap.port}
    )
    tap.close()
    assert run.returncode == 0, run.errors()  # incl. the Allow, 183 SDP, recvonly checks
    await asyncio.wait_for(finished.wait(), 5)
    assert seen["digits"] == Collected("5", "max")
    assert seen["transfer"] == 200
    assert events.index("early_media") < events.index("answered")
    assert "remote_hold" in events and "remote_unhold" in events
    assert events[-2:] == ["transfer", "ended"]
    call = seen["call"]
    assert isinstance(call, Call) and call.end_reason == "local hangup"
    timeline = [what for _, what in call.timeline]
    assert "183 Session Progress sent (early media)" in timeline
    assert "DTMF 5 (info)" in timeline
    assert "NOTIFY transfer 200 OK" in timeline and "BYE sent" in timeline
    assert level_at(tap.audio(), 900.0) > 2000  # the early-media prompt reached the caller
