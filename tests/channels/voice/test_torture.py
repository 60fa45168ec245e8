"""Hostile and malformed SIP sent as raw bytes over real sockets to a real SipEndpoint.

The messages are modelled on the RFC 4475 torture tests (written here, not copied) and on
RFC 3261's transaction rules. Each test asserts the answer a peer would see on the wire,
and that calls still work afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from channels.voice.call import Call, CallState, Collected
from channels.voice.playback import tone
from channels.voice.sip_endpoint import CallFailed, SipEndpoint
from tests.channels.voice.helpers import level_at, open_tap, run_sipp

pytestmark = pytest.mark.sipp

_n = itertools.count(1)


def sdp(port: int = 40000, addr: str = "127.0.0.1", media: str | None = None) -> str:
    m = media if media is not None else f"m=audio {port} RTP/AVP 0 101"
    return (
        f"v=0\r\no=x 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n{m}\r\n"
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )


@dataclass
class Msg:
    """One SIP message as a peer received it."""

    raw: bytes

    @property
    def head(self) -> str:
        return self.raw.split(b"\r\n\r\n", 1)[0].decode(errors="replace")

    @property
    def start(self) -> str:
        return self.head.split("\r\n", 1)[0]

    @property
    def status(self) -> int | None:
        m = re.match(r"SIP/2\.0 (\d{3}) ", self.start)
        return int(m.group(1)) if m else None

    @property
    def method(self) -> str | None:
        return None if self.start.startswith("SIP/") else self.start.split(" ", 1)[0]

    def header(self, name: str) -> list[str]:
        return [
            line.split(":", 1)[1].strip()
            for line in self.head.split("\r\n")[1:]
            if line.split(":", 1)[0].strip().lower() == name.lower()
        ]

    @property
    def body(self) -> str:
        return self.raw.split(b"\r\n\r\n", 1)[1].decode(errors="replace")

    @property
    def to_tag(self) -> str:
        m = re.search(r";\s*tag=([^;>\s]+)", self.header("To")[0])
        return m.group(1) if m else ""


class Peer:
    """A raw SIP peer on one UDP socket or one TCP connection."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.inbox: asyncio.Queue[Msg] = asyncio.Queue()
        self.local = 0
        self.proto = "UDP"
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.pongs = 0

    @classmethod
    async def udp(cls, port: int, host: str = "127.0.0.1") -> Peer:
        peer = cls(port)
        loop = asyncio.get_running_loop()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                peer.inbox.put_nowait(Msg(data))

        transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=(host, 0))
        peer._udp = transport
        peer.local = transport.get_extra_info("sockname")[1]
        return peer

    @classmethod
    async def tcp(cls, port: int) -> Peer:
        peer = cls(port)
        peer.proto = "TCP"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer._writer = writer
        peer.local = writer.get_extra_info("sockname")[1]

        async def read() -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    while head.startswith(b"\r\n"):  # a keepalive pong (RFC 5626 §3.5.1)
                        peer.pongs += 1
                        head = head[2:]
                    m = re.search(rb"\r\ncontent-length\s*:\s*(\d+)", head, re.I)
                    body = await reader.readexactly(int(m.group(1))) if m else b""
                    peer.inbox.put_nowait(Msg(head + body))
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                peer.closed.set()

        peer._reader_task = asyncio.ensure_future(read())
        return peer

    def send(self, data: bytes) -> None:
        if self._udp is not None:
            self._udp.sendto(data, ("127.0.0.1", self.target))
        else:
            assert self._writer is not None
            self._writer.write(data)

    async def recv(self, timeout: float = 3.0) -> Msg:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def final(self, timeout: float = 3.0) -> Msg:
        """The next final response (provisionals and requests are skipped)."""
        while True:
            msg = await self.recv(timeout)
            if msg.status is not None and msg.status >= 200:
                return msg

    async def request(self, method: str, timeout: float = 3.0) -> Msg:
        while True:
            msg = await self.recv(timeout)
            if msg.method == method:
                return msg

    async def quiet(self, seconds: float = 0.4) -> list[Msg]:
        """Everything that arrives within ``seconds`` (to show that nothing more came)."""
        await asyncio.sleep(seconds)
        out = []
        while not self.inbox.empty():
            out.append(self.inbox.get_nowait())
        return out

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()


@dataclass
class Dialog:
    """The identifiers one test call uses, and the request builder."""

    peer: Peer
    call_id: str = ""
    from_tag: str = ""
    to_tag: str = ""
    user: str = "100"

    def __post_init__(self) -> None:
        n = next(_n)
        self.call_id = self.call_id or f"torture-{n}@127.0.0.1"
        self.from_tag = self.from_tag or f"ft{n}"

    def build(
        self,
        method: str,
        cseq: int = 1,
        *,
        branch: str | None = None,
        body: str = "",
        ctype: str = "application/sdp",
        extra: str = "",
        uri: str | None = None,
        version: str = "SIP/2.0",
        cseq_method: str | None = None,
        rport: bool = True,
        via_port: int | None = None,
    ) -> bytes:
        peer = self.peer
        target = uri or f"sip:{self.user}@127.0.0.1:{peer.target}"
        branch = branch or f"z9hG4bK-t{next(_n)}"
        to = f"<sip:{self.user}@127.0.0.1>" + (f";tag={self.to_tag}" if self.to_tag else "")
        via_port = via_port or peer.local
        head = (
            f"{method} {target} {version}\r\n"
            f"Via: SIP/2.0/{peer.proto} 127.0.0.1:{via_port};branch={branch}"
            f"{';rport' if rport else ''}\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:+15551230009@127.0.0.1>;tag={self.from_tag}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {cseq} {cseq_method or method}\r\n"
            f"Contact: <sip:caller@127.0.0.1:{peer.local};transport={peer.proto.lower()}>\r\n"
            f"{extra}"
        )
        if body:
            head += f"Content-Type: {ctype}\r\n"
        return (head + f"Content-Length: {len(body.encode())}\r\n\r\n" + body).encode()

    async def invite(self, body: str = "", **kw: object) -> tuple[Msg, bytes]:
        """INVITE until the final response; the To tag is kept for the dialog."""
        data = self.build("INVITE", body=body, **kw)  # type: ignore[arg-type]
        self.peer.send(data)
        final = await self.peer.final()
        self.to_tag = final.to_tag
        return final, data

    def ack(self, branch: str | None = None, body: str = "", cseq: int = 1) -> None:
        self.peer.send(self.build("ACK", cseq, branch=branch, body=body))


