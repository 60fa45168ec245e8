"""Malformed and hostile SIP: answered 4xx/5xx or dropped, and the endpoint still serves."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from channels.voice.call import Call
from tests.channels.voice.helpers import run_sipp

pytestmark = pytest.mark.sipp

SDP = (
    "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def request(
    method: str, port: int, n: int, extra: str = "", body: str = "", clen: str | None = None
) -> bytes:
    head = (
        f"{method} sip:100@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-hostile-{n}\r\n"
        f"From: <sip:evil@127.0.0.1>;tag=t{n}\r\n"
        f"To: <sip:100@127.0.0.1>\r\n"
        f"Call-ID: hostile-{n}-{os.getpid()}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Max-Forwards: 70\r\n{extra}"
    )
    length = clen if clen is not None else str(len(body.encode()))
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {length}\r\n\r\n" + body).encode()


def hostile_messages(port: int) -> list[tuple[str, bytes]]:
    full_invite = request("INVITE", port, 1, body=SDP)
    return [
        ("garbage bytes", os.urandom(400)),
        ("binary with a SIP-looking start", b"INVITE \x00\xff\xfe sip:x SIP/2.0\r\n\r\n"),
        ("truncated in the headers", full_invite[:150]),
        ("truncated in the body", full_invite[:-40]),
        ("Content-Length larger than the body", request("INVITE", port, 2, body=SDP, clen="900")),
        ("negative Content-Length", request("OPTIONS", port, 3, clen="-5")),
        ("huge header", request("INVITE", port, 4, extra="X-Junk: " + "A" * 20000 + "\r\n")),
        ("huge datagram", request("OPTIONS", port, 5, extra=("X-Pad: " + "B" * 900 + "\r\n") * 60)),
        ("too many headers", request("OPTIONS", port, 6, extra="X-H: 1\r\n" * 400)),
        ("unknown method", request("FROBNICATE", port, 7)),
        ("lower-case method", request("invite", port, 8, body=SDP)),
        ("bad CSeq", request("OPTIONS", port, 9).replace(b"CSeq: 1 OPTIONS", b"CSeq: x y z")),
        ("no Call-ID", request("INVITE", port, 10, body=SDP).replace(b"Call-ID", b"X-Nope")),
        ("header line without colon", request("OPTIONS", port, 11, extra="NoColonHere\r\n")),
        ("garbage SDP", request("INVITE", port, 12, body="v=0\r\nm=audio banana\r\n")),
        (
            "SDP without a common codec",
            request("INVITE", port, 13, body=SDP.replace(" 0\r", " 18\r")),
        ),
        ("BYE outside any dialog", request("BYE", port, 14)),
        (
            "INVITE with a To tag for no dialog",
            request("INVITE", port, 17, body=SDP).replace(
                b"To: <sip:100@127.0.0.1>", b"To: <sip:100@127.0.0.1>;tag=forged"
            ),
        ),
        ("mangled response", b"SIP/2.0 abc OK\r\nVia: x\r\n\r\n"),
        ("only CRLF (keepalive)", b"\r\n\r\n"),
        ("empty datagram", b""),
        ("NUL in a header", request("OPTIONS", port, 15, extra="X-Nul: a\x00b\r\n")),
        ("bad Via", request("OPTIONS", port, 16).replace(b"Via: SIP/2.0/UDP", b"Via: ???")),
    ]


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies.append(data)


async def test_hostile_messages_are_refused_and_calls_still_work(
    sipp: str, make_endpoint, tmp_path: Path
) -> None:
    answered: list[Call] = []

    async def on_call(call: Call) -> None:
        answered.append(call)
        await call.ring()  # the final SIPp check cancels while ringing

    endpoint = await make_endpoint(on_call)
    loop = asyncio.get_running_loop()
    outcomes: dict[str, list[int]] = {}
    for name, data in hostile_messages(endpoint.port):
        collector = Collector()
        transport, _ = await loop.create_datagram_endpoint(
            lambda c=collector: c, local_addr=("127.0.0.1", 0)
        )
        # the Via names the endpoint's own port, so answers go back by rport/source
        transport.sendto(data, ("127.0.0.1", endpoint.port))
        await asyncio.sleep(0.15)
        transport.close()
        outcomes[name] = [  # final responses only (a 100 Trying may come first)
            int(r.split(b" ", 2)[1])
            for r in collector.replies
            if r.startswith(b"SIP/2.0 ") and not r.startswith(b"SIP/2.0 1")
        ]

    for name, statuses in outcomes.items():
        assert all(400 <= s < 600 for s in statuses), (name, statuses)
    assert outcomes["Content-Length larger than the body"] == [400]
    assert outcomes["huge header"] == [400]
    assert outcomes["no Call-ID"] in ([400], [])
    assert outcomes["garbage SDP"] == [488]
    assert outcomes["SDP without a common codec"] == [488]
    assert outcomes["BYE outside any dialog"] == [481]
    assert outcomes["INVITE with a To tag for no dialog"] == [481]
    assert outcomes["unknown method"] in ([405], [501])
    assert outcomes["garbage bytes"] == []
    assert answered == []  # nothing hostile became a call

    # still serving: a real caller gets through (rings, then cancels)
    run = await run_sipp("caller_cancel.xml", endpoint.port, tmp_path / "sipp")
    assert run.returncode == 0, run.errors()
    assert len(answered) == 1


async def test_hostile_bytes_over_tcp_do_not_stop_the_connection_or_the_endpoint(
    make_endpoint,
) -> None:
    endpoint = await make_endpoint(transports=("udp", "tcp"))
    port = endpoint.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x00\xffgarbage that is not SIP\r\n\r\n")
    writer.write(request("OPTIONS", port, 20, clen="-3"))  # bad Content-Length: 400
    writer.write(request("OPTIONS", port, 21))  # a good one on the same connection: 200
    await writer.drain()
    statuses = []
    for _ in range(2):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        statuses.append(int(head.split(b" ", 2)[1]))
    assert statuses == [400, 200]
    # a header section beyond 64 KiB: the connection is dropped, the endpoint lives on
    writer.write(b"OPTIONS sip:x SIP/2.0\r\n" + b"X-Flood: " + b"A" * 70000 + b"\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 3) == b""
    writer.close()
    r2, w2 = await asyncio.open_connection("127.0.0.1", port)
    w2.write(request("OPTIONS", port, 22))
    await w2.drain()
    head = await asyncio.wait_for(r2.readuntil(b"\r\n\r\n"), 3)
    assert head.startswith(b"SIP/2.0 200")
    w2.close()
