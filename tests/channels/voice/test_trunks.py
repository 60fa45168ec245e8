"""SIP trunk: outbound registration with digest auth and refresh; outbound calls (UAC)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from channels.voice.call import CallState
from channels.voice.playback import tone
from channels.voice.telephone_events import TelephoneEventReceiver
from tests.channels.voice.helpers import free_port, level_at, open_tap, start_sipp

pytestmark = pytest.mark.sipp

TRUNK = {
    "trunk_username": "trunkuser",
    "trunk_password": "trunkpass",
    "trunk_domain": "provider.test",
    "trunk_register_expires": 60,
}


async def test_trunk_registration_with_digest_and_refresh(
    sipp: str, make_endpoint, tmp_path: Path
) -> None:
    port = free_port()
    provider = await start_sipp(
        "provider_registrar.xml", tmp_path / "prov", keys={}, local_port=port, timeout=20
    )
    endpoint = await make_endpoint(trunk_host="127.0.0.1", trunk_port=port, **TRUNK)
    registration = await endpoint.register_trunk(timeout=10)
    assert registration.granted_expires == 2  # what the provider granted
    # aiosipua refreshes at 90 % of the grant; the provider challenges again
    for _ in range(100):
        if endpoint.counters["trunk_registered"] >= 2:
            break
        await asyncio.sleep(0.1)
    assert endpoint.counters["trunk_registered"] >= 2
    run = await provider
    assert run.returncode == 0, run.errors()  # SIPp verified both digest answers


async def test_outbound_call_through_trunk(sipp: str, make_endpoint, tmp_path: Path) -> None:
    port = free_port()
    tap = await open_tap()
    provider = await start_sipp(
        "provider_uas.xml",
        tmp_path / "prov",
        keys={"tap_port": tap.port},
        local_port=port,
        timeout=20,
    )
    endpoint = await make_endpoint(trunk_host="127.0.0.1", trunk_port=port, **TRUNK)
    call = await endpoint.dial_trunk("15550001111", timeout=10)
    assert call.state is CallState.ANSWERED and call.direction == "outbound"
    assert call.media is not None and call.media.codec_name == "PCMA"
    await call.play(tone((700.0,), 0.8))
    await call.send_dtmf("12#")  # RFC 4733 events to the far end (e.g. an extension)
    await call.hangup()
    run = await provider
    tap.close()
    assert run.returncode == 0, run.errors()  # digest verified, BYE received
    heard = tap.audio()
    assert {p.payload_type for p in tap.packets} == {8, 101}
    receiver = TelephoneEventReceiver()
    events = [p for p in tap.packets if p.payload_type == 101]
    digits = [receiver.on_packet(p.timestamp, False, p.payload) for p in events]
    assert "".join(d for d in digits if d) == "12#"
    assert level_at(heard, 700.0) > 3000


async def test_options_keepalive_tracks_the_trunk(sipp: str, make_endpoint, tmp_path: Path) -> None:
    port = free_port()
    provider = await start_sipp(
        "provider_options.xml", tmp_path / "prov", keys={}, local_port=port, calls=2, timeout=15
    )
    endpoint = await make_endpoint(trunk_host="127.0.0.1", trunk_port=port)
    endpoint.start_trunk_keepalive(interval=0.3)
    run = await provider  # SIPp exits after answering two OPTIONS
    assert run.returncode == 0, run.errors()
    assert endpoint.trunk_alive is True and endpoint.counters["trunk_pings"] >= 2
    # the provider is gone: the next keepalive goes unanswered
    assert await endpoint.ping(("127.0.0.1", port), timeout=0.5) is None


class _DeafOnce(asyncio.DatagramProtocol):
    """A SIP peer on a lossy path: it never sees the first request, answers the next."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests.append(data)
        if len(self.requests) == 1 or self.transport is None:
            return  # "lost"
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        keep = [
            h
            for h in head[1:]
            if h.split(b":", 1)[0].lower() in (b"via", b"from", b"to", b"call-id", b"cseq")
        ]
        reply = b"SIP/2.0 200 OK\r\n" + b"\r\n".join(keep) + b"\r\nContent-Length: 0\r\n\r\n"
        self.transport.sendto(reply, addr)


async def test_requests_are_retransmitted_over_udp_until_answered(make_endpoint) -> None:
    """RFC 3261 §17.1.2.2 (Timer E): a lost OPTIONS is sent again after T1 = 500 ms."""
    loop = asyncio.get_running_loop()
    peer = _DeafOnce()
    transport, _ = await loop.create_datagram_endpoint(lambda: peer, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    endpoint = await make_endpoint()
    try:
        assert await endpoint.ping(("127.0.0.1", port), timeout=3.0) == 200
    finally:
        transport.close()
    assert len(peer.requests) == 2
    assert peer.requests[0] == peer.requests[1]  # the same transaction (same branch)