def branch_of(data: bytes) -> str:
    m = re.search(rb"branch=([^;\r\n]+)", data)
    assert m is not None
    return m.group(1).decode()


async def answering(endpoint_calls: list[Call], call: Call) -> None:
    endpoint_calls.append(call)
    await call.answer()


# --------------------------------------------------------------------- RFC 4475 §3.1.2


async def _one(endpoint: SipEndpoint, data: bytes) -> Msg:
    peer = await Peer.udp(endpoint.port)
    try:
        peer.send(data)
        return await peer.final()
    finally:
        peer.close()


def _torture(port: int, local: int, proto: str = "UDP") -> dict[str, tuple[bytes, set[int]]]:
    """name → (message, the statuses RFC 3261/4475 allow). ``local`` is the sender's port."""
    peer = Peer(port)
    peer.local = local
    peer.proto = proto
    d = lambda: Dialog(peer)  # noqa: E731
    many_vias = "".join(
        f"Via: SIP/2.0/UDP 192.0.2.{i % 250 + 1}:5060;branch=z9hG4bK-proxy{i}\r\n"
        for i in range(300)
    )
    folded = (
        d()
        .build("OPTIONS")
        .replace(
            b"To: <sip:100@127.0.0.1>", b"To:\r\n <sip:100@127.0.0.1>\r\n\t;\r\n  x-folded = yes"
        )
        .replace(b"CSeq: 1 OPTIONS", b"CSeq: 0001\r\n  OPTIONS")
        .replace(b"Call-ID: ", b"Call-ID\r\n : ")
    )
    long_via = d().build("OPTIONS")  # we are the last hop: ours is the top Via
    top_via_end = long_via.index(b"\r\n", long_via.index(b"Via:")) + 2
    long_via = long_via[:top_via_end] + many_vias.encode() + long_via[top_via_end:]
    return {
        # §3.1.2.16 badvers: an unknown protocol version
        "badvers": (d().build("OPTIONS", version="SIP/7.0"), {505}),
        "badvers INVITE": (d().build("INVITE", body=sdp(), version="SIP/7.0"), {505}),
        # §3.1.2.17 mismatch01: CSeq method differs from the request's
        "mismatch01": (d().build("OPTIONS", cseq_method="INVITE"), {400}),
        "mismatch01 INVITE": (d().build("INVITE", body=sdp(), cseq_method="OPTIONS"), {400}),
        # §3.1.2.18 mismatch02: an unknown method and a mismatched CSeq
        "mismatch02": (d().build("NEWMETHOD", cseq_method="INVITE"), {400, 501}),
        # §3.3.2 unkscm and §3.3.3 novelsc: schemes we do not serve
        "unkscm": (d().build("OPTIONS", uri="nobodyKnowsThisScheme:totallyopaquecontent"), {416}),
        "novelsc": (d().build("OPTIONS", uri="soap.beep://192.0.2.103:3002"), {416}),
        "unkscm INVITE": (d().build("INVITE", body=sdp(), uri="isbn:2983792873"), {416}),
        "tel Request-URI (RFC 3966) is served": (
            d().build("INVITE", body=sdp(), uri="tel:+18005550100"),
            {200},
        ),
        # §3.1.2.7 ltgtruri and §3.1.2.8 lwsruri: a malformed Request-URI
        "ltgtruri": (d().build("OPTIONS", uri="<sip:100@127.0.0.1>"), {400}),
        "lwsruri": (d().build("OPTIONS", uri="sip:100@127.0.0.1; lr"), {400}),
        # §3.3.5 bext01: a Require we do not support
        "bext01": (
            d().build("OPTIONS", extra="Require: nothingSupportedHere, alsoNotThis\r\n"),
            {420},
        ),
        "bext01 INVITE": (d().build("INVITE", body=sdp(), extra="Require: 100rel\r\n"), {420}),
        # §3.3.8 multi01, §3.3.9 mcl01: two values in single-value fields
        "multi01": (
            d()
            .build("OPTIONS")
            .replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nCall-ID: other@x\r\n"),
            {400},
        ),
        "mcl01": (
            d().build("OPTIONS").replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 0"),
            {400},
        ),
        # §3.1.2.4 scalar02: scalar fields with overlarge values
        "scalar02 CSeq": (d().build("OPTIONS", cseq=36893488147419103232), {400}),
        "scalar02 Max-Forwards": (
            d().build("OPTIONS").replace(b"Max-Forwards: 70", b"Max-Forwards: 300"),
            {400},
        ),
        # §3.3.6 invut: a body type we cannot read
        "invut": (d().build("INVITE", body="<a>b</a>", ctype="application/unknownformat"), {415}),
        # SDP that cannot be used: 488 (RFC 3264 §6) or 400, never 200
        "sdp garbage": (d().build("INVITE", body="v=0\r\nm=audio banana\r\n"), {400, 488}),
        "sdp port 70000": (d().build("INVITE", body=sdp(port=70000)), {400, 488}),
        "sdp negative port": (
            d().build("INVITE", body=sdp(media="m=audio -5 RTP/AVP 0")),
            {400, 488},
        ),
        "sdp address 999.1.1.1": (d().build("INVITE", body=sdp(addr="999.1.1.1")), {400, 488}),
        "sdp hostname": (d().build("INVITE", body=sdp(addr="media.invalid")), {400, 488}),
        "sdp multicast": (d().build("INVITE", body=sdp(addr="224.2.1.1/127")), {400, 488}),
        "sdp broadcast": (d().build("INVITE", body=sdp(addr="255.255.255.255")), {400, 488}),
        "sdp srtp only": (
            d().build("INVITE", body=sdp(media="m=audio 40000 RTP/SAVP 0")),
            {400, 488},
        ),
        # valid but unusual: answered normally
        "zeromf (RFC 4475 §3.3.11)": (
            d().build("OPTIONS").replace(b"Max-Forwards: 70", b"Max-Forwards: 0"),
            {200},
        ),
        "folded headers (RFC 3261 §7.3.1)": (folded, {200}),
        "300 Via headers": (long_via, {200}),
        # §3.2.1 badbranch: the magic cookie and nothing after it (RFC 2543 matching)
        "badbranch": (d().build("OPTIONS", branch="z9hG4bK"), {200}),
        "branch without the magic cookie (RFC 2543)": (
            d().build("OPTIONS", branch="390skdjuw"),
            {200},
        ),
        # §3.4.1 inv2543: an RFC 2543 INVITE, no branch and no From tag
        "inv2543": (
            re.sub(rb";branch=[^;\r]+", b"", d().build("INVITE", body=sdp())).replace(
                b";tag=ft", b";x=ft"
            ),
            {200},
        ),
        # a bare LF hiding a second Via inside a header value (RFC 3261 §7: lines end
        # in CRLF): refused, and the answer goes to the real sender
        "bare LF smuggling a Via": (
            d().build(
                "OPTIONS", extra="X-A: a\nVia: SIP/2.0/UDP 192.0.2.66:5060;branch=z9hG4bK-x\r\n"
            ),
            {400},
        ),
        "unknown method (RFC 3261 §21.5.2)": (d().build("FROBNICATE"), {501}),
        "known method we do not serve (RFC 3261 §8.2.1)": (d().build("SUBSCRIBE"), {405}),
    }


