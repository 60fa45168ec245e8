"""Supervisor modes on a customer–agent bridge, checked by what each party receives.

Each party's media side streams its own tone (customer 400 Hz, agent 1200 Hz, supervisor
2000 Hz); a party that hears someone receives that someone's tone.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from channels.voice.call import Call
from tests.channels.voice.helpers import RtpTap, free_port, level_at, open_tap, run_sipp, start_sipp

pytestmark = pytest.mark.sipp

TONES = {"customer": 400.0, "agent": 1200.0, "supervisor": 2000.0}
PHASE = 1.3
HEARD = 1500.0  # a tone at 0.3 full scale measures about 9800; leakage is far below this


def hears(tap: RtpTap, since: float, until: float) -> set[str]:
    audio = tap.audio(since=since + 0.35, until=until - 0.05)
    assert audio.shape[0] > 4000
    return {who for who, hz in TONES.items() if level_at(audio, hz) > HEARD}


async def test_listen_whisper_barge(sipp: str, make_endpoint, tmp_path: Path) -> None:
    taps = {who: await open_tap() for who in TONES}
    legs: dict[str, Call] = {}
    ready, streaming = asyncio.Event(), asyncio.Event()
    marks: dict[str, float] = {}

    async def on_call(customer: Call) -> None:
        await customer.answer()
        agent = await endpoint.call_agent("1001", timeout=10)
        customer.bridge(agent)
        supervisor = await endpoint.call_agent("2001", timeout=10)
        legs.update(customer=customer, agent=agent, supervisor=supervisor)
        ready.set()
        await streaming.wait()
        for mode in ("listen", "whisper", "barge"):
            marks[mode] = time.monotonic()
            getattr(supervisor, mode)(agent)
            await asyncio.sleep(PHASE)
        marks["end"] = time.monotonic()
        for call in (supervisor, agent, customer):
            await call.hangup()

    endpoint = await make_endpoint(
        on_call, agent_credentials={"1001": "agent-pw", "2001": "super-pw"}
    )
    phones = []
    for ext, who, password in (("1001", "agent", "agent-pw"), ("2001", "supervisor", "super-pw")):
        port = free_port()
        phones.append(
            await start_sipp(
                "agent_phone.xml",
                tmp_path / who,
                keys={"tap_port": taps[who].port},
                local_port=port,
            )
        )
        reg = await run_sipp(
            "agent_register.xml",
            endpoint.port,
            tmp_path / f"reg-{who}",
            keys={"ext": ext, "phone_port": port},
            extra=["-au", ext, "-ap", password],
        )
        assert reg.returncode == 0, reg.errors()
    caller = asyncio.ensure_future(
        run_sipp(
            "caller_talk.xml",
            endpoint.port,
            tmp_path / "customer",
            keys={"tap_port": taps["customer"].port},
        )
    )
    await asyncio.wait_for(ready.wait(), 15)
    streams = []
    for who, tap in taps.items():
        rtp = legs[who].rtp
        assert rtp is not None
        streams.append(tap.stream_tone(("127.0.0.1", rtp.local_port), TONES[who], 3 * PHASE + 0.6))
    pump = asyncio.gather(*streams)
    await asyncio.sleep(0.2)
    streaming.set()
    await pump
    runs = await asyncio.gather(caller, *phones)
    for tap in taps.values():
        tap.close()
    for run in runs:
        assert run.returncode == 0, run.errors()

    def phase(mode: str, nxt: str) -> dict[str, set[str]]:
        return {who: hears(tap, marks[mode], marks[nxt]) for who, tap in taps.items()}

    listen = phase("listen", "whisper")
    assert listen == {
        "customer": {"agent"},
        "agent": {"customer"},
        "supervisor": {"customer", "agent"},
    }
    whisper = phase("whisper", "barge")
    assert whisper == {
        "customer": {"agent"},
        "agent": {"customer", "supervisor"},
        "supervisor": {"customer", "agent"},
    }
    barge = phase("barge", "end")
    assert barge == {
        "customer": {"agent", "supervisor"},
        "agent": {"customer", "supervisor"},
        "supervisor": {"customer", "agent"},
    }
