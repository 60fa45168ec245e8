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

``legs_per_core_extrapolated`` is 1 / cpu_per_leg at the largest N whose loss stayed ≤ 1 %;
step ``--legs`` up until loss passes 1 % or a core saturates to find the knee (the load
generator's own peers cost about as much as the server's, so it saturates core 1 at about
the same N: ``load_generator_cpu`` says which side gave out).

Other modes:

- ``--split``: one leg per server, the loud frame timed (one monotonic clock for every
  process) through each aiortc audio jitter buffer (a probe wrapped round
  ``aiortc.jitterbuffer.JitterBuffer.add``, in this process and in the server child) and
  at the engine socket. Servers: ``loopback`` (two aiortc peers in this process, connected
  directly: the browser-to-browser baseline), ``echo``, ``bridged``, and ``engine`` (bridged,
  with the engine replaced by the hub's own ``JitterBuffer`` popped on a 20 ms clock, as the
  media engine's tick does).
- ``--chrome``: the same round trip with headless Chromium as the browser (a fake
  microphone playing a burst every 2 s, onsets found by WebAudio analysers on the
  microphone and the returned track): a second peer connection in the same page (Chrome's
  loopback), the bare echo, the bridged worker.
- ``--accept N``: N calls through a real hub process (SIPp caller with an RTP tone, alice
  in headless Chromium with the browser as her device): the page times the Accept click →
  the hub's connect event → offer → answer → connected → the first 21 ms analyser window
  carrying the caller's tone.

    .venv/bin/python bench/softphone.py [--legs 2,4,8] [--window 8]
    .venv/bin/python bench/softphone.py --split --window 10
    .venv/bin/python bench/softphone.py --chrome --window 12
    .venv/bin/python bench/softphone.py --accept 4

Keep runs short on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import functools
import json
import os
import statistics
import struct
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


# --- the round trip's parts (--split) -----------------------------------------------------

PROBE_ENV = "SOFTPHONE_BENCH_PROBE"  # a server child appends its probe events to this file


def loud_ulaw(payload: bytes) -> bool:
    """A PCMU payload holding the loud probe: its negative peaks encode below 0x10 (the
    quiet 0.05 tone stays above 0x30)."""
    return bool(payload) and min(payload) < 0x10


def install_probe(record: Any) -> None:
    """Time the loud frame through every aiortc audio jitter buffer in this process
    (``aiortc.jitterbuffer.JitterBuffer``, capacity 16, prefetch 4): ``record("jb",
    t_in, t_out)`` with monotonic times (one clock for every process on the machine)."""
    from aiortc import jitterbuffer

    original = jitterbuffer.JitterBuffer.add

    def add(self: Any, packet: Any) -> Any:
        if not self._is_video and loud_ulaw(packet.payload):
            self.__dict__.setdefault("_probe", {})[packet.timestamp] = time.monotonic()
        pli, frame = original(self, packet)
        probes = self.__dict__.get("_probe")
        if frame is not None and probes and frame.timestamp in probes:
            record("jb", probes.pop(frame.timestamp), time.monotonic())
        return pli, frame

    jitterbuffer.JitterBuffer.add = add  # type: ignore[method-assign]


def probe_to_file() -> None:
    path = os.environ.get(PROBE_ENV)
    if not path:
        return
    out = open(path, "a")  # noqa: SIM115 - the child's lifetime

    def record(kind: str, t_in: float, t_out: float) -> None:
        out.write(json.dumps([kind, t_in, t_out]) + "\n")
        out.flush()

    install_probe(record)


def probe_worker(config: str) -> None:
    """The hub's softphone worker, unchanged, with the jitter-buffer probe installed."""
    import logging

    from hub.softphone.worker import _main

    probe_to_file()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(_main(json.loads(config)))


def after(events: list[tuple[float, float]], t: float, within: float = 1.0) -> Any:
    """The first (t_in, t_out) event entering after ``t`` (within ``within`` s)."""
    return next((e for e in sorted(events) if t < e[0] < t + within), None)


def split_parts(
    sent: list[float],
    heard: list[float],
    far_jb: list[tuple[float, float]],
    near_jb: list[tuple[float, float]],
    engine: list[float],
) -> dict[str, Any]:
    """Median ms of each part of the loud frame's round trip: sent → the far peer's jitter
    buffer (in, out) → [the engine] → this peer's jitter buffer (in, out) → heard."""
    parts: dict[str, list[float]] = {}
    for t in sent:
        far = after(far_jb, t)
        if far is None:
            continue
        near = after(near_jb, far[1])
        done = next((h for h in sorted(heard) if near and h > near[1]), None)
        if near is None or done is None or done - t > 1.0:
            continue
        row = {
            "wire_up": far[0] - t,
            "jb_far": far[1] - far[0],
            "far_to_near": near[0] - far[1],
            "jb_near": near[1] - near[0],
            "decode_near": done - near[1],
            "total": done - t,
        }
        at_engine = next((e for e in sorted(engine) if far[1] <= e < near[0]), None)
        if at_engine is not None:
            row["far_to_engine"] = at_engine - far[1]
            row["engine_to_near"] = near[0] - at_engine
        for k, v in row.items():
            parts.setdefault(k, []).append(v * 1000)
    return {f"{k}_ms": round(statistics.median(v), 1) for k, v in parts.items()} | {
        "probes": len(parts.get("total", []))
    }


# --- the bare echo server (child process) ------------------------------------------------


async def echo_server() -> None:
    """JSON lines on stdin/stdout like the worker; each peer echoes its received track."""
    from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay

    probe_to_file()
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

    loud: list[float]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.loud = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]
        if loud_ulaw(data[12:]):
            self.loud.append(time.monotonic())