TORTURE_NAMES = list(_torture(5060, 5060))


@pytest.mark.parametrize("name", TORTURE_NAMES)
async def test_torture_message_gets_the_prescribed_answer(make_endpoint, name: str) -> None:
    calls: list[Call] = []
    endpoint = await make_endpoint(lambda c: answering(calls, c))
    peer = await Peer.udp(endpoint.port)
    data, allowed = _torture(endpoint.port, peer.local)[name]
    peer.send(data)
    final = await peer.final()
    peer.close()
    assert final.status in allowed, final.head
    if final.status and final.status >= 300:
        assert calls == []  # nothing refused became a call
    if name.startswith("bext01"):
        unsupported = {v.strip() for h in final.header("Unsupported") for v in h.split(",")}
        assert unsupported == (
            {"nothingSupportedHere", "alsoNotThis"} if name == "bext01" else {"100rel"}
        )
    if name == "300 Via headers":  # every Via is returned, in order (RFC 3261 §8.2.6.2)
        vias = [v for h in final.header("Via") for v in h.split(",")]
        assert len(vias) == 301 and "proxy299" in vias[-1]
    if name.startswith("known method"):
        assert "INVITE" in final.header("Allow")[0]
    if name == "invut":
        assert final.header("Accept") == ["application/sdp"]


async def test_register_with_an_unknown_authorization_scheme_is_challenged(
    make_endpoint,
) -> None:
    """RFC 4475 §3.3.7 (regaut01): a registrar that authenticates answers 401 with a
    challenge in a scheme it knows."""
    endpoint = await make_endpoint(agent_credentials={"1001": "secret"})
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer, user="1001")
    peer.send(
        dialog.build(
            "REGISTER",
            uri="sip:127.0.0.1",
            extra="Authorization: NoOneKnowsThisScheme opaque-data=here\r\nExpires: 600\r\n",
        )
    )
    final = await peer.final()
    assert final.status == 401
    assert final.header("WWW-Authenticate")[0].startswith("Digest ")
    assert endpoint.registrar.lookup("1001") is None
    peer.close()


