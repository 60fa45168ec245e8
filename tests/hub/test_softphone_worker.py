"""The softphone worker process on its own: an aiortc peer in the test plays the browser,
a UDP socket plays the media engine. Checks the bridge both ways, the ICE port range and
the public address in the candidates."""

from __future__ import annotations

import asyncio
import fractions
import re
import socket
import struct

import numpy as np
import pytest

from hub.softphone.worker import DRAIN_AFTER, Bridge, public_candidates
from hub.softphone.workers import WorkerClient, WorkerGone, port_slices
from speech.g711 import ulaw_decode, ulaw_encode
from tests.channels.voice.helpers import level_at

av = pytest.importorskip("av")
aiortc = pytest.importorskip("aiortc")


def test_port_slices_split_the_range_without_overlap() -> None:
    assert port_slices(40000, 40999, 1) == [(40000, 40999)]
    assert port_slices(40000, 40999, 3) == [(40000, 40332), (40333, 40665), (40666, 40999)]


def test_host_candidates_carry_the_public_address() -> None:
    sdp = (
        "a=candidate:1 1 udp 2130706431 10.0.0.5 40002 typ host\r\n"
        "a=candidate:2 1 udp 1694498815 198.51.100.7 40002 typ srflx raddr 10.0.0.5 rport 40002\r\n"
    )
    out = public_candidates(sdp, "203.0.113.9")
    assert "203.0.113.9 40002 typ host" in out
    assert "198.51.100.7 40002 typ srflx" in out  # only host candidates change
    assert public_candidates(sdp, "") == sdp


def test_a_standing_backlog_towards_the_browser_is_drained_but_jitter_is_not() -> None:
    """Frames from the engine wait in the bridge for the 20 ms pacing. Three frames left
    over from a burst would stand for the whole call (both clocks tick at 20 ms): they
    are dropped one per DRAIN_AFTER ticks. A queue that swings 0–2 (jitter) keeps all."""
    frames = [np.full(160, n, dtype=np.int16) for n in range(400)]
    bridge = Bridge(("127.0.0.1", 9))
    bridge.incoming.extend(frames[:3])
    played = []
    for tick in range(4 * DRAIN_AFTER):
        bridge.incoming.append(frames[3 + tick])
        played.append(int(bridge.next_frame()[0]))
    assert bridge.drained == 3 and len(bridge.incoming) == 0
    assert played == sorted(played)  # in order, only the oldest dropped

    jittery = Bridge(("127.0.0.1", 9))
    for tick in range(4 * DRAIN_AFTER):
        if tick % 2 == 0:  # two frames arrive together, then none
            jittery.incoming.extend(frames[tick : tick + 2])
        jittery.next_frame()
    assert jittery.drained == 0


def _tone_track(freq: float):
    class Tone(aiortc.MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        async def recv(self):
            await asyncio.sleep(0.02)
            t = (np.arange(160) + self.n * 160) / 8000
            self.n += 1
            pcm = (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = 8000
            frame.pts = self.n * 160
            frame.time_base = fractions.Fraction(1, 8000)
            return frame

    return Tone()


async def test_the_worker_bridges_a_peer_to_plain_rtp_both_ways() -> None:
    engine = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    engine.bind(("127.0.0.1", 0))
    engine.setblocking(False)
    events: list[dict] = []
    worker = WorkerClient(
        {"port_min": 47100, "port_max": 47119, "public_address": "", "stun": [], "turn": {}},
        events.append,
    )
    await worker.start()
    browser = aiortc.RTCPeerConnection()
    heard: list[np.ndarray] = []
    readers: set[asyncio.Future[None]] = set()
    try:
        browser.addTrack(_tone_track(1400.0))

        @browser.on("track")
        def on_track(track) -> None:
            async def read() -> None:
                while True:
                    frame = await track.recv()
                    heard.append(frame.to_ndarray().reshape(-1))

            readers.add(asyncio.ensure_future(read()))

        await browser.setLocalDescription(await browser.createOffer())
        reply = await worker.request(
            "open", leg="t1", sdp=browser.localDescription.sdp, engine=list(engine.getsockname())
        )
        ports = [
            int(p)
            for p in re.findall(r"a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ host", reply["sdp"])
        ]
        assert ports and all(47100 <= p <= 47119 for p in ports)
        m_line = re.search(r"^m=audio \d+ \S+ (\d+)", reply["sdp"], re.M)
        assert m_line is not None and m_line.group(1) == "0"  # PCMU, first and only
        await browser.setRemoteDescription(
            aiortc.RTCSessionDescription(sdp=reply["sdp"], type="answer")
        )
        for _ in range(200):
            if any(e.get("state") == "connected" for e in events):
                break
            await asyncio.sleep(0.05)
        assert any(e.get("state") == "connected" for e in events), events

        # browser → engine: PCMU RTP carrying the browser's tone
        got: list[bytes] = []
        bridge = tuple(reply["bridge"])
        for seq in range(100):  # the engine sends 2 s of 1,000 Hz meanwhile
            t = (np.arange(160) + seq * 160) / 8000
            pcm = (0.3 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
            engine.sendto(
                struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 1234) + ulaw_encode(pcm), bridge
            )
            await asyncio.sleep(0.02)
            while True:
                try:
                    data, _ = engine.recvfrom(2048)
                except BlockingIOError:
                    break
                got.append(data)
        assert len(got) > 40
        assert all(d[1] & 0x7F == 0 for d in got)
        audio = np.concatenate([ulaw_decode(d[12:]) for d in got[-40:]])
        assert level_at(audio, 1400.0) > 1200
        # engine → browser: the 1,000 Hz tone arrives in the peer (PCMU decodes to 8 kHz)
        assert len(heard) > 40
        received = np.concatenate(heard[-25:]).astype(np.int16)
        assert level_at(received, 1000.0) > 1200
        closed = await worker.request("close", leg="t1")
        assert closed["received"] > 40 and closed["sent"] > 40
        assert closed["drained"] <= 2  # paced 1:1 here: no backlog to drain
    finally:
        for reader in readers:
            reader.cancel()
        await browser.close()
        await worker.stop()
        engine.close()


async def test_a_crashed_worker_is_started_again_on_its_next_use() -> None:
    """The worker process is killed (as a crash would end it): a request to it fails, and
    the next leg is served by a fresh process, whose peer connects."""
    events: list[dict] = []
    worker = WorkerClient(
        {"port_min": 47120, "port_max": 47139, "public_address": "", "stun": [], "turn": {}},
        events.append,
    )
    assert await worker.ensure_running() is False  # never started: nothing to restart
    await worker.start()
    browser = aiortc.RTCPeerConnection()
    try:
        assert await worker.ensure_running() is False  # running: left alone
        first = worker._proc
        assert first is not None
        first.kill()
        await first.wait()
        with pytest.raises(WorkerGone):
            await worker.request("open", leg="t2", sdp="v=0", engine=["127.0.0.1", 9])
        assert await worker.ensure_running() is True
        assert worker.running and worker._proc is not first

        browser.addTrack(_tone_track(1400.0))
        await browser.setLocalDescription(await browser.createOffer())
        reply = await worker.request(
            "open", leg="t2", sdp=browser.localDescription.sdp, engine=["127.0.0.1", 9]
        )
        await browser.setRemoteDescription(
            aiortc.RTCSessionDescription(sdp=reply["sdp"], type="answer")
        )
        for _ in range(200):
            if any(e.get("state") == "connected" for e in events):
                break
            await asyncio.sleep(0.05)
        assert any(e.get("leg") == "t2" and e.get("state") == "connected" for e in events)
    finally:
        await browser.close()
        await worker.stop()
