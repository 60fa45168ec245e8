"""Test helpers for the voice channel: SIPp as the SIP peer, a UDP tap as its media side.

SIPp does the signalling from scenarios in ``scenarios/``; the :class:`RtpTap` plays the
media endpoint whose address the scenario puts in its SDP (``-key tap_port``), so a test
can hear exactly what a party received and send it tones.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from speech.g711 import alaw_decode, ulaw_decode, ulaw_encode
from tests.ports import free_port, media_ports

SCENARIOS = Path(__file__).parent / "scenarios"
PCAPS = Path("/usr/share/sip-tester")


@dataclass
class SippRun:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path

    def errors(self) -> str:
        logs = sorted(self.workdir.glob("*errors.log"))
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in logs)


async def run_sipp(
    scenario: str,
    target_port: int | None,
    workdir: Path,
    *,
    keys: dict[str, str | int] | None = None,
    extra: list[str] | None = None,
    local_port: int | None = None,
    timeout: float = 40.0,
    calls: int = 1,
    local_ip: str = "127.0.0.1",
) -> SippRun:
    """Run SIPp with one of our scenarios (or ``sn:NAME`` for a built-in one)."""
    workdir.mkdir(parents=True, exist_ok=True)
    pcap = workdir / "pcap"
    if not pcap.exists():
        pcap.symlink_to(PCAPS)
    args = ["sipp"]
    if scenario.startswith("sn:"):
        args += ["-sn", scenario[3:]]
    else:
        args += ["-sf", str(SCENARIOS / scenario)]
    if target_port is not None:
        args.append(f"127.0.0.1:{target_port}")
    args += [
        "-i",
        local_ip,
        "-p",
        str(local_port or free_port()),
        "-mp",
        str(media_ports()),
        "-m",
        str(calls),
        "-nostdin",
        "-trace_err",
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
    ]
    for name, value in (keys or {}).items():
        args += ["-key", name, str(value)]
    args += extra or []
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout + 10)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    return SippRun(
        proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"), workdir
    )


async def start_sipp(
    scenario: str,
    workdir: Path,
    *,
    keys: dict[str, str | int],
    local_port: int,
    timeout: float = 40.0,
    calls: int = 1,
    target_port: int | None = None,
) -> asyncio.Task[SippRun]:
    """SIPp in the background (a UAS phone waiting for our INVITE)."""
    task = asyncio.ensure_future(
        run_sipp(
            scenario,
            target_port,
            workdir,
            keys=keys,
            local_port=local_port,
            timeout=timeout,
            calls=calls,
        )
    )
    await udp_bound(local_port, task)
    return task


def _udp_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                ports.add(int(line.split()[1].rsplit(":", 1)[1], 16))
    return ports


async def udp_bound(port: int, sipp: asyncio.Future[SippRun], within: float = 10.0) -> None:
    """Wait until SIPp listens: a request sent before that is lost (a fixed sleep was too
    short on a loaded machine, and the first REGISTER went nowhere)."""
    deadline = asyncio.get_running_loop().time() + within
    while port not in _udp_ports():
        if sipp.done():
            sipp.result()  # SIPp failed to start: raise its error
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"SIPp did not bind UDP port {port} within {within} s")
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- media tap


@dataclass
class Received:
    at: float
    source: tuple[str, int]
    payload_type: int
    seq: int
    timestamp: int
    payload: bytes


@dataclass
class RtpTap(asyncio.DatagramProtocol):
    """A UDP socket that records every RTP packet and can stream a tone back."""

    packets: list[Received] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    port: int = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12:
            return
        _, b1, seq, ts = struct.unpack_from("!BBHI", data)
        self.packets.append(Received(time.monotonic(), addr, b1 & 0x7F, seq, ts, data[12:]))

    def audio(self, since: float = 0.0, until: float = float("inf")) -> npt.NDArray[np.int16]:
        """Decoded G.711 audio received in [since, until) (monotonic clock)."""
        chunks = []
        for p in self.packets:
            if since <= p.at < until and p.payload_type in (0, 8):
                decode = ulaw_decode if p.payload_type == 0 else alaw_decode
                chunks.append(decode(p.payload))
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def stream_tone(
        self, dest: tuple[str, int], freq: float, seconds: float, level: float = 0.3
    ) -> None:
        """Send a PCMU tone as 20 ms RTP packets from this socket (symmetric RTP)."""
        t = np.arange(int(seconds / 0.02) * 160) / 8000
        await self.stream_pcm(dest, (np.sin(2 * np.pi * freq * t) * level * 32767).astype(np.int16))

    async def stream_pcm(self, dest: tuple[str, int], pcm: npt.NDArray[np.int16]) -> None:
        """Send 8 kHz PCM as PCMU RTP, one packet per 20 ms, in real time."""
        ssrc = int.from_bytes(os.urandom(4), "big")
        pcm = np.concatenate([pcm, np.zeros((-pcm.shape[0]) % 160, dtype=np.int16)])
        start = time.monotonic()
        for i in range(pcm.shape[0] // 160):
            header = struct.pack("!BBHII", 0x80, 0, i & 0xFFFF, (i * 160) & 0xFFFFFFFF, ssrc)
            if self.transport is None:
                return
            self.transport.sendto(header + ulaw_encode(pcm[i * 160 : (i + 1) * 160]), dest)
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))


async def open_tap(host: str = "127.0.0.1") -> RtpTap:
    loop = asyncio.get_running_loop()
    tap = RtpTap()
    await loop.create_datagram_endpoint(lambda: tap, local_addr=(host, 0))
    assert tap.transport is not None
    tap.port = tap.transport.get_extra_info("sockname")[1]
    return tap


def level_at(pcm: npt.NDArray[np.int16], freq: float, rate: int = 8000) -> float:
    """Amplitude of ``freq`` in ``pcm`` (a single-bin DFT), on the int16 scale."""
    if pcm.shape[0] == 0:
        return 0.0
    x = pcm.astype(np.float64)
    t = np.arange(x.shape[0]) / rate
    c = np.abs(np.dot(x, np.exp(-2j * np.pi * freq * t)))
    return float(2 * c / x.shape[0])


def rms(pcm: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.shape[0] else 0.0