async def test_folded_invite_becomes_a_call_with_its_parsed_headers(make_endpoint) -> None:
    """RFC 4475 §3.1.1.1 (wsinv) in spirit: folding and LWS everywhere, still a call."""
    calls: list[Call] = []
    endpoint = await make_endpoint(lambda c: answering(calls, c))
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer)
    body = sdp()
    data = (
        f"INVITE sip:18005550100@127.0.0.1:{endpoint.port} SIP/2.0\r\n"
        f"Via  : SIP  /   2.0\r\n /UDP\r\n    127.0.0.1:{peer.local};rport;branch=z9hG4bK-wsinv\r\n"
        f"TO :\r\n <sip:18005550100@127.0.0.1>\r\n"
        f'from   : "J Rosenberg \\"" <sip:+15551230007@127.0.0.1>\r\n  ;\r\n'
        f"  tag = {dialog.from_tag}\r\n"
        f"MaX-fOrWaRdS: 0068\r\n"
        f"Call-ID\r\n : {dialog.call_id}\r\n"
        f"cseq: 0009\r\n  INVITE\r\n"
        f"NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n"
        f"UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"
        f"Content-Type: application/sdp\r\n"
        f"m:<sip:caller@127.0.0.1:{peer.local}> ; newparam =\r\n"
        f"      newvalue ;\r\n  secondparam\r\n"
        f"l: {len(body)}\r\n\r\n{body}"
    ).encode()
    peer.send(data)
    final = await peer.final()
    assert final.status == 200, final.head
    assert "m=audio" in final.body
    assert len(calls) == 1
    call = calls[0]
    assert call.caller_number == "+15551230007"
    assert call.called_number == "18005550100"
    assert call.sip_headers["NewFangledHeader"] == "newfangled value continued newfangled value"
    dialog.to_tag = final.to_tag
    dialog.ack()
    peer.send(dialog.build("BYE", 10))
    assert (await peer.final()).status == 200
    await asyncio.wait_for(call.ended.wait(), 3)
    assert call.end_reason == "remote hangup"
    peer.close()


# ------------------------------------------------------------------- late offer (RFC 3264)


async def test_late_offer_gets_our_offer_in_the_200_and_the_answer_from_the_ack(
    make_endpoint,
) -> None:
    """RFC 3261 §13.2.1 / RFC 3264 §5: an INVITE without SDP; we offer, the ACK answers."""
    tap = await open_tap()
    calls: list[Call] = []
    played = asyncio.Event()

    async def on_call(call: Call) -> None:
        calls.append(call)
        await call.answer()
        await call.play(tone((1000.0,), 0.6), interrupt_on_dtmf=False)
        played.set()

    endpoint = await make_endpoint(on_call)
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer)
    final, _ = await dialog.invite()  # no body
    assert final.status == 200, final.head
    assert final.header("Content-Type") == ["application/sdp"]
    offer = final.body
    assert re.search(r"m=audio \d+ RTP/AVP 0 8 101", offer), offer
    dialog.ack(body=sdp(port=tap.port))
    await asyncio.wait_for(played.wait(), 5)
    call = calls[0]
    assert call.media is not None and call.media.remote_addr == ("127.0.0.1", tap.port)
    assert level_at(tap.audio(), 1000.0) > 3000  # the caller heard the prompt
    peer.send(dialog.build("BYE", 2))
    assert (await peer.final()).status == 200
    tap.close()
    peer.close()


async def test_late_offer_without_an_answer_in_the_ack_is_hung_up(make_endpoint) -> None:
    """An ACK without the answer leaves no session (RFC 3264 §5): we end it with BYE."""
    calls: list[Call] = []
    endpoint = await make_endpoint(lambda c: answering(calls, c))
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer)
    final, _ = await dialog.invite()
    assert final.status == 200
    dialog.ack()  # no SDP
    bye = await peer.request("BYE")
    assert dialog.call_id in bye.header("Call-ID")[0]
    await asyncio.wait_for(calls[0].ended.wait(), 3)
    assert endpoint.calls == {}
    peer.close()


async def test_reinvite_without_sdp_gets_our_offer_and_takes_the_answer_from_the_ack(
    make_endpoint,
) -> None:
    """RFC 3261 §14.2, RFC 3264 §8: a re-INVITE may ask for our offer; its ACK answers."""
    calls: list[Call] = []
    endpoint = await make_endpoint(lambda c: answering(calls, c))
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer)
    assert (await dialog.invite(body=sdp(port=40000)))[0].status == 200
    dialog.ack()
    peer.send(dialog.build("INVITE", 2))
    final = await peer.final()
    assert final.status == 200 and "m=audio" in final.body
    dialog.ack(body=sdp(port=40100), cseq=2)
    await peer.quiet(0.2)
    media = calls[0].media
    assert media is not None and media.remote_addr == ("127.0.0.1", 40100)
    peer.send(dialog.build("BYE", 3))
    assert (await peer.final()).status == 200
    peer.close()


# ------------------------------------------------------- transactions (RFC 3261 §17.2)


async def test_retransmitted_info_is_answered_again_but_is_one_digit(make_endpoint) -> None:
    got: dict[str, Collected] = {}
    done = asyncio.Event()

    async def on_call(call: Call) -> None:
        await call.answer()
        got["digits"] = await call.collect_dtmf(max_digits=3, timeout=2.0)
        done.set()

    endpoint = await make_endpoint(on_call)
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer)
    final, _ = await dialog.invite(body=sdp())
    assert final.status == 200
    dialog.ack()
    info = dialog.build(
        "INFO", 2, body="Signal=5\r\nDuration=160\r\n", ctype="application/dtmf-relay"
    )
    peer.send(info)
    peer.send(info)  # a retransmission: same branch, same CSeq
    assert (await peer.final()).status == 200
    assert (await peer.final()).status == 200  # answered again
    peer.send(dialog.build("INFO", 3, body="Signal=7\r\n", ctype="application/dtmf-relay"))
    assert (await peer.final()).status == 200
    await asyncio.wait_for(done.wait(), 5)
    assert got["digits"].digits == "57"  # acted on once
    peer.close()


