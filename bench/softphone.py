"""Softphone media cost: a bridged browser leg against a bare aiortc echo peer, same run.

Two servers, each a child process pinned to core 0:

- ``bridged``: the hub's softphone worker (``hub.softphone.worker``) bridging each peer by
  PCMU RTP over loopback to an "engine" that reflects every packet (a UDP socket in this
  script; the media engine's own cost is measured by ``bench/voice.py``);
- ``echo``: a bare aiortc peer that sends back the track it receives (``--echo-server``,
  the same JSON-lines protocol as the worker).

The load generator (this process, pinned to core 1, its CPU reported) runs N aiortc
"browser" peers offering PCMU, each sending a tone and counting the 20 ms frames it gets
back. Per server and N it prints one JSON line:

- ``cpu_per_leg``: the server process's CPU share of one core per leg (the main figure);
- ``loss``: 1 − frames received / frames due over the window;
- ``setup_ms_p50/max``: offer sent → the peer connected (ICE + DTLS; the console adds one
  HTTP round trip and the accept);
- ``rtt_ms``: a loud frame sent on leg 0 → its echo heard back. The bridged figure minus
  the echo figure is what the bridge adds (the loopback hop and the worker's 20 ms
  pacing; the media engine's jitter buffer is not in this loop).

``legs_per_core_extrapolated`` is 1 / cpu_per_leg at the largest N whose loss stayed ≤ 1 %:
an extrapolation, not a saturation run (pass larger ``--legs`` on a quiet machine).

    .venv/bin/python bench/softphone.py [--legs 2,4,8] [--window 8]

Keep runs short on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402

LOUD = 8000  # a frame whose peak is above this is the round-trip probe


def emit(**figure: object) -> None:
    print(json.dumps(figure), flush=True)


def pin(pid: int, core: int) -> None:
    with contextlib.suppress(Exception):
        if core < (os.cpu_count() or 1):
            psutil.Process(pid).cpu_affinity([core])


# --- the bare echo server (child process) ------------------------------------------------


async def echo_server() -> None:
    """JSON lines on stdin/stdout like the worker; each peer echoes its received track."""
    from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay

    relay = MediaRelay()
    pcs: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def handle(req: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": req["id"]}
        if req["op"] == "open":
            pc = RTCPeerConnection()
            pcs[req["leg"]] = pc
            transceiver = pc.addTransceiver("audio", direction="sendrecv")
            transceiver.setCodecPreferences(
                [
                    c
                    for c in RTCRtpSender.getCapabilities("audio").codecs
                    if c.mimeType == "audio/PCMU"
                ]
            )

            @pc.on("track")
            def on_track(track: Any) -> None:
                transceiver.sender.replaceTrack(relay.subscribe(track))

            await pc.setRemoteDescription(RTCSessionDescription(sdp=req["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            reply["sdp"] = pc.localDescription.sdp
        elif req["op"] == "close":
            pc = pcs.pop(req["leg"], None)
            if pc is not None:
                await pc.close()
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()

    tasks = set()
    while line := await reader.readline():
        task = asyncio.create_task(handle(json.loads(line)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


# --- the load generator -------------------------------------------------------------------


class Reflector(asyncio.DatagramProtocol):
    """The "engine": every RTP packet from a bridge goes straight back to it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


