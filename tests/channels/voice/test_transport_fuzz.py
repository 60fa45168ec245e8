"""Mutated SIP fed straight into the guarded transport (sans network, like h11's tests):
whatever the bytes, the transport never hits an internal error, never answers without a
Via to answer to, and every answer is a 4xx/5xx or the endpoint's own."""

from __future__ import annotations

import asyncio
import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.voice.transports import GuardedTcpTransport, GuardedUdpTransport

SEED = (
    b"INVITE sip:100@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fuzz;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Caller" <sip:+15551230009@127.0.0.1>;tag=f1\r\n'
    b"To: <sip:100@127.0.0.1>\r\n"
    b"Call-ID: fuzz@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:caller@127.0.0.1:5070>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 30\r\n\r\n"
    b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n\r\n"
)
RESPONSE_SEED = (
    b"SIP/2.0 486 Busy Here\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ours\r\n"
    b"From: <sip:hub@127.0.0.1>;tag=a\r\nTo: <sip:200@127.0.0.1>;tag=b\r\n"
    b"Call-ID: out@127.0.0.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)
TOKENS = [
    b"\r\n",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"<",
    b">",
    b'"',
    b"\\",
    b"\x00",
    b"\n",
    b"\r",
    b"Via: ",
    b"v: ",
    b"l: 99",
    b"CSeq: 9 BYE",
    b"SIP/2.0",
    b"\r\n ",
    b"%00",
    b"\xff\xfe",
    b"9" * 30,
    b"z9hG4bK",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([SEED, RESPONSE_SEED])))
    lines = bytes(data).split(b"\r\n")
    for _ in range(draw(st.integers(0, 2))):  # drop whole header lines
        del lines[draw(st.integers(1, len(lines) - 3))]
    data = bytearray(b"\r\n".join(lines))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data)))
        cut = draw(st.integers(0, 12))
        insert = draw(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=8)))
        data[at : at + cut] = insert
    return bytes(data)


def _drive(transport_cls: type, messages: list[bytes]) -> tuple[list[bytes], list[object]]:
    async def run() -> tuple[list[bytes], list[object]]:
        t = transport_cls(("127.0.0.1", 0))
        sent: list[bytes] = []
        passed: list[object] = []
        t._send_raw = lambda data, addr: sent.append(data)
        t._send_message = lambda msg, addr: sent.append(bytes(msg))
        t.on_message = lambda msg, addr: passed.append(msg)
        for data in messages:
            t._guarded_dispatch(data, ("127.0.0.1", 5070))
        t._stop_timers()
        return sent, passed

    return asyncio.run(run())


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(messages=st.lists(mutated(), min_size=1, max_size=3), tcp=st.booleans())
def test_mutated_messages_never_cause_an_internal_error(
    messages: list[bytes], tcp: bool, caplog
) -> None:
    caplog.set_level(logging.ERROR, logger="channels.voice.transports")
    caplog.clear()
    sent, passed = _drive(GuardedTcpTransport if tcp else GuardedUdpTransport, messages)
    assert [r.getMessage() for r in caplog.records] == []
    for reply in sent:
        if reply.startswith(b"SIP/2.0 "):
            status = int(reply.split(b" ", 2)[1])
            assert 400 <= status < 600, reply[:80]
            assert b"\r\nVia: " in reply  # only ever sent where a Via says
        else:
            assert reply.startswith(b"ACK "), reply[:80]  # our ACK to a non-2xx
    for msg in passed:  # what reaches the endpoint has the core headers parsed cleanly
        assert msg.headers.get("via")