async def test_requests_sharing_a_bare_cookie_branch_are_not_retransmissions(
    make_endpoint,
) -> None:
    """RFC 4475 §3.2.1: ``branch=z9hG4bK`` alone identifies nothing; two different
    requests carrying it are matched the RFC 2543 way and each gets its own answer."""
    endpoint = await make_endpoint()
    peer = await Peer.udp(endpoint.port)
    first, second = Dialog(peer), Dialog(peer)
    peer.send(first.build("OPTIONS", branch="z9hG4bK"))
    peer.send(second.build("OPTIONS", branch="z9hG4bK"))
    answers = [await peer.final(), await peer.final()]
    assert sorted(a.header("Call-ID")[0] for a in answers) == sorted(
        [first.call_id, second.call_id]
    )
    peer.close()


async def test_retransmitted_bye_gets_200_again_not_481(make_endpoint) -> None:
    calls: list[Call] = []
    endpoint = await make_endpoint(lambda c: answering(calls, c))
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer)
    assert (await dialog.invite(body=sdp()))[0].status == 200
    dialog.ack()
    bye = dialog.build("BYE", 2)
    peer.send(bye)
    assert (await peer.final()).status == 200
    peer.send(bye)  # our 200 was "lost": the BYE comes again
    assert (await peer.final()).status == 200
    assert calls[0].end_reason == "remote hangup"
    peer.close()


async def test_retransmitted_invite_gets_the_latest_response_and_one_call(make_endpoint) -> None:
    calls: list[Call] = []

    async def on_call(call: Call) -> None:
        calls.append(call)
        await call.ring()

    endpoint = await make_endpoint(on_call)
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer)
    invite = dialog.build("INVITE", body=sdp())
    peer.send(invite)
    statuses = [(await peer.recv()).status, (await peer.recv()).status]
    assert statuses == [100, 180]
    peer.send(invite)  # retransmitted while ringing: the 180 again (RFC 3261 §17.2.1)
    assert (await peer.recv()).status == 180
    assert len(calls) == 1
    peer.send(dialog.build("CANCEL", 1, branch=branch_of(invite)))
    got = sorted([(await peer.final()).status, (await peer.final()).status])
    assert got == [200, 487]
    peer.close()


async def test_merged_invite_on_another_branch_gets_482_and_no_second_call(
    make_endpoint,
) -> None:
    """RFC 3261 §8.2.2.2: the same INVITE arriving by a second path (a new branch) is a
    merged request, not a second call."""
    calls: list[Call] = []

    async def on_call(call: Call) -> None:
        calls.append(call)
        await call.ring()

    endpoint = await make_endpoint(on_call)
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer)
    peer.send(dialog.build("INVITE", body=sdp(), branch="z9hG4bK-path1"))
    assert [(await peer.recv()).status, (await peer.recv()).status] == [100, 180]
    peer.send(dialog.build("INVITE", body=sdp(), branch="z9hG4bK-path2"))
    assert (await peer.final()).status == 482
    assert len(calls) == 1 and calls[0].state is CallState.RINGING
    peer.close()


async def test_rejected_invite_is_retransmitted_until_acked(make_endpoint) -> None:
    """Timer G (RFC 3261 §17.2.1): a non-2xx final response is resent until the ACK."""

    async def on_call(call: Call) -> None:
        await call.reject(486, "Busy Here")

    endpoint = await make_endpoint(on_call)
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer)
    final, invite = await dialog.invite(body=sdp())
    assert final.status == 486
    again = await peer.final(timeout=3)  # no ACK yet: it comes again
    assert again.status == 486
    dialog.ack(branch=branch_of(invite))
    await peer.quiet(0.2)  # a resend that crossed the ACK
    assert [m.status for m in await peer.quiet(1.5)] == []
    peer.close()


async def test_403_to_a_stranger_is_sent_once_per_invite_not_retransmitted(
    make_endpoint,
) -> None:
    """Refusals before any call exists come from a stateless UAS (RFC 3261 §8.2.7):
    each INVITE (retransmissions included) gets its 403, but no Timer G resends, so a
    scanner with a forged source cannot use the port to multiply traffic."""
    endpoint = await make_endpoint(trusted_gateways=("127.0.0.1",))
    peer = await Peer.udp(endpoint.port, host="127.0.0.2")
    dialog = Dialog(peer)
    invite = dialog.build("INVITE", body=sdp())
    peer.send(invite)
    assert (await peer.final()).status == 403
    assert await peer.quiet(1.8) == []  # Timer G would have resent it at 0.5 s and 1.5 s
    peer.send(invite)  # a retransmission is answered again
    assert (await peer.final()).status == 403
    assert endpoint.counters["rejected_403"] == 1  # and judged once
    peer.close()