class EngineReflector(asyncio.DatagramProtocol):
    """The "engine" with the media engine's receive path: each bridge's packets go into the
    hub's own jitter buffer (``channels.voice.jitter_buffer.JitterBuffer``, the engine's
    prefill and size), which a 20 ms absolute clock pops, as the engine's tick does, and
    sends back (``--split``, kind ``engine``)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        from channels.voice.settings import VoiceSettings

        self.transport = transport
        self.loud: list[float] = []
        self.loud_out: list[float] = []
        self.legs: dict[Any, dict[str, Any]] = {}
        s = VoiceSettings()
        self.prefill, self.max_frames = s.jitter_prefill_frames, s.max_jitter_frames
        self.clock = asyncio.ensure_future(self.run())

    def connection_lost(self, exc: Exception | None) -> None:
        self.clock.cancel()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        from channels.voice.jitter_buffer import JitterBuffer

        leg = self.legs.get(addr)
        if leg is None:
            leg = self.legs[addr] = {
                "jb": JitterBuffer(prefill=self.prefill, max_frames=self.max_frames),
                "last": None,
                "cycles": 0,
                "seq": 0,
            }
        seq = int.from_bytes(data[2:4], "big")
        if leg["last"] is not None and seq < leg["last"] and leg["last"] - seq > 0x8000:
            leg["cycles"] += 0x10000
        leg["last"] = seq
        leg["jb"].put(leg["cycles"] + seq, data[12:])
        if loud_ulaw(data[12:]):
            self.loud.append(time.monotonic())

    async def run(self) -> None:
        start, n = time.monotonic(), 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
            for addr, leg in self.legs.items():
                payload = leg["jb"].pop()
                if payload is None:
                    continue
                leg["seq"] = (leg["seq"] + 1) & 0xFFFF
                header = struct.pack("!BBHII", 0x80, 0, leg["seq"], n * 160 & 0xFFFFFFFF, 7)
                self.transport.sendto(header + payload, addr)  # type: ignore[attr-defined]
                if loud_ulaw(payload):
                    self.loud_out.append(time.monotonic())


def tone_track(probe: dict[str, Any] | None) -> Any:
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
                probe.setdefault("all", []).append(probe["sent"])  # type: ignore[attr-defined]
            pcm = (level * 32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = 8000
            frame.pts = self.n * 160
            frame.time_base = fractions.Fraction(1, 8000)
            return frame

    return Tone()


class LocalEcho:
    """The loopback baseline: the echoing peer lives in this process, connected directly
    to the "browser" peer (two aiortc peers, no server process, no bridge)."""

    def __init__(self) -> None:
        self.pcs: list[Any] = []

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
        from aiortc.contrib.media import MediaRelay

        relay = MediaRelay()
        pc = RTCPeerConnection()
        self.pcs.append(pc)
        transceiver = pc.addTransceiver("audio", direction="sendrecv")
        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/PCMU"]
        )
        pc.on("track", lambda track: transceiver.sender.replaceTrack(relay.subscribe(track)))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=fields["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return {"sdp": pc.localDescription.sdp}

    async def stop(self) -> None:
        for pc in self.pcs:
            await pc.close()


GEN_EVENTS: list[tuple[float, float]] = []  # this process's jitter-buffer probe (--split)


async def run_server(kind: str, legs: int, window: float, split: bool = False) -> dict[str, Any]:
    import tempfile

    from aiortc import RTCPeerConnection, RTCSessionDescription

    from hub.softphone.workers import WorkerClient

    loop = asyncio.get_running_loop()
    reflector_transport, reflector = await loop.create_datagram_endpoint(
        EngineReflector if kind == "engine" else Reflector, local_addr=("127.0.0.1", 0)
    )
    engine = reflector_transport.get_extra_info("sockname")
    config = {"port_min": 47200, "port_max": 47399, "public_address": "", "stun": [], "turn": {}}
    probe_file = Path(tempfile.mkstemp(prefix="softphone-probe-")[1])
    env = {**os.environ, PROBE_ENV: str(probe_file)} if split else None
    GEN_EVENTS.clear()
    client: Any = WorkerClient(config, lambda _m: None)
    if kind == "loopback":
        client = LocalEcho()
        server = None
    else:
        if kind == "echo":
            args = ["--echo-server"]
        elif split:
            args = ["--probe-worker", json.dumps(config)]
        if kind == "echo" or split:
            client._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
            client._reader = asyncio.create_task(client._read())
        else:
            await client.start()
        pin(client._proc.pid, 0)
        server = psutil.Process(client._proc.pid)
    pcs, counts, setups, rtts = [], [0] * legs, [], []
    probe: dict[str, Any] = {}
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
                            heard = time.monotonic()
                            rtts.append((heard - probe.pop("sent")) * 1000)
                            probe.setdefault("heard", []).append(heard)

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
        cpu0 = server.cpu_times() if server else None
        me0 = psutil.Process().cpu_times()
        t0 = time.monotonic()
        await asyncio.sleep(window)
        wall = time.monotonic() - t0
        cpu1 = server.cpu_times() if server else None
        me1 = psutil.Process().cpu_times()
        got = sum(c - b for c, b in zip(counts, before, strict=True))
        due = legs * wall / 0.02
        server_cpu = (
            (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall
            if cpu0 and cpu1
            else None  # loopback: the echoing peer is in this process
        )
        load_cpu = (me1.user + me1.system - me0.user - me0.system) / wall
        figure: dict[str, Any] = {}
        if split:
            far: list[tuple[float, float]] = []
            near = list(GEN_EVENTS)
            if kind == "loopback":  # both jitter buffers are here: the echoing peer's first
                near, far = [], []
                for t in probe.get("all", []):
                    first = after(GEN_EVENTS, t)
                    if first:
                        far.append(first)
                        second = after(GEN_EVENTS, first[1])
                        if second:
                            near.append(second)
            else:
                for line in probe_file.read_text().splitlines():
                    _kind, t_in, t_out = json.loads(line)
                    far.append((t_in, t_out))
            figure = split_parts(
                probe.get("all", []), probe.get("heard", []), far, near, reflector.loud
            )
            if kind == "engine":  # the loud frame's wait in the engine's jitter buffer
                waits = [
                    (o - i) * 1000
                    for i in reflector.loud
                    if (o := next((x for x in reflector.loud_out if x >= i), None)) is not None
                ]
                figure["engine_jb_ms"] = round(statistics.median(waits), 1) if waits else None
        return {
            "server": kind,
            "legs": legs,
            "cpu_per_leg": round(server_cpu / legs, 4) if server_cpu is not None else None,
            "server_cpu": round(server_cpu, 3) if server_cpu is not None else None,
            "loss": round(max(0.0, 1 - got / due), 4),
            "setup_ms_p50": round(statistics.median(setups), 1),
            "setup_ms_max": round(max(setups), 1),
            "rtt_ms": round(statistics.median(rtts), 1) if rtts else None,
            "load_generator_cpu": round(load_cpu, 3),
            **figure,
        }
    finally:
        for reader in readers:
            reader.cancel()
        for pc in pcs:
            await pc.close()
        await client.stop()
        reflector_transport.close()
        probe_file.unlink(missing_ok=True)


async def split_run(window: float) -> None:
    """One leg per server, the loud frame timed through each jitter buffer: the
    loopback baseline (two aiortc peers in this process), the bare echo, the bridge."""
    install_probe(lambda _kind, t_in, t_out: GEN_EVENTS.append((t_in, t_out)))
    pin(os.getpid(), 1)
    emit(bench="softphone-split", cores=os.cpu_count(), window_s=window, load=os.getloadavg())
    for kind in ("loopback", "echo", "bridged", "engine"):
        emit(**await run_server(kind, 1, window, split=True))
    emit(load=os.getloadavg())


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


# --- accept → audio through a real hub (--accept) ----------------------------------------

# Installed in the agent's page just before Accept is clicked: timestamps (performance.now)
# for the click, the accept's HTTP reply, the hub's "connect" event on the softphone's
# stream, the page's offer POST and its answer, the remote track, the peer connection's
# "connected", and the first analyser window whose FFT carries the caller's tone
# (fftSize 1024 at 48 kHz: a 21 ms window, polled every 5 ms).
WATCH_JS = """(freq) => {
  const w = {freq, t: {}};
  window.__acceptBench = w;
  const now = () => performance.now();
  const button = document.querySelector(
    "#offers .offer[data-channel=voice] button[hx-post$='/accept']");
  button.addEventListener("click", () => { w.t.click = now(); }, {capture: true, once: true});
  document.addEventListener("htmx:afterRequest", (e) => {
    const path = (e.detail && e.detail.pathInfo && e.detail.pathInfo.requestPath) || "";
    if (/\\/accept$/.test(path) && w.t.accept_reply === undefined) w.t.accept_reply = now();
  });
  window.softphone.events.addEventListener("softphone", (e) => {
    if (JSON.parse(e.data).action === "connect" && w.t.sse_connect === undefined) {
      w.t.sse_connect = now();
    }
  });
  if (!window.__fetchWrapped) {
    window.__fetchWrapped = true;
    const orig = window.fetch;
    window.fetch = async (...args) => {
      const url = String(args[0]);
      const b = window.__acceptBench;
      if (b && /\\/offer$/.test(url) && b.t.offer_sent === undefined) b.t.offer_sent = now();
      const res = await orig(...args);
      if (b && /\\/offer$/.test(url) && b.t.answer === undefined) b.t.answer = now();
      return res;
    };
  }
  let ac = null, analyser = null, data = null;
  const timer = setInterval(() => {
    const sp = window.softphone;
    if (w.t.connected === undefined && sp.connected) w.t.connected = now();
    if (!analyser && sp.remoteStream) {
      w.t.track = now();
      ac = new AudioContext();
      analyser = ac.createAnalyser();
      analyser.fftSize = 1024;
      analyser.smoothingTimeConstant = 0;
      ac.createMediaStreamSource(sp.remoteStream).connect(analyser);
      data = new Float32Array(analyser.frequencyBinCount);
    }
    if (!analyser) return;
    analyser.getFloatFrequencyData(data);
    const at = Math.round(freq / (ac.sampleRate / analyser.fftSize));
    const db = Math.max(...data.slice(at - 1, at + 2));
    if (Number.isFinite(db) && db > -50) {
      w.t.audio = now();
      w.db = db;
      clearInterval(timer);
      ac.close();
    }
  }, 5);
}"""


def accept_run(calls: int) -> None:
    """Each of ``calls`` calls: a SIPp caller with an RTP tone rings alice, who takes calls
    in headless Chromium (fake microphone); the bench clicks Accept and the page times the
    first analyser window carrying the caller's tone. One JSON line per call, then a
    summary (the first call after the hub starts also starts the softphone worker)."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import fake_mic_args
    from tests.e2e.hub_process import free_sip_port, hub_server, seed_database, voice_env
    from tests.e2e.rtp_party import RtpParty
    from tests.e2e.test_call_controls import close_wrapup, party_caller
    from tests.e2e.test_console_browser import go_ready, log_in
    from tests.e2e.test_softphone import choose_device, tone_wav

    caller_hz, browser_hz = 1000.0, 1400.0
    emit(bench="softphone-accept", cores=os.cpu_count(), calls=calls, load=os.getloadavg())
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        seed_database(tmp / "seed.sqlite3")
        env = voice_env()
        low = int(env["HUB_VOICE_RTP_PORT_MAX"]) + 2
        env |= {
            "HUB_IVR_ENABLED": "0",
            "HUB_VOICE_TRUNK_HOST": "127.0.0.1",
            "HUB_VOICE_TRUNK_PORT": str(free_sip_port()),
            "HUB_SOFTPHONE_PORT_MIN": str(low),
            "HUB_SOFTPHONE_PORT_MAX": str(low + 99),
        }
        with (
            hub_server(tmp / "var", tmp / "seed.sqlite3", **env) as (base, process),
            sync_playwright() as pw,
        ):
            pin(process.pid, 0)
            wav = tone_wav(tmp / "tone.wav", browser_hz)
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=fake_mic_args(wav),
            )
            context = browser.new_context(permissions=["microphone"])
            agent = log_in(context, base, "alice")
            agent.goto(f"{base}/console")
            choose_device(agent, "browser")
            agent.reload()
            go_ready(agent)
            for n in range(calls):
                party = RtpParty(caller_hz)
                sipp = party_caller(tmp, int(env["HUB_VOICE_BIND_PORT"]), f"+1555123{n:04d}", party)
                try:
                    agent.locator("#softphone .sp-ring").wait_for()
                    agent.evaluate(WATCH_JS, caller_hz)
                    offer = agent.locator("#offers .offer[data-channel=voice]")
                    offer.get_by_role("button", name="Accept").click()
                    deadline = time.monotonic() + 20
                    while True:
                        w = agent.evaluate("() => window.__acceptBench")
                        done = "audio" in w["t"] and "accept_reply" in w["t"]
                        if done or time.monotonic() > deadline:
                            break
                        time.sleep(0.1)
                    t = w["t"]
                    click = t.get("click")
                    row = {
                        "call": n + 1,
                        **{
                            f"{k}_ms": round(v - click, 1)
                            for k, v in t.items()
                            if k != "click" and click is not None
                        },
                    }
                    row["audio"] = "audio" in t
                    results.append(row)
                    emit(**row)
                    agent.locator("#softphone .sp-hangup").click()
                    sipp.wait(30)
                    close_wrapup(agent, then="ready")
                finally:
                    sipp.stop()
                    party.close()
            context.close()
            browser.close()
    later = [r["audio_ms"] for r in results[1:] if r["audio"]]
    first = results[0].get("audio_ms") if results else None
    emit(
        accept_to_audio_first_ms=first,
        accept_to_audio_ms_p50=round(statistics.median(later), 1) if later else None,
        accept_to_audio_ms_max=max(later) if later else None,
        calls_heard=sum(r["audio"] for r in results),
        calls=len(results),
        load=os.getloadavg(),
    )


