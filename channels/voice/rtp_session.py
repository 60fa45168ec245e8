"""One RTP stream per call leg (RFC 3550): a UDP socket, symmetric RTP, source checks,
the jitter buffer, RFC 4733 events and the receive statistics.

The socket only queues; decoding, mixing and sending happen on the shared 20 ms media
clock (:mod:`channels.voice.media_engine`), so a call costs no task of its own. The socket
lives on the media engine's own loop and thread: :class:`PortPool` is used only from there,
packets are handled under the engine's lock (``lock``), and the hub side changes a
session's parameters (:meth:`RtpSession.configure`, ``send_enabled``) only under it.

Why not :class:`aiortp.RTPSession`: each of its sessions runs its own media-clock task,
an RTCP task and an RTCP socket, which is two tasks and two sockets per call (1,000 of
each at 500 calls), decodes packet by packet, and its DTMF receiver merges repeated digits
(see :mod:`channels.voice.telephone_events`). The RTP header is 12 bytes (RFC 3550 §5.1),
so parsing it here costs less than adapting that design. RTCP is not sent; the receive
statistics it would carry are kept per call instead (:mod:`channels.voice.rtp_stats`).

Symmetric RTP (RFC 4961, on by default): we send to the address we receive from. The
first packet must come from the IP the SDP named; its port may differ (NAT), and the
stream latches to it. After that, packets from any other address are ignored and counted.
With ``symmetric=False`` (gateways that send from another port than they receive on) we
always send to the SDP address and accept packets from the SDP's IP only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from channels.voice.jitter_buffer import JitterBuffer
from channels.voice.rtp_stats import RtpStats
from channels.voice.telephone_events import TelephoneEventReceiver, encode_event

_HEADER = struct.Struct("!BBHII")
CLOCK_RATE = 8000
SAMPLES_PER_FRAME = 160
_DATAGRAM_MAX = 8192  # RTP stays under the path MTU; G.711 at 20 ms is 172 bytes
_DRAIN_MAX = 50  # datagrams taken per wake-up beyond the first: one second of one stream


class RtpSession(asyncio.DatagramProtocol):
    """An RTP endpoint bound to one local port."""

    def __init__(
        self,
        local_host: str,
        local_port: int,
        *,
        prefill: int = 2,
        max_frames: int = 12,
        on_dtmf: Callable[[str], None] | None = None,
        symmetric: bool = True,
        lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> None:
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop its socket is on
        self.symmetric = symmetric
        self.local_host = local_host
        self.local_port = local_port
        self.payload_type = 0
        self.dtmf_payload_type: int | None = None
        self.expected_remote: tuple[str, int] | None = None
        self.remote: tuple[str, int] | None = None  # latched send/receive address
        self.send_enabled = True
        self.receive_enabled = True
        self.on_dtmf = on_dtmf
        self.stats = RtpStats()
        self.jitter = JitterBuffer(prefill=prefill, max_frames=max_frames)
        self.leftover: npt.NDArray[np.int16] | None = None  # decoded, not yet played
        self.events = TelephoneEventReceiver()
        self.transport: asyncio.DatagramTransport | None = None
        self._sock: socket.socket | None = None  # set by the PortPool that binds it
        self._ssrc = struct.unpack("!I", os.urandom(4))[0]
        self._seq = struct.unpack("!H", os.urandom(2))[0]
        self._ts = struct.unpack("!I", os.urandom(4))[0]
        self._remote_ssrc: int | None = None
        self._epoch = time.monotonic()
        self._marker_next = True

    # --- configuration -------------------------------------------------------------

    def configure(
        self, remote: tuple[str, int], payload_type: int, dtmf_payload_type: int | None
    ) -> None:
        """Apply a negotiated SDP (initial or re-INVITE)."""
        if self.expected_remote != remote:
            self.expected_remote = remote
            self.remote = None
        self.payload_type = payload_type
        self.dtmf_payload_type = dtmf_payload_type

    # --- asyncio protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable etc.
        pass

    def _source_ok(self, addr: tuple[str, int]) -> bool:
        if self.remote is not None:
            return addr == self.remote
        exp = self.expected_remote
        if exp is None or addr[0] != exp[0]:
            return False
        if not self.symmetric:
            return True
        self.remote = addr  # latch (symmetric RTP)
        return True

    def datagram_received(self, data: bytes, addr: Any) -> None:
        with self.lock:
            self._received(data, addr)
            self._drain()

    def _drain(self) -> None:
        """Take the datagrams already queued on the socket as well. asyncio reads one
        datagram per ready socket per loop pass; when a pass of the media loop takes longer
        than a packet interval (hundreds of legs, a busy hub process holding the GIL), the
        queue grows by a packet per pass until the kernel drops them (seen at 300 bridged
        calls through the hub: a third of the callers' packets)."""
        sock = self._sock
        for _ in range(_DRAIN_MAX):
            if sock is None:
                return
            try:
                data, addr = sock.recvfrom(_DATAGRAM_MAX)
            except OSError:  # nothing more queued (EAGAIN), or an error asyncio reports
                return
            self._received(data, addr)
            sock = self._sock

    def _received(self, data: bytes, addr: Any) -> None:
        src = (addr[0], addr[1])
        if len(data) < 12 or (data[0] >> 6) != 2 or not self._source_ok(src):
            self.stats.packets_ignored += 1
            return
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        pt = b1 & 0x7F
        if 72 <= pt <= 76:  # RTCP on the RTP port (RFC 5761)
            return
        offset = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:  # header extension
            if len(data) < offset + 4:
                self.stats.packets_ignored += 1
                return
            offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
        end = len(data)
        if b0 & 0x20 and end > offset:  # padding
            end -= data[-1]
        if end < offset:
            self.stats.packets_ignored += 1
            return
        if ssrc != self._remote_ssrc:
            if self._remote_ssrc is not None:
                self.stats.restart()
                self.jitter.reset()
            self._remote_ssrc = ssrc
        arrival = int((time.monotonic() - self._epoch) * CLOCK_RATE)
        ext = self.stats.on_packet(seq, ts, arrival, len(data))
        if not self.receive_enabled:
            return
        payload = data[offset:end]
        if pt == self.dtmf_payload_type:
            for digit in self.events.on_packet(ts, bool(b1 & 0x80), payload):
                if self.on_dtmf is not None:
                    self.on_dtmf(digit)
        elif pt == self.payload_type:
            self.jitter.put(ext, payload)

    def stats_dict(self) -> dict[str, float | int]:
        """The receive statistics (RFC 3550 §6.4.1) and the playout counters, for the leg."""
        return {**self.stats.as_dict(), **self.jitter.playout_counters()}

    # --- sending --------------------------------------------------------------------

    def send_frame(self, payload: bytes) -> None:
        """Send one 20 ms frame with the negotiated payload type."""
        self._ts = (self._ts + SAMPLES_PER_FRAME) & 0xFFFFFFFF
        if not self.send_enabled:
            return
        self._send(self.payload_type, payload, self._ts, self._marker_next)
        self._marker_next = False

    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        """Send one RFC 4733 event at once (progress packets then three ends)."""
        if self.dtmf_payload_type is None:
            return
        ts = self._ts
        total = duration_ms * CLOCK_RATE // 1000
        steps = list(range(SAMPLES_PER_FRAME, total, SAMPLES_PER_FRAME))
        for i, dur in enumerate(steps):
            self._send(self.dtmf_payload_type, encode_event(digit, False, dur), ts, i == 0)
        for _ in range(3):
            self._send(self.dtmf_payload_type, encode_event(digit, True, total), ts, False)

    def _send(self, pt: int, payload: bytes, ts: int, marker: bool) -> None:
        dest = self.remote or self.expected_remote
        if (
            self._sock is None
            or self.transport is None
            or dest is None
            or dest[1] == 0
            or dest[0] == "0.0.0.0"  # noqa: S104 (comparison, not a bind)
        ):
            return
        self._seq = (self._seq + 1) & 0xFFFF
        header = _HEADER.pack(0x80, pt | (0x80 if marker else 0), self._seq, ts, self._ssrc)
        try:
            # straight to the non-blocking socket: asyncio's sendto wrapper costs a third
            # of the send path, and RTP would rather drop a packet than queue it
            self._sock.sendto(header + payload, dest)
        except (BlockingIOError, InterruptedError):
            self.stats.send_dropped += 1
            return
        except OSError:  # e.g. ICMP unreachable reported on a later send
            return
        self.stats.packets_sent += 1
        self.stats.octets_sent += 12 + len(payload)

    def close(self) -> None:
        """On the media loop; after that loop has stopped, the socket is closed directly."""
        if self.transport is not None:
            try:
                self.transport.close()
            except RuntimeError:  # its loop is closed
                if self._sock is not None:
                    self._sock.close()
            self.transport = None
        self._sock = None


class PortPool:
    """RTP ports from the configured range (even ports, RFC 3550 §11), handed out in turn.

    A port that cannot be bound (taken by another process) is skipped. Used on the media
    loop only (the endpoint goes through :meth:`MediaEngine.run` / ``submit``), so the
    sockets are that loop's and the pool needs no lock.
    """

    def __init__(self, host: str, port_min: int, port_max: int) -> None:
        self.host = host
        first = port_min + (port_min % 2)
        self._ports = list(range(first, port_max, 2))
        self._in_use: set[int] = set()
        self._next = 0

    async def open(self, factory: Callable[[int], RtpSession]) -> RtpSession:
        loop = asyncio.get_running_loop()
        for _ in range(len(self._ports)):
            port = self._ports[self._next]
            self._next = (self._next + 1) % len(self._ports)
            if port in self._in_use:
                continue
            session = factory(port)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind((self.host, port))
                await loop.create_datagram_endpoint(lambda s=session: s, sock=sock)
            except OSError:
                sock.close()
                continue
            session._sock = sock
            self._in_use.add(port)
            return session
        raise RuntimeError("no free RTP port in the configured range")

    def release(self, session: RtpSession) -> None:
        session.close()
        self._in_use.discard(session.local_port)