async def test_cancel_crossing_the_200_leaves_no_half_open_call(make_endpoint) -> None:
    """RFC 3261 §9.2: a CANCEL after the final response gets 200 and changes nothing; the
    caller then ACKs and BYEs the call (§9.1), which must find it."""
    calls: list[Call] = []
    endpoint = await make_endpoint(lambda c: answering(calls, c))
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer)
    final, invite = await dialog.invite(body=sdp())
    assert final.status == 200
    peer.send(
        dialog.build("CANCEL", 1, branch=branch_of(invite)).replace(
            f";tag={dialog.to_tag}".encode(), b""
        )
    )
    cancel_answer = await peer.final()
    assert cancel_answer.status == 200 and "CANCEL" in cancel_answer.header("CSeq")[0]
    assert [m.status for m in await peer.quiet(0.3) if m.status == 487] == []
    assert calls[0].state is CallState.ANSWERED
    dialog.ack()
    peer.send(dialog.build("BYE", 2))
    assert (await peer.final()).status == 200
    await asyncio.wait_for(calls[0].ended.wait(), 3)
    assert calls[0].end_reason == "remote hangup"
    assert endpoint.calls == {}
    peer.close()


class RawUas:
    """A UDP socket standing in for a phone or trunk that the endpoint dials."""

    def __init__(self) -> None:
        self.peer: Peer | None = None

    async def start(self) -> int:
        self.peer = await Peer.udp(0)
        return self.peer.local

    @staticmethod
    def reply(request: Msg, status: int, reason: str, to_tag: str = "uas1") -> bytes:
        to = request.header("To")[0]
        if status > 100 and ";tag=" not in to:
            to += f";tag={to_tag}"
        head = f"SIP/2.0 {status} {reason}\r\n"
        for via in request.header("Via"):
            head += f"Via: {via}\r\n"
        head += (
            f"From: {request.header('From')[0]}\r\nTo: {to}\r\n"
            f"Call-ID: {request.header('Call-ID')[0]}\r\nCSeq: {request.header('CSeq')[0]}\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        return head.encode()

    def send_to(self, port: int, data: bytes) -> None:
        assert self.peer is not None
        self.peer.target = port
        self.peer.send(data)


async def test_every_non_2xx_to_our_invite_is_acked_even_when_repeated(make_endpoint) -> None:
    """RFC 3261 §17.1.1.3: the ACK for a non-2xx copies the INVITE's Via branch, CSeq
    number and Request-URI and takes the response's To; every retransmission of the final
    response is ACKed again (§17.1.1.2)."""
    endpoint = await make_endpoint()
    uas = RawUas()
    port = await uas.start()
    assert uas.peer is not None
    dial = asyncio.ensure_future(endpoint.dial("sip:200@127.0.0.1", ("127.0.0.1", port)))
    invite = await uas.peer.request("INVITE")
    busy = uas.reply(invite, 486, "Busy Here")
    acks = []
    for _ in range(2):
        uas.send_to(endpoint.port, busy)
        acks.append(await uas.peer.request("ACK"))
    with pytest.raises(CallFailed) as failed:
        await dial
    assert failed.value.status == 486
    for ack in acks:
        assert branch_of(ack.raw) == branch_of(invite.raw)
        assert ack.header("CSeq")[0].split()[0] == invite.header("CSeq")[0].split()[0]
        assert ack.header("CSeq")[0].endswith("ACK")
        assert ack.to_tag == "uas1"
        assert ack.start.split()[1] == invite.start.split()[1]
    uas.peer.close()


async def test_491_to_our_hold_reinvite_is_acked(make_endpoint) -> None:
    """Our re-INVITE on an inbound dialog is an INVITE we sent too (RFC 3261 §14.1):
    its 491 Request Pending is ACKed like any non-2xx (§17.1.1.3)."""
    calls: list[Call] = []
    endpoint = await make_endpoint(lambda c: answering(calls, c))
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer)
    assert (await dialog.invite(body=sdp()))[0].status == 200
    dialog.ack()
    await peer.quiet(0.1)
    hold = asyncio.ensure_future(calls[0].hold())
    reinvite = await peer.request("INVITE")
    peer.send(RawUas.reply(reinvite, 491, "Request Pending", to_tag=dialog.from_tag))
    ack = await peer.request("ACK")
    assert branch_of(ack.raw) == branch_of(reinvite.raw)
    assert ack.header("CSeq")[0] == reinvite.header("CSeq")[0].replace("INVITE", "ACK")
    await hold
    assert "re-INVITE answered 491" in [what for _, what in calls[0].timeline]
    peer.close()


async def test_487_after_our_cancel_is_acked(make_endpoint) -> None:
    endpoint = await make_endpoint()
    uas = RawUas()
    port = await uas.start()
    assert uas.peer is not None
    dial = asyncio.ensure_future(
        endpoint.dial("sip:200@127.0.0.1", ("127.0.0.1", port), timeout=0.5)
    )
    invite = await uas.peer.request("INVITE")
    uas.send_to(endpoint.port, uas.reply(invite, 180, "Ringing"))
    cancel = await uas.peer.request("CANCEL")
    uas.send_to(endpoint.port, uas.reply(cancel, 200, "OK"))
    with pytest.raises(CallFailed):
        await dial
    uas.send_to(endpoint.port, uas.reply(invite, 487, "Request Terminated"))
    ack = await uas.peer.request("ACK")
    assert branch_of(ack.raw) == branch_of(invite.raw)
    uas.peer.close()


