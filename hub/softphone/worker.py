"""A softphone worker process: aiortc peer connections bridged to plain G.711 RTP.

Why a process: one aiortc peer costs 5–7 % of a core for PCMU (DTLS, SRTP, the codec, its
jitter buffer), so the hub's event loop, which serves HTTP and routing, must never carry it.
Each peer gets a loopback UDP socket (the *bridge*): what the browser sends is re-encoded
as PCMU RTP to the media engine's port for the leg; what the engine sends there is played
to the browser. To the engine the browser leg is an ordinary RTP leg.

The hub talks to the worker over stdin/stdout, one JSON object per line:

- ``{"id": n, "op": "open", "leg": L, "sdp": OFFER, "engine": [host, port]}`` →
  ``{"id": n, "sdp": ANSWER, "bridge": [host, port]}`` (again for a leg that exists: a new
  peer connection replaces the old one, the bridge stays; aiortc has no ICE restart);
- ``{"id": n, "op": "close", "leg": L}`` → ``{"id": n}``;
- events: ``{"event": "state", "leg": L, "state": "connected" | "failed" | …}``.

ICE ports come from ``--port-min``..``--port-max``: aioice binds port 0 and has no range
setting (aioice#47), so the loop's ``create_datagram_endpoint`` is wrapped to pick ports
from the range.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import fractions
import json
import logging
import os
import re
import struct
import sys
import time
from typing import Any

import numpy as np

from speech.g711 import ulaw_decode, ulaw_encode

log = logging.getLogger("hub.softphone.worker")
RATE = 8000
FRAME = 160
PCMU = 0
_HEADER = struct.Struct("!BBHII")
SILENCE = np.zeros(FRAME, dtype=np.int16)
MAX_QUEUED = 4  # 80 ms: the engine's clock and ours drift; more is dropped (latency)
# A queue that never fell below 2 frames for DRAIN_AFTER ticks (0.5 s) is standing latency,
# not jitter (the engine's 20 ms clock and ours run at the same rate, so a backlog left by a
# burst would stay): one frame is dropped, until the queue's floor is 0–1 frames again.
DRAIN_AFTER = 25


def limit_ports(loop: asyncio.AbstractEventLoop, port_min: int, port_max: int) -> None:
    """Make every wildcard-port UDP bind (aioice's host candidates) take a port from the
    range, in turn, skipping ports in use."""
    original = loop.create_datagram_endpoint
    count = port_max - port_min + 1
    state = {"next": 0}

    async def bind(protocol_factory: Any, local_addr: Any = None, **kwargs: Any) -> Any:
        if local_addr is None or local_addr[1] != 0 or kwargs.get("sock") is not None:
            return await original(protocol_factory, local_addr=local_addr, **kwargs)
        for i in range(count):
            port = port_min + (state["next"] + i) % count
            try:
                result = await original(
                    protocol_factory, local_addr=(local_addr[0], port), **kwargs
                )
            except OSError:
                continue
            state["next"] = (port - port_min + 1) % count
            return result
        raise OSError(f"no free UDP port in {port_min}-{port_max} for ICE")

    loop.create_datagram_endpoint = bind  # type: ignore[method-assign]


def public_candidates(sdp: str, address: str) -> str:
    """Host candidates carry ``address`` (a 1:1 NAT's public address), so a remote
    browser reaches the worker's port through the NAT (RFC 8445 §5.1.1.1 host candidate)."""
    if not address:
        return sdp
    pattern = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host)", re.M)
    return pattern.sub(lambda m: m.group(1) + address + m.group(3), sdp)


class Bridge(asyncio.DatagramProtocol):
    """The leg's loopback RTP socket towards the media engine."""

    def __init__(self, engine: tuple[str, int]) -> None:
        self.engine = engine
        self.transport: asyncio.DatagramTransport | None = None
        self.incoming: collections.deque[np.ndarray] = collections.deque()
        self._ssrc = struct.unpack("!I", os.urandom(4))[0]
        self._seq = struct.unpack("!H", os.urandom(2))[0]
        self._ts = struct.unpack("!I", os.urandom(4))[0]
        self.received = 0
        self.sent = 0
        self.drained = 0  # frames dropped as standing latency
        self._floor_ticks = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if addr[1] != self.engine[1] or len(data) < 12 or (data[0] >> 6) != 2:
            return
        if data[1] & 0x7F != PCMU:  # telephone-events: the browser does not need them
            return
        offset = 12 + 4 * (data[0] & 0x0F)
        self.received += 1
        self.incoming.append(ulaw_decode(data[offset:]))
        while len(self.incoming) > MAX_QUEUED:
            self.incoming.popleft()

    def next_frame(self) -> np.ndarray:
        """The frame for this 20 ms tick (silence when none came), draining a backlog that
        stood for ``DRAIN_AFTER`` ticks by one frame."""
        queue = self.incoming
        if len(queue) >= 2:
            self._floor_ticks += 1
            if self._floor_ticks >= DRAIN_AFTER:
                queue.popleft()
                self.drained += 1
                self._floor_ticks = 0
        else:
            self._floor_ticks = 0
        return queue.popleft() if queue else SILENCE

    def send(self, pcm: np.ndarray) -> None:
        """One frame (any length) from the browser, as PCMU RTP to the engine."""
        if self.transport is None:
            return
        self._seq = (self._seq + 1) & 0xFFFF
        header = _HEADER.pack(0x80, PCMU, self._seq, self._ts, self._ssrc)
        self._ts = (self._ts + pcm.shape[0]) & 0xFFFFFFFF
        self.transport.sendto(header + ulaw_encode(pcm), self.engine)
        self.sent += 1


def _track_class() -> type:
    from aiortc import MediaStreamTrack
    from aiortc.mediastreams import MediaStreamError

    class EngineTrack(MediaStreamTrack):
        """What the engine sends, paced at 20 ms (silence when nothing came)."""

        kind = "audio"

        def __init__(self, bridge: Bridge) -> None:
            super().__init__()
            self.bridge = bridge
            self._start: float | None = None
            self._pts = 0

        async def recv(self) -> Any:
            import av

            if self.readyState != "live":
                raise MediaStreamError
            if self._start is None:
                self._start = time.monotonic()
            else:
                self._pts += FRAME
                wait = self._start + self._pts / RATE - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            pcm = self.bridge.next_frame()
            if pcm.shape[0] != FRAME:
                pcm = np.resize(pcm, FRAME)
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = RATE
            frame.pts = self._pts
            frame.time_base = fractions.Fraction(1, RATE)
            return frame

    return EngineTrack


class Worker:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.legs: dict[str, dict[str, Any]] = {}
        self.out = sys.stdout
        self.track_class = _track_class()

    def emit(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def _configuration(self) -> Any:
        from aiortc import RTCConfiguration, RTCIceServer

        servers = [RTCIceServer(urls=u) for u in self.config.get("stun", []) if u]
        turn = self.config.get("turn") or {}
        if turn.get("url"):
            servers.append(
                RTCIceServer(
                    urls=turn["url"],
                    username=turn.get("username") or None,
                    credential=turn.get("password") or None,
                )
            )
        return RTCConfiguration(iceServers=servers)

    async def open(self, leg_id: str, offer: str, engine: tuple[str, int]) -> dict[str, Any]:
        from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription

        leg = self.legs.get(leg_id)
        if leg is None:
            loop = asyncio.get_running_loop()
            transport, bridge = await loop.create_datagram_endpoint(
                lambda: Bridge(engine), local_addr=("127.0.0.1", 0), reuse_port=False
            )
            leg = self.legs[leg_id] = {"bridge": bridge, "transport": transport, "pc": None}
        else:
            leg["bridge"].engine = engine
            await self._close_pc(leg)
        bridge: Bridge = leg["bridge"]
        pc = RTCPeerConnection(self._configuration())
        leg["pc"] = pc
        generation = leg["generation"] = leg.get("generation", 0) + 1

        @pc.on("connectionstatechange")
        def changed() -> None:
            if leg.get("pc") is pc and leg.get("generation") == generation:
                self.emit({"event": "state", "leg": leg_id, "state": pc.connectionState})

        @pc.on("track")
        def on_track(track: Any) -> None:
            # every received track is read (an unread one leaks, aiortc#554)
            task = asyncio.ensure_future(self._pump(track, bridge, pc, leg))
            leg.setdefault("tasks", set()).add(task)

        # The transceiver exists before the offer is applied, so its codec preferences
        # decide what is negotiated (PCMU first: G.711 end to end, no transcoding).
        codecs = RTCRtpSender.getCapabilities("audio").codecs
        wanted = self.config.get("codecs") or ["PCMU"]
        prefs = [
            c for name in wanted for c in codecs if c.mimeType.lower() == f"audio/{name}".lower()
        ]
        transceiver = pc.addTransceiver(self.track_class(bridge), direction="sendrecv")
        transceiver.setCodecPreferences(prefs)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        sdp = public_candidates(pc.localDescription.sdp, self.config.get("public_address", ""))
        host, port = leg["transport"].get_extra_info("sockname")[:2]
        return {"sdp": sdp, "bridge": [host, port]}

    async def _pump(self, track: Any, bridge: Bridge, pc: Any, leg: dict[str, Any]) -> None:
        """The browser's audio, as 8 kHz mono PCM frames, to the engine (only while this
        peer connection is the leg's current one)."""
        import av
        from aiortc.mediastreams import MediaStreamError

        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind != "audio" or leg.get("pc") is not pc:
                continue
            for out in resampler.resample(frame):
                pcm = out.to_ndarray().reshape(-1).astype(np.int16)
                for start in range(0, pcm.shape[0], FRAME):
                    bridge.send(pcm[start : start + FRAME])

    async def _close_pc(self, leg: dict[str, Any]) -> None:
        pc, leg["pc"] = leg.get("pc"), None
        for task in leg.pop("tasks", set()):
            task.cancel()
        if pc is not None:
            with contextlib.suppress(Exception):
                await pc.close()

    async def close(self, leg_id: str) -> dict[str, Any]:
        leg = self.legs.pop(leg_id, None)
        if leg is None:
            return {}
        await self._close_pc(leg)
        leg["transport"].close()
        bridge: Bridge = leg["bridge"]
        return {"received": bridge.received, "sent": bridge.sent, "drained": bridge.drained}

    async def handle(self, request: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": request.get("id")}
        try:
            if request["op"] == "open":
                engine = (str(request["engine"][0]), int(request["engine"][1]))
                reply.update(await self.open(str(request["leg"]), str(request["sdp"]), engine))
            elif request["op"] == "close":
                reply.update(await self.close(str(request["leg"])))
            else:
                reply["error"] = f"unknown op {request['op']!r}"
        except Exception as exc:
            log.exception("softphone worker: %s failed", request.get("op"))
            reply["error"] = f"{type(exc).__name__}: {exc}"[:300]
        self.emit(reply)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        tasks: set[asyncio.Task[None]] = set()
        while line := await reader.readline():
            task = asyncio.create_task(self.handle(json.loads(line)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        for leg_id in list(self.legs):  # the hub went away: close everything
            await self.close(leg_id)


async def _main(config: dict[str, Any]) -> None:
    limit_ports(asyncio.get_running_loop(), int(config["port_min"]), int(config["port_max"]))
    await Worker(config).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="JSON: port_min, port_max, stun, turn, public_address")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(_main(json.loads(args.config)))


if __name__ == "__main__":
    main()
