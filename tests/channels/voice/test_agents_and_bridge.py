"""Agent phones: digest REGISTER, then a customer bridged to the agent, recorded in stereo."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from channels.voice.call import Call
from speech.audio import read_wav, split_stereo
from tests.channels.voice.helpers import (
    RtpTap,
    free_port,
    level_at,
    open_tap,
    run_sipp,
    start_sipp,
)

pytestmark = pytest.mark.sipp

CALLER_HZ = 400.0
AGENT_HZ = 1200.0
TALK_SECONDS = 1.6


async def register_agent(endpoint, workdir: Path, ext: str, password: str, phone_port: int):
    return await run_sipp(
        "agent_register.xml",
        endpoint.port,
        workdir,
        keys={"ext": ext, "phone_port": phone_port},
        extra=["-au", ext, "-ap", password],  # used by [authentication]
    )


async def test_register_with_wrong_password_is_refused(
    sipp: str, make_endpoint, tmp_path: Path
) -> None:
    endpoint = await make_endpoint(agent_credentials={"1001": "s3cret"})
    run = await register_agent(endpoint, tmp_path / "reg", "1001", "wrong", free_port())
    assert run.returncode != 0
    assert "received 'SIP/2.0 403" in run.errors()
    assert endpoint.registrar.lookup("1001") is None


def dominant(tap: RtpTap, since: float, freqs: tuple[float, ...]) -> dict[float, float]:
    audio = tap.audio(since=since)
    return {f: level_at(audio, f) for f in freqs}


async def test_customer_bridged_to_registered_agent_audio_both_ways(
    sipp: str, make_endpoint, tmp_path: Path
) -> None:
    caller_tap, agent_tap = await open_tap(), await open_tap()
    bridged = asyncio.Event()
    finish = asyncio.Event()
    legs: dict[str, Call] = {}

    async def on_call(call: Call) -> None:
        await call.answer()
        legs["recording"] = call.record()  # type: ignore[assignment]
        agent = await endpoint.call_agent("1001", timeout=10)
        legs["customer"], legs["agent"] = call, agent
        call.bridge(agent)
        bridged.set()
        await finish.wait()
        await agent.hangup()
        await call.hangup()

    endpoint = await make_endpoint(on_call, agent_credentials={"1001": "s3cret"})
    phone_port = free_port()
    phone = await start_sipp(
        "agent_phone.xml",
        tmp_path / "phone",
        keys={"tap_port": agent_tap.port},
        local_port=phone_port,
    )
    reg = await register_agent(endpoint, tmp_path / "reg", "1001", "s3cret", phone_port)
    assert reg.returncode == 0, reg.errors()
    binding = endpoint.registrar.lookup("1001")
    assert binding is not None and binding.target == ("127.0.0.1", phone_port)

    caller = asyncio.ensure_future(
        run_sipp(
            "caller_talk.xml",
            endpoint.port,
            tmp_path / "caller",
            keys={"tap_port": caller_tap.port},
        )
    )
    await asyncio.wait_for(bridged.wait(), 15)
    customer, agent = legs["customer"], legs["agent"]
    assert customer.rtp is not None and agent.rtp is not None
    t0 = time.monotonic()
    await asyncio.gather(
        caller_tap.stream_tone(("127.0.0.1", customer.rtp.local_port), CALLER_HZ, TALK_SECONDS),
        agent_tap.stream_tone(("127.0.0.1", agent.rtp.local_port), AGENT_HZ, TALK_SECONDS),
    )
    finish.set()
    caller_run, phone_run = await asyncio.gather(caller, phone)
    caller_tap.close()
    agent_tap.close()
    assert caller_run.returncode == 0, caller_run.errors()
    assert phone_run.returncode == 0, phone_run.errors()

    # each party hears the other one's tone
    heard_by_caller = dominant(caller_tap, t0 + 0.3, (CALLER_HZ, AGENT_HZ))
    heard_by_agent = dominant(agent_tap, t0 + 0.3, (CALLER_HZ, AGENT_HZ))
    assert heard_by_caller[AGENT_HZ] > 2000 > heard_by_caller[CALLER_HZ]
    assert heard_by_agent[CALLER_HZ] > 2000 > heard_by_agent[AGENT_HZ]

    # the stereo recording: caller on the left, agent on the right
    recording = read_wav(Path(str(legs["recording"])))
    assert recording.channels == 2 and recording.sample_rate == 8000
    left, right = split_stereo(recording)
    assert level_at(left.samples, CALLER_HZ) > 5 * level_at(left.samples, AGENT_HZ) + 100
    assert level_at(right.samples, AGENT_HZ) > 5 * level_at(right.samples, CALLER_HZ) + 100


async def test_hold_inside_a_bridge(sipp: str, make_endpoint, tmp_path: Path) -> None:
    """The held customer hears the generated music, not the agent; the agent hears
    nothing from the customer; after unhold they hear each other again."""
    caller_tap, agent_tap = await open_tap(), await open_tap()
    ready, streaming = asyncio.Event(), asyncio.Event()
    legs: dict[str, Call] = {}
    marks: dict[str, float] = {}

    async def on_call(call: Call) -> None:
        await call.answer()
        agent = await endpoint.call_agent("1001", timeout=10)
        call.bridge(agent)
        legs.update(customer=call, agent=agent)
        ready.set()
        await streaming.wait()
        await asyncio.sleep(0.8)
        marks["hold"] = time.monotonic()
        await call.hold()
        await asyncio.sleep(1.4)
        marks["unhold"] = time.monotonic()
        await call.unhold()
        await asyncio.sleep(1.0)
        marks["end"] = time.monotonic()
        await agent.hangup()
        await call.hangup()

    endpoint = await make_endpoint(on_call, agent_credentials={"1001": "s3cret"})
    phone_port = free_port()
    phone = await start_sipp(
        "agent_phone.xml",
        tmp_path / "phone",
        keys={"tap_port": agent_tap.port},
        local_port=phone_port,
    )
    reg = await register_agent(endpoint, tmp_path / "reg", "1001", "s3cret", phone_port)
    assert reg.returncode == 0, reg.errors()
    caller = asyncio.ensure_future(
        run_sipp(
            "caller_held.xml",
            endpoint.port,
            tmp_path / "caller",
            keys={"tap_port": caller_tap.port},
        )
    )
    await asyncio.wait_for(ready.wait(), 15)
    customer, agent = legs["customer"], legs["agent"]
    assert customer.rtp is not None and agent.rtp is not None
    streams = asyncio.gather(
        caller_tap.stream_tone(("127.0.0.1", customer.rtp.local_port), CALLER_HZ, 4.0),
        agent_tap.stream_tone(("127.0.0.1", agent.rtp.local_port), AGENT_HZ, 4.0),
    )
    streaming.set()
    await streams
    runs = await asyncio.gather(caller, phone)
    caller_tap.close()
    agent_tap.close()
    for run in runs:
        assert run.returncode == 0, run.errors()

    def levels(tap: RtpTap, start: str, end: str) -> dict[float, float]:
        audio = tap.audio(since=marks[start] + 0.35, until=marks[end] - 0.05)
        return {f: level_at(audio, f) for f in (CALLER_HZ, AGENT_HZ, 440.0)}

    held_customer = levels(caller_tap, "hold", "unhold")
    held_agent = levels(agent_tap, "hold", "unhold")
    assert held_customer[440.0] > 1000 and held_customer[AGENT_HZ] < 300  # music, no agent
    assert held_agent[CALLER_HZ] < 300  # the agent no longer hears the customer
    assert levels(caller_tap, "unhold", "end")[AGENT_HZ] > 2000
    assert levels(agent_tap, "unhold", "end")[CALLER_HZ] > 2000
