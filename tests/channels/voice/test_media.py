"""Media engine behaviour seen from a real call: in-band DTMF, the audio stream for the
recognizer, barge-in, and RTP from an unexpected source being ignored."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from channels.voice.call import Call, Collected, PlayOutcome
from channels.voice.playback import tone
from speech.dtmf import generate_dtmf
from tests.channels.voice.helpers import level_at, open_tap, run_sipp

pytestmark = pytest.mark.sipp


async def test_inband_dtmf_audio_stream_and_foreign_rtp(
    sipp: str, make_endpoint, tmp_path: Path
) -> None:
    tap = await open_tap()
    intruder = await open_tap("127.0.0.2")  # same call, wrong source address
    ready, done = asyncio.Event(), asyncio.Event()
    seen: dict[str, object] = {}

    async def on_call(call: Call) -> None:
        await call.answer()
        seen["call"] = call
        frames: list[np.ndarray] = []

        async def listen() -> None:
            async for frame in call.audio_stream():
                frames.append(frame)

        listener = asyncio.ensure_future(listen())
        ready.set()
        seen["digits"] = await call.collect_dtmf(max_digits=5, timeout=6, terminator="#")
        seen["stats"] = call.stats()["rtp"]
        await call.hangup()
        await asyncio.wait_for(listener, 2)  # the stream ends with the call
        seen["heard"] = np.concatenate(frames)
        done.set()

    endpoint = await make_endpoint(on_call)
    caller = asyncio.ensure_future(
        run_sipp(
            "caller_talk_inband.xml", endpoint.port, tmp_path / "sipp", keys={"tap_port": tap.port}
        )
    )
    await asyncio.wait_for(ready.wait(), 10)
    call = seen["call"]
    assert isinstance(call, Call) and call.rtp is not None and call.inband_dtmf
    dest = ("127.0.0.1", call.rtp.local_port)
    keypad = np.concatenate(
        [np.zeros(1600, np.int16), generate_dtmf("42#"), np.zeros(800, np.int16)]
    )
    await asyncio.gather(
        tap.stream_pcm(dest, keypad),
        intruder.stream_tone(dest, 3000.0, keypad.shape[0] / 8000),
    )
    run = await caller
    await asyncio.wait_for(done.wait(), 5)
    tap.close()
    intruder.close()
    assert run.returncode == 0, run.errors()
    assert seen["digits"] == Collected("42", "terminator")
    heard = seen["heard"]
    assert isinstance(heard, np.ndarray) and heard.shape[0] > 4000
    assert level_at(heard, 3000.0) < 100  # the intruder's tone never reached the call
    assert level_at(heard, 770.0) > 500  # the keypad's '4' (770 Hz row) did
    stats = seen["stats"]
    assert isinstance(stats, dict) and stats["packets_ignored"] > 20


async def test_barge_in_stops_the_prompt(sipp: str, make_endpoint, tmp_path: Path) -> None:
    tap = await open_tap()
    ready = asyncio.Event()
    seen: dict[str, object] = {}

    async def on_call(call: Call) -> None:
        await call.answer()
        seen["call"] = call
        ready.set()
        seen["outcome"] = await call.play(tone((600.0,), 10.0), barge_in=True)
        await call.hangup()

    endpoint = await make_endpoint(on_call)
    caller = asyncio.ensure_future(
        run_sipp("caller_talk.xml", endpoint.port, tmp_path / "sipp", keys={"tap_port": tap.port})
    )
    await asyncio.wait_for(ready.wait(), 10)
    call = seen["call"]
    assert isinstance(call, Call) and call.rtp is not None
    await asyncio.sleep(0.5)  # the caller listens, then talks over the prompt
    await tap.stream_tone(("127.0.0.1", call.rtp.local_port), 300.0, 1.0)
    run = await caller
    tap.close()
    assert run.returncode == 0, run.errors()
    assert seen["outcome"] is PlayOutcome.BARGE_IN


async def test_tts_stream_plays_and_recording_stops_on_request(
    sipp: str, make_endpoint, tmp_path: Path
) -> None:
    """A stream of 22.05 kHz chunks (as Piper makes them) is resampled and heard; the
    recording covers only the time between record() and stop_recording()."""
    from speech.audio import Audio, read_wav

    tap = await open_tap()
    seen: dict[str, object] = {}

    async def tts_chunks():
        rate = 22050
        for _ in range(4):  # 4 × 0.25 s of 1.1 kHz, produced as a synthesizer would
            t = np.arange(rate // 4) / rate
            yield Audio((np.sin(2 * np.pi * 1100 * t) * 9000).astype(np.int16), rate)
            await asyncio.sleep(0.05)

    async def on_call(call: Call) -> None:
        await call.answer()
        path = call.record(tmp_path / "part.wav")
        seen["outcome"] = await call.play(tts_chunks())
        seen["path"] = call.stop_recording()
        assert seen["path"] == path
        await asyncio.sleep(0.5)  # not recorded
        await call.hangup()

    endpoint = await make_endpoint(on_call)
    run = await run_sipp(
        "caller_talk.xml", endpoint.port, tmp_path / "sipp", keys={"tap_port": tap.port}
    )
    tap.close()
    assert run.returncode == 0, run.errors()
    assert seen["outcome"] is PlayOutcome.COMPLETED
    assert level_at(tap.audio(), 1100.0) > 3000
    recording = read_wav(Path(str(seen["path"])))
    assert recording.channels == 2
    assert 0.9 <= recording.duration <= 1.4  # the prompt's second, not the silence after
    assert level_at(recording.samples[:, 1].copy(), 1100.0) > 3000  # right: what was played