def tone_track(probe: dict[str, float] | None) -> Any:
    import av
    from aiortc import MediaStreamTrack

    class Tone(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.n = 0
            self.start: float | None = None

        async def recv(self) -> Any:
            if self.start is None:
                self.start = time.monotonic()
            self.n += 1
            wait = self.start + self.n * 0.02 - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            t = (np.arange(160) + self.n * 160) / 8000
            level = 0.05
            if probe is not None and self.n % 100 == 50:  # every 2 s, one loud frame
                level = 0.9
                probe["sent"] = time.monotonic()
            pcm = (level * 32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = 8000
            frame.pts = self.n * 160
            frame.time_base = fractions.Fraction(1, 8000)
            return frame

    return Tone()


async def run_server(kind: str, legs: int, window: float) -> dict[str, Any]:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from hub.softphone.workers import WorkerClient

    loop = asyncio.get_running_loop()
    reflector_transport, _ = await loop.create_datagram_endpoint(
        Reflector, local_addr=("127.0.0.1", 0)
    )
    engine = reflector_transport.get_extra_info("sockname")
    config = {"port_min": 47200, "port_max": 47399, "public_address": "", "stun": [], "turn": {}}
    client = WorkerClient(config, lambda _m: None)
    if kind == "echo":
        client.config = config
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--echo-server",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        client._proc = proc
        client._reader = asyncio.create_task(client._read())
    else:
        await client.start()
    assert client._proc is not None
    pin(client._proc.pid, 0)
    server = psutil.Process(client._proc.pid)
    pcs, counts, setups, rtts = [], [0] * legs, [], []
    probe: dict[str, float] = {}
    readers = []
    try:
        for i in range(legs):
            pc = RTCPeerConnection()
            pc.addTrack(tone_track(probe if i == 0 else None))

            def on_track(track: Any, i: int = i) -> None:
                async def read() -> None:
                    while True:
                        frame = await track.recv()
                        counts[i] += 1
                        loud = i == 0 and "sent" in probe
                        if loud and np.abs(frame.to_ndarray()).max() > LOUD:
                            rtts.append((time.monotonic() - probe.pop("sent")) * 1000)

                readers.append(asyncio.ensure_future(read()))

            pc.on("track", on_track)
            connected = asyncio.Event()

            @pc.on("connectionstatechange")
            def changed(pc: Any = pc, connected: asyncio.Event = connected) -> None:
                if pc.connectionState == "connected":
                    connected.set()

            await pc.setLocalDescription(await pc.createOffer())
            started = time.monotonic()
            reply = await client.request(
                "open", leg=f"l{i}", sdp=pc.localDescription.sdp, engine=list(engine)
            )
            await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
            await asyncio.wait_for(connected.wait(), 20)
            setups.append((time.monotonic() - started) * 1000)
            pcs.append(pc)
        await asyncio.sleep(2)  # settle
        before = list(counts)
        cpu0 = server.cpu_times()
        me0 = psutil.Process().cpu_times()
        t0 = time.monotonic()
        await asyncio.sleep(window)
        wall = time.monotonic() - t0
        cpu1 = server.cpu_times()
        me1 = psutil.Process().cpu_times()
        got = sum(c - b for c, b in zip(counts, before, strict=True))
        due = legs * wall / 0.02
        server_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall
        load_cpu = (me1.user + me1.system - me0.user - me0.system) / wall
        return {
            "server": kind,
            "legs": legs,
            "cpu_per_leg": round(server_cpu / legs, 4),
            "server_cpu": round(server_cpu, 3),
            "loss": round(max(0.0, 1 - got / due), 4),
            "setup_ms_p50": round(statistics.median(setups), 1),
            "setup_ms_max": round(max(setups), 1),
            "rtt_ms": round(statistics.median(rtts), 1) if rtts else None,
            "load_generator_cpu": round(load_cpu, 3),
        }
    finally:
        for reader in readers:
            reader.cancel()
        for pc in pcs:
            await pc.close()
        await client.stop()
        reflector_transport.close()


async def main(legs_list: list[int], window: float) -> None:
    pin(os.getpid(), 1)
    emit(bench="softphone", cores=os.cpu_count(), window_s=window, load=os.getloadavg()[0])
    best: dict[str, dict[str, Any]] = {}
    for legs in legs_list:
        for kind in ("echo", "bridged"):
            figure = await run_server(kind, legs, window)
            emit(**figure)
            if figure["loss"] <= 0.01 and figure["cpu_per_leg"] > 0:
                best[kind] = figure
    for kind, figure in best.items():
        emit(
            server=kind,
            legs_per_core_extrapolated=round(1 / figure["cpu_per_leg"], 1),
            at_legs=figure["legs"],
            loss=figure["loss"],
        )


if __name__ == "__main__":
    if "--echo-server" in sys.argv:
        asyncio.run(echo_server())
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", default="2,4,8")
    parser.add_argument("--window", type=float, default=8.0)
    args = parser.parse_args()
    asyncio.run(main([int(x) for x in args.legs.split(",")], args.window))
