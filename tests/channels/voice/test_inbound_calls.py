"""Inbound calls from a gateway, driven by SIPp: answer, prompt, DTMF, BYE, CANCEL, 403."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from channels.voice.call import Call, CallState, Collected, PlayOutcome
from channels.voice.playback import tone
from tests.channels.voice.helpers import level_at, open_tap, rms, run_sipp

pytestmark = pytest.mark.sipp


async def test_answered_call_hears_prompt_and_sends_1_1_2_pound(
    sipp: str, make_endpoint, tmp_path: Path
) -> None:
    tap = await open_tap()
    seen: dict[str, object] = {}
    done = asyncio.Event()

    async def on_call(call: Call) -> None:
        seen["call"] = call
        seen["numbers"] = (call.caller_number, call.called_number)
        seen["subject_header"] = call.sip_headers.get("Max-Forwards")
        seen["events"] = events = []

        stream = call.events()  # subscribed now, before ringing

        async def watch() -> None:
            async for event in stream:
                events.append(event.kind)

        seen["watcher"] = asyncio.ensure_future(watch())
        await call.ring()
        await call.answer()
        # a 1 kHz prompt; digits do not interrupt it so the whole prompt is heard
        seen["play"] = await call.play(tone((1000.0,), 1.0), interrupt_on_dtmf=False)
        seen["digits"] = await call.collect_dtmf(max_digits=10, timeout=8.0, terminator="#")
        await call.ended.wait()
        await seen["watcher"]  # the event stream ends after "ended"
        done.set()

    # SIPp sends its RFC 4733 pcaps from its own media port, while the tap (the SDP
    # address) hears the prompt: so this gateway is configured without symmetric RTP.
    endpoint = await make_endpoint(on_call, symmetric_rtp=False)
    run = await run_sipp(
        "caller_dtmf.xml",
        endpoint.port,
        tmp_path / "sipp",
        keys={"tap_port": tap.port},
        extra=["-s", "18005550100"],  # the DID dialled
    )
    await asyncio.wait_for(done.wait(), 10)
    tap.close()

    assert run.returncode == 0, run.errors()
    assert seen["play"] is PlayOutcome.COMPLETED
    assert seen["digits"] == Collected("112", "terminator")
    assert seen["numbers"] == ("+15551230001", "18005550100")
    assert seen["subject_header"] == "70"
    assert seen["events"] == ["answered", "dtmf", "dtmf", "dtmf", "dtmf", "ended"]
    call = seen["call"]
    assert isinstance(call, Call)
    assert call.state is CallState.ENDED and call.end_reason == "remote hangup"
    events = [what for _, what in call.timeline]
    assert events[:5] == [
        events[0],
        "100 Trying sent",
        "180 Ringing sent",
        "200 OK sent",
        "ACK received",
    ]
    assert "BYE received, 200 OK sent" in events
    # what the caller's media side received: a loud 1 kHz prompt, not silence
    heard = tap.audio()
    assert heard.shape[0] >= 8000 * 0.8
    assert rms(heard) > 3000
    assert level_at(heard, 1000.0) > 10 * level_at(heard, 600.0)
    stats = call.stats()["rtp"]
    assert stats["packets_sent"] >= 50
    assert stats["packets_received"] >= 4 * 8  # four digits, eight or more packets each


async def test_cancel_before_answer(sipp: str, make_endpoint, tmp_path: Path) -> None:
    calls: list[Call] = []

    async def on_call(call: Call) -> None:
        calls.append(call)
        await call.ring()  # ring, never answer

    endpoint = await make_endpoint(on_call)
    run = await run_sipp("caller_cancel.xml", endpoint.port, tmp_path / "sipp")
    assert run.returncode == 0, run.errors()
    assert len(calls) == 1
    call = calls[0]
    await asyncio.wait_for(call.ended.wait(), 5)
    assert call.end_reason == "cancelled"
    assert "CANCEL received, 487 sent" in [what for _, what in call.timeline]
    assert endpoint.calls == {}


async def test_unknown_source_gets_403(sipp: str, make_endpoint, tmp_path: Path) -> None:
    calls: list[Call] = []
    endpoint = await make_endpoint(calls.append, trusted_gateways=("127.0.0.1",))
    # 127.0.0.2 is loopback too, but not a configured gateway
    run = await run_sipp(
        "caller_forbidden.xml", endpoint.port, tmp_path / "sipp", local_ip="127.0.0.2"
    )
    assert run.returncode == 0, run.errors()
    assert calls == []
    assert endpoint.counters["rejected_403"] == 1


def test_tone_helper_is_a_real_tone() -> None:
    pcm = tone((1000.0,), 0.5)
    assert level_at(pcm, 1000.0) > 100 * level_at(pcm, 400.0) + 1
    assert np.abs(pcm).max() > 5000


async def test_call_over_tcp(sipp: str, make_endpoint, tmp_path: Path) -> None:
    """RFC 3261 §18 over TCP: the same ringing-then-CANCEL call on a TCP connection."""
    calls: list[Call] = []

    async def on_call(call: Call) -> None:
        calls.append(call)
        await call.ring()

    endpoint = await make_endpoint(on_call, transports=("udp", "tcp"))
    run = await run_sipp("caller_cancel.xml", endpoint.port, tmp_path / "sipp", extra=["-t", "t1"])
    assert run.returncode == 0, run.errors()
    assert len(calls) == 1
    await asyncio.wait_for(calls[0].ended.wait(), 5)
    assert calls[0].end_reason == "cancelled"


async def test_failing_handler_hangs_up_instead_of_leaving_the_caller(
    sipp: str, make_endpoint, tmp_path: Path
) -> None:
    calls: list[Call] = []

    async def on_call(call: Call) -> None:
        calls.append(call)
        await call.answer()
        raise RuntimeError("a bug in the IVR")

    endpoint = await make_endpoint(on_call)
    tap = await open_tap()
    run = await run_sipp(
        "caller_talk.xml", endpoint.port, tmp_path / "sipp", keys={"tap_port": tap.port}
    )
    tap.close()
    assert run.returncode == 0, run.errors()  # the caller got our BYE
    assert calls[0].end_reason == "local hangup"


@pytest.mark.parametrize(("password", "admitted"), [("gw-secret", True), ("guess", False)])
async def test_gateway_admitted_by_digest_authentication(
    sipp: str, make_endpoint, tmp_path: Path, password: str, admitted: bool
) -> None:
    calls: list[Call] = []

    async def on_call(call: Call) -> None:
        calls.append(call)
        await call.answer()
        await asyncio.sleep(0.3)
        await call.hangup()

    endpoint = await make_endpoint(
        on_call, trusted_gateways=(), gateway_credentials={"gw1": "gw-secret"}
    )
    tap = await open_tap()
    run = await run_sipp(
        "caller_digest.xml",
        endpoint.port,
        tmp_path / "sipp",
        keys={"tap_port": tap.port},
        extra=["-au", "gw1", "-ap", password],
    )
    tap.close()
    assert endpoint.counters["challenged"] == 1
    if admitted:
        assert run.returncode == 0, run.errors()
        assert len(calls) == 1
    else:
        assert "received 'SIP/2.0 403" in run.errors()
        assert calls == [] and endpoint.counters["rejected_403"] == 1


async def test_answered_call_over_tcp_with_our_bye(
    sipp: str, make_endpoint, tmp_path: Path
) -> None:
    calls: list[Call] = []

    async def on_call(call: Call) -> None:
        calls.append(call)
        await call.answer()
        await call.play(tone((1000.0,), 0.4))
        await call.hangup()

    endpoint = await make_endpoint(on_call, transports=("udp", "tcp"))
    tap = await open_tap()
    run = await run_sipp(
        "caller_talk.xml",
        endpoint.port,
        tmp_path / "sipp",
        keys={"tap_port": tap.port},
        extra=["-t", "t1"],
    )
    tap.close()
    assert run.returncode == 0, run.errors()  # INVITE/200/ACK and our BYE over TCP
    assert calls[0].end_reason == "local hangup"
    assert level_at(tap.audio(), 1000.0) > 3000


async def test_wav_prompt_is_interrupted_by_the_first_digit(
    sipp: str, make_endpoint, tmp_path: Path
) -> None:
    from speech.audio import Audio, write_wav

    prompt = tmp_path / "menu.wav"  # 16 kHz, as prompts are often recorded: resampled
    write_wav(prompt, Audio(tone((500.0,), 10.0), 8000).resampled(16000))
    tap = await open_tap()
    seen: dict[str, object] = {}

    async def on_call(call: Call) -> None:
        await call.answer()
        seen["outcome"] = await call.play(prompt)  # interrupt_on_dtmf is the default
        seen["stopped_after"] = call.duration
        seen["digits"] = await call.collect_dtmf(max_digits=10, timeout=5, terminator="#")

    endpoint = await make_endpoint(on_call, symmetric_rtp=False)
    run = await run_sipp(
        "caller_dtmf.xml", endpoint.port, tmp_path / "sipp", keys={"tap_port": tap.port}
    )
    tap.close()
    assert run.returncode == 0, run.errors()
    assert seen["outcome"] is PlayOutcome.DTMF
    assert isinstance(seen["stopped_after"], float) and seen["stopped_after"] < 5.0
    # the interrupting digit is not lost: it is the first one collected
    assert seen["digits"] == Collected("112", "terminator")
    assert level_at(tap.audio(), 500.0) > 3000