async def test_200_crossing_our_cancel_is_acked_and_ended_with_bye(make_endpoint) -> None:
    """RFC 3261 §9.1, §15: the phone answered while our CANCEL was on its way; its call
    must not be left up with nobody on it."""
    endpoint = await make_endpoint()
    uas = RawUas()
    port = await uas.start()
    assert uas.peer is not None
    dial = asyncio.ensure_future(
        endpoint.dial("sip:200@127.0.0.1", ("127.0.0.1", port), timeout=0.5)
    )
    invite = await uas.peer.request("INVITE")
    uas.send_to(endpoint.port, uas.reply(invite, 180, "Ringing"))
    cancel = await uas.peer.request("CANCEL")
    uas.send_to(endpoint.port, uas.reply(invite, 200, "OK"))  # sent before the CANCEL came
    uas.send_to(endpoint.port, uas.reply(cancel, 200, "OK"))
    with pytest.raises(CallFailed):
        await dial
    ack = await uas.peer.request("ACK")
    bye = await uas.peer.request("BYE")
    for request in (ack, bye):
        assert request.header("Call-ID") == invite.header("Call-ID")
        assert request.to_tag == "uas1"
    uas.send_to(endpoint.port, uas.reply(bye, 200, "OK"))
    assert endpoint.calls == {}
    uas.peer.close()


# ------------------------------------------------------------------ TCP (RFC 3261 §18)


async def test_tcp_response_goes_back_on_the_connection_of_its_request(make_endpoint) -> None:
    """RFC 3261 §18.2.2: an idle connection from the same address must not receive
    another connection's responses, whatever the Via's port says."""
    calls: list[Call] = []
    endpoint = await make_endpoint(lambda c: answering(calls, c), transports=("udp", "tcp"))
    idle = await Peer.tcp(endpoint.port)
    idle.send(Dialog(idle).build("OPTIONS"))  # the endpoint now knows this connection
    assert (await idle.final()).status == 200
    busy = await Peer.tcp(endpoint.port)
    dialog = Dialog(busy)
    # the Via names a port nothing listens on and asks for no rport (a gateway's listener)
    final, _ = await dialog.invite(body=sdp(), rport=False, via_port=5999)
    assert final.status == 200
    dialog.ack()
    await asyncio.sleep(0.1)
    await calls[0].hangup()  # our BYE goes on the call's connection too
    bye = await busy.request("BYE")
    assert dialog.call_id in bye.header("Call-ID")[0]
    assert await idle.quiet(0.3) == []
    idle.close()
    busy.close()


async def test_tcp_response_opens_a_new_connection_when_the_request_one_is_gone(
    make_endpoint,
) -> None:
    """RFC 3261 §18.2.2: if the request's connection closed, the response goes on a new
    connection to the Via's received address and sent-by port."""
    arrived: asyncio.Queue[Msg] = asyncio.Queue()

    async def gateway_listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                arrived.put_nowait(Msg(await reader.readuntil(b"\r\n\r\n")))

    server = await asyncio.start_server(gateway_listener, "127.0.0.1", 0)
    listen_port = server.sockets[0].getsockname()[1]
    proceed = asyncio.Event()

    async def on_call(call: Call) -> None:
        await call.ring()
        await proceed.wait()
        await call.reject(486, "Busy Here")

    endpoint = await make_endpoint(on_call, transports=("udp", "tcp"))
    peer = await Peer.tcp(endpoint.port)
    dialog = Dialog(peer)
    peer.send(dialog.build("INVITE", body=sdp(), rport=False, via_port=listen_port))
    assert [(await peer.recv()).status, (await peer.recv()).status] == [100, 180]
    peer.close()
    await asyncio.wait_for(peer.closed.wait(), 3)
    await asyncio.sleep(0.1)
    proceed.set()
    final = await asyncio.wait_for(arrived.get(), 3)
    assert final.status == 486 and dialog.call_id in final.header("Call-ID")[0]
    server.close()


async def test_idle_tcp_connection_is_closed_but_one_carrying_a_call_is_kept(
    make_endpoint,
) -> None:
    calls: list[Call] = []
    endpoint = await make_endpoint(
        lambda c: answering(calls, c), transports=("udp", "tcp"), tcp_idle_timeout=0.3
    )
    idle = await Peer.tcp(endpoint.port)
    in_call = await Peer.tcp(endpoint.port)
    dialog = Dialog(in_call)
    assert (await dialog.invite(body=sdp()))[0].status == 200
    dialog.ack()
    await asyncio.wait_for(idle.closed.wait(), 5)  # closed by the endpoint
    await asyncio.sleep(0.8)  # well past the idle timeout
    assert not in_call.closed.is_set()
    await calls[0].hangup()
    assert (await in_call.request("BYE")).method == "BYE"
    in_call.close()


async def test_tcp_connections_per_address_are_bounded(make_endpoint) -> None:
    endpoint = await make_endpoint(transports=("udp", "tcp"), tcp_max_connections_per_address=2)
    first, second = await Peer.tcp(endpoint.port), await Peer.tcp(endpoint.port)
    third = await Peer.tcp(endpoint.port)
    await asyncio.wait_for(third.closed.wait(), 3)
    for peer in (first, second):
        peer.send(Dialog(peer).build("OPTIONS"))
        assert (await peer.final()).status == 200
    first.close()
    await asyncio.sleep(0.1)
    fourth = await Peer.tcp(endpoint.port)  # a slot is free again
    fourth.send(Dialog(fourth).build("OPTIONS"))
    assert (await fourth.final()).status == 200
    second.close()
    fourth.close()