# --- the round trip with Chromium as the browser (--chrome) ------------------------------

# The page: the fake microphone plays a silent file with one loud 100 ms burst every 2 s.
# ``setup`` gets the microphone (no echo cancellation, noise suppression or gain control)
# and makes pc1 (PCMU first); for the loopback, pc2 in the same page sends back what it
# receives. ``measure`` polls two analysers every 2 ms (fftSize 256, 5.3 ms windows: the
# same on both sides, so their latency cancels) and pairs each burst's onset on the
# microphone with its onset on the returned track.
CHROME_JS = """
window.rtt = {
  async setup(loopback) {
    const mic = await navigator.mediaDevices.getUserMedia({audio: {
      echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
    const pc1 = new RTCPeerConnection();
    pc1.addTrack(mic.getAudioTracks()[0], mic);
    const codecs = RTCRtpReceiver.getCapabilities("audio").codecs;
    const pcmu = codecs.filter((c) => c.mimeType.toLowerCase() === "audio/pcmu");
    const rest = codecs.filter((c) => !pcmu.includes(c));
    pc1.getTransceivers()[0].setCodecPreferences([...pcmu, ...rest]);
    this.mic = mic;
    this.pc1 = pc1;
    this.remote = new Promise((resolve) => {
      pc1.ontrack = (e) => resolve(new MediaStream([e.track]));
    });
    const gathered = (pc) => new Promise((r) => {
      if (pc.iceGatheringState === "complete") return r();
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") r();
      });
    });
    await pc1.setLocalDescription(await pc1.createOffer());
    await gathered(pc1);
    if (!loopback) return pc1.localDescription.sdp;
    const pc2 = new RTCPeerConnection();
    pc2.ontrack = (e) => e.transceiver.sender.replaceTrack(e.track);
    await pc2.setRemoteDescription(pc1.localDescription);
    pc2.getTransceivers()[0].direction = "sendrecv"; // what it receives goes back
    await pc2.setLocalDescription(await pc2.createAnswer());
    await gathered(pc2);
    await pc1.setRemoteDescription(pc2.localDescription);
    this.pc2 = pc2;
    return null;
  },
  async answer(sdp) { await this.pc1.setRemoteDescription({type: "answer", sdp}); },
  async measure(seconds) {
    const remote = await this.remote;
    const el = new Audio(); el.srcObject = remote; el.muted = true; el.play().catch(() => {});
    const ac = new AudioContext();
    const probe = (stream) => {
      const a = ac.createAnalyser(); a.fftSize = 256;
      ac.createMediaStreamSource(stream).connect(a);
      return {a, buf: new Float32Array(256), loud: false, onsets: []};
    };
    const sides = [probe(this.mic), probe(remote)];
    const t0 = performance.now();
    await new Promise((done) => {
      const timer = setInterval(() => {
        const t = performance.now();
        for (const s of sides) {
          s.a.getFloatTimeDomainData(s.buf);
          let peak = 0; for (const v of s.buf) peak = Math.max(peak, Math.abs(v));
          if (!s.loud && peak > 0.1) { s.onsets.push(t); s.loud = true; }
          else if (s.loud && peak < 0.02) s.loud = false;
        }
        if (t - t0 > seconds * 1000) { clearInterval(timer); done(); }
      }, 2);
    });
    await ac.close();
    const rtts = [];
    for (const t of sides[0].onsets) {
      const back = sides[1].onsets.find((r) => r > t && r < t + 1000);
      if (back !== undefined) rtts.push(back - t);
    }
    return {rtts, sent: sides[0].onsets.length};
  },
};
"""