async def test_tcp_keepalives_and_folded_content_length_keep_the_stream_in_step(
    make_endpoint,
) -> None:
    """RFC 3261 §7.5: CRLFs before a start line are ignored on a stream; §7.3.1: a folded
    or compact Content-Length still frames the body."""
    endpoint = await make_endpoint(transports=("udp", "tcp"))
    peer = await Peer.tcp(endpoint.port)
    body = "hello"
    msg = Dialog(peer).build("OPTIONS", body=body, ctype="text/plain")
    msg = msg.replace(
        f"Content-Length: {len(body)}".encode(), f"Content-Length :\r\n {len(body)}".encode()
    )
    peer.send(b"\r\n\r\n" + msg + b"\r\n" + Dialog(peer).build("OPTIONS"))
    statuses = []
    while len(statuses) < 2:
        m = await peer.recv()
        if m.status is not None:
            statuses.append(m.status)
    assert statuses == [200, 200]
    assert peer.pongs == 1  # the double-CRLF ping was answered
    peer.close()


# --------------------------------------------------- all of it, then a normal call works


def _call_id(msg: Msg | bytes) -> str:
    raw = msg.raw if isinstance(msg, Msg) else msg
    m = re.search(rb"\r\n(?:Call-ID|i)[ \t]*(?:\r\n[ \t]+)?:[ \t]*([^\r\n]+)", raw, re.I)
    assert m is not None
    return m.group(1).decode().strip()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_after_every_torture_message_a_normal_call_still_works(
    sipp: str, make_endpoint, tmp_path: Path, transport: str
) -> None:
    """All the messages above in one burst (over one TCP connection, or one UDP socket):
    each gets its own prescribed answer, and then a normal call works."""
    answered: list[Call] = []

    async def on_call(call: Call) -> None:
        answered.append(call)
        await call.answer()
        await call.play(tone((1000.0,), 0.4))
        await call.hangup()

    endpoint = await make_endpoint(on_call, transports=("udp", "tcp"))
    peer = await (Peer.tcp if transport == "tcp" else Peer.udp)(endpoint.port)
    cases = _torture(endpoint.port, peer.local, peer.proto)
    expected = {_call_id(data): (name, allowed) for name, (data, allowed) in cases.items()}
    for data, _allowed in cases.values():
        peer.send(data)
    got: dict[str, int] = {}
    while len(got) < len(expected):
        msg = await peer.recv(timeout=5)
        if msg.status is not None and msg.status >= 200:
            got.setdefault(_call_id(msg), msg.status)
    for call_id, (name, allowed) in expected.items():
        assert got[call_id] in allowed, (name, got[call_id])
    for call in list(answered):  # the valid INVITEs among them
        await asyncio.wait_for(call.ended.wait(), 5)
    answered.clear()
    peer.close()
    tap = await open_tap()
    run = await run_sipp(
        "caller_talk.xml",
        endpoint.port,
        tmp_path / "sipp",
        keys={"tap_port": tap.port},
        extra=["-t", "t1"] if transport == "tcp" else [],
    )
    tap.close()
    assert run.returncode == 0, run.errors()
    assert len(answered) == 1 and answered[0].end_reason == "local hangup"
    assert level_at(tap.audio(), 1000.0) > 3000


def _digest(challenge: str, user: str, password: str, uri: str) -> str:
    """An Authorization answering ``challenge`` (RFC 2617 §3.2.2, no qop)."""
    realm = re.search(r'realm="([^"]*)"', challenge)
    nonce = re.search(r'nonce="([^"]*)"', challenge)
    assert realm is not None and nonce is not None
    ha1 = hashlib.md5(f"{user}:{realm.group(1)}:{password}".encode()).hexdigest()  # noqa: S324
    ha2 = hashlib.md5(f"REGISTER:{uri}".encode()).hexdigest()  # noqa: S324
    response = hashlib.md5(f"{ha1}:{nonce.group(1)}:{ha2}".encode()).hexdigest()  # noqa: S324
    return (
        f'Digest username="{user}", realm="{realm.group(1)}", nonce="{nonce.group(1)}", '
        f'uri="{uri}", response="{response}"'
    )


async def test_register_with_a_bad_expires_changes_no_binding(make_endpoint) -> None:
    """RFC 3261 §20.19: Expires is delta-seconds; a REGISTER with a bad one is refused
    whole (§10.3), even when another Contact in it was fine."""
    endpoint = await make_endpoint(agent_credentials={"1001": "secret"})
    peer = await Peer.udp(endpoint.port)
    dialog = Dialog(peer, user="1001")
    uri = "sip:127.0.0.1"
    peer.send(dialog.build("REGISTER", uri=uri))
    challenge = (await peer.final()).header("WWW-Authenticate")[0]
    auth = f"Authorization: {_digest(challenge, '1001', 'secret', uri)}\r\n"
    two_contacts = (
        f"Contact: <sip:1001@127.0.0.1:{peer.local}>;expires=600, "
        f"<sip:1001@127.0.0.1:{peer.local + 1}>;expires=-30\r\n"
    )
    peer.send(dialog.build("REGISTER", 2, uri=uri, extra=auth + two_contacts))
    assert (await peer.final()).status == 400
    assert endpoint.registrar.lookup("1001") is None
    peer.send(dialog.build("REGISTER", 3, uri=uri, extra=auth + "Expires: -1\r\n"))
    assert (await peer.final()).status == 400
    assert endpoint.registrar.lookup("1001") is None
    peer.send(dialog.build("REGISTER", 4, uri=uri, extra=auth + "Expires: 600\r\n"))
    assert (await peer.final()).status == 200  # the same credentials do register
    assert endpoint.registrar.lookup("1001") is not None
    peer.close()