def burst_wav(path: Path, rate: int = 48000) -> Path:
    """2 s of silence with one 100 ms 1,000 Hz burst at 1 s (Chromium loops the file)."""
    import wave

    t = np.arange(2 * rate) / rate
    pcm = np.where((t >= 1.0) & (t < 1.1), 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((pcm * 32767).astype("<i2").tobytes())
    return path


async def chrome_run(window: float) -> None:
    """Chromium (pinned to core 1) against: a second peer connection in the same page (the
    browser-to-browser loopback), the bare aiortc echo peer and the hub's worker bridging
    to the reflecting "engine" (each pinned to core 0). One JSON line per server."""
    import http.server
    import tempfile
    import threading

    from playwright.async_api import async_playwright

    from hub.softphone.workers import WorkerClient
    from tests.e2e.conftest import fake_mic_args

    pin(os.getpid(), 1)
    emit(bench="softphone-chrome", cores=os.cpu_count(), window_s=window, load=os.getloadavg())
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as tmp:
        wav = burst_wav(Path(tmp) / "burst.wav")
        (Path(tmp) / "index.html").write_text("<!doctype html><title>rtt</title>")
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=tmp)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # a secure origin
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=fake_mic_args(wav),
            )
            for child in psutil.Process().children(recursive=True):
                pin(child.pid, 1)
            for kind in ("loopback", "echo", "bridged"):
                page = await browser.new_page()
                await page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/")
                await page.evaluate(CHROME_JS)
                client = None
                transport = None
                try:
                    offer = await page.evaluate("(l) => window.rtt.setup(l)", kind == "loopback")
                    if kind != "loopback":
                        config = {
                            "port_min": 47400,
                            "port_max": 47499,
                            "public_address": "",
                            "stun": [],
                            "turn": {},
                        }
                        client = WorkerClient(config, lambda _m: None)
                        if kind == "echo":
                            client._proc = await asyncio.create_subprocess_exec(
                                sys.executable,
                                __file__,
                                "--echo-server",
                                stdin=asyncio.subprocess.PIPE,
                                stdout=asyncio.subprocess.PIPE,
                            )
                            client._reader = asyncio.create_task(client._read())
                        else:
                            await client.start()
                        pin(client._proc.pid, 0)
                        transport, _ = await loop.create_datagram_endpoint(
                            Reflector, local_addr=("127.0.0.1", 0)
                        )
                        engine = list(transport.get_extra_info("sockname"))
                        reply = await client.request("open", leg="c", sdp=offer, engine=engine)
                        await page.evaluate("(s) => window.rtt.answer(s)", reply["sdp"])
                    await asyncio.sleep(4)  # connect, and let Chrome's jitter buffer settle
                    got = await page.evaluate("(s) => window.rtt.measure(s)", window)
                    rtts = got["rtts"]
                    emit(
                        browser="chromium",
                        server=kind,
                        rtt_ms=round(statistics.median(rtts), 1) if rtts else None,
                        rtt_ms_min=round(min(rtts), 1) if rtts else None,
                        rtt_ms_max=round(max(rtts), 1) if rtts else None,
                        bursts=got["sent"],
                        heard=len(rtts),
                    )
                finally:
                    await page.close()
                    if client is not None:
                        await client.stop()
                    if transport is not None:
                        transport.close()
            await browser.close()
        httpd.shutdown()
    emit(load=os.getloadavg())


if __name__ == "__main__":
    if "--echo-server" in sys.argv:
        asyncio.run(echo_server())
        sys.exit(0)
    if sys.argv[1:2] == ["--probe-worker"]:
        probe_worker(sys.argv[2])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", default="2,4,8")
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument(
        "--chrome", action="store_true", help="Chromium's round trip: loopback, echo, bridged"
    )
    parser.add_argument(
        "--split", action="store_true", help="one leg per server: the round trip's parts"
    )
    parser.add_argument(
        "--accept", type=int, metavar="CALLS", help="accept → audio through a real hub, N calls"
    )
    args = parser.parse_args()
    if args.accept:
        accept_run(args.accept)
        sys.exit(0)
    if args.split:
        asyncio.run(split_run(args.window))
        sys.exit(0)
    if args.chrome:
        asyncio.run(chrome_run(args.window))
        sys.exit(0)
    asyncio.run(main([int(x) for x in args.legs.split(",")], args.window))
