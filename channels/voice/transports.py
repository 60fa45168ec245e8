"""SIP transports (RFC 3261 §18) hardened against malformed and hostile input, with the
transaction-layer duties aiosipua leaves to the application (RFC 3261 §17).

aiosipua's transports parse and dispatch; these subclasses add what a public SIP port
needs before anything reaches the endpoint:

- **Framing and syntax.** Header lines are unfolded and the linear white space of
  structured headers is collapsed before parsing (RFC 3261 §7.3.1), and all Via rows are
  joined into one list, so a request that crossed hundreds of proxies still parses. An
  oversized datagram or header line, a header line without a colon, a bad Via, a
  Content-Length that is not one number or is larger than the body (§18.3), a malformed
  Request-Line or Request-URI, a CSeq that is not ``number method`` or names another
  method than the request (§8.1.1.5, RFC 4475 §3.1.2.17), a single-value header given
  twice (§7.3.1, RFC 4475 §3.3.8/§3.3.9) or a Max-Forwards above 255 get 400; a SIP
  version other than 2.0 gets 505 (§8.2 and RFC 4475 §3.1.2.16). Requests that give us
  no Via to answer are dropped, and so are malformed responses and responses with more
  than one Via (§18.1.2). ACKs are never answered.
- **Server transactions** (§17.2). A retransmitted request (same branch, sent-by and
  method, §17.2.3) is answered again with the last response and is not passed on, so it
  is acted on once: a repeated INFO is not a second digit, a repeated BYE gets 200 again.
  Over UDP, a non-2xx final response to an INVITE is retransmitted until its ACK arrives
  (Timer G, bounded by Timer H), unless it came from the endpoint acting as a stateless
  UAS (:meth:`_Guard.send_stateless`, RFC 3261 §8.2.7).
- **Client INVITE transactions** (§17.1.1.3). Every non-2xx final response to an INVITE
  we sent is ACKed, retransmissions included, and only the first is passed on.
- **TCP** (§18.2.2, §18.3, RFC 5626 §3.5.1). A response goes back on the connection its
  request came in on, never on another connection from the same address; when that
  connection is gone, a new one is opened to the Via's ``received`` address and sent-by
  port. CRLFs before a start line are ignored (§7.5) and a double-CRLF ping gets a CRLF
  pong. Idle connections are closed after ``idle_timeout`` unless a call still uses them,
  and one address may hold at most ``max_per_address`` connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosipua import SipRequest, SipResponse, TcpSipTransport, UdpSipTransport
from aiosipua.headers import parse_via
from aiosipua.message import SipMessage
from aiosipua.transport import _response_destination, _stamp_via_received

from channels.voice.registrar import stateless_response

log = logging.getLogger(__name__)

Addr = tuple[str, int]

MAX_DATAGRAM = 32 * 1024
MAX_HEADER_LINE = 8 * 1024
MAX_HEADERS = 200  # header rows once the Vias are joined (aiosipua refuses above 256)
MAX_STREAM_HEADER = 64 * 1024
MAX_STREAM_BODY = 1024 * 1024
T1, T2 = 0.5, 4.0  # RFC 3261 §17.1.1.1
TXN_LINGER = 64 * T1  # Timers H, J, L and D: how long a finished transaction is kept
TXN_PENDING = 300.0  # a transaction that never got a final response is forgotten then
MAX_TXNS = 50_000

COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
}
# headers whose grammar allows LWS around separators (RFC 3261 §25.1: SLASH, SEMI,
# EQUAL, COMMA, COLON are SWS-delimited), so collapsing it changes no meaning
STRUCTURED = frozenset(
    {
        "via",
        "from",
        "to",
        "contact",
        "route",
        "record-route",
        "cseq",
        "call-id",
        "max-forwards",
        "content-length",
        "content-type",
        "require",
        "proxy-require",
        "supported",
        "allow",
        "accept",
        "expires",
        "rseq",
        "rack",
        "event",
        "refer-to",
        "session-expires",
        "min-se",
    }
)
SINGLE_VALUED = ("from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type")
_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")  # RFC 3261 §25.1 token
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"]+$")  # absoluteURI, no LWS
_VIA_VALUE = re.compile(
    r"^SIP/2\.0/[A-Za-z0-9\-.!%*_+`'~]+ "  # sent-protocol SP
    r"(\[[0-9A-Fa-f:.]+\]|[^\s;:,\[\]]+)(:\d{1,5})?"  # sent-by
    r"(;.*)?$",  # via-params
    re.I,
)
_CSEQ = re.compile(r"^(\d{1,10}) ([A-Za-z0-9\-.!%*_+`'~]+)$")
_SEPARATORS = "/;=,:"
_LWS_TO_COLLAPSE = re.compile(r"[ \t][/;=,:]|[/;=,:][ \t]|[ \t]{2}|\t")


def collapse_lws(value: str) -> str:
    """Collapse runs of white space to one SP and drop it around separators, outside
    quoted strings and ``<…>`` (RFC 3261 §7.3.1, §25.1)."""
    if _LWS_TO_COLLAPSE.search(value) is None:
        return value  # the common case: nothing to do
    out: list[str] = []
    quoted = escaped = False
    angle = 0
    pending_space = False
    for ch in value:
        if quoted:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            continue
        if ch in " \t" and angle == 0:
            pending_space = True
            continue
        if pending_space:
            if out and out[-1] not in _SEPARATORS and ch not in _SEPARATORS:
                out.append(" ")
            pending_space = False
        if ch == '"':
            quoted = True
        elif ch == "<":
            angle += 1
        elif ch == ">":
            angle = max(0, angle - 1)
        out.append(ch)
    return "".join(out).strip()


@dataclass(slots=True)
class Head:
    """A message's start line and header rows after unfolding (RFC 3261 §7.3.1)."""

    start: str
    rows: list[tuple[str, str, str]]  # (name as sent, expanded lower-case name, value)
    body: bytes
    problem: str | None = None

    def first(self, key: str) -> str | None:
        return next((v for _, k, v in self.rows if k == key), None)

    def values(self, key: str) -> list[str]:
        return [v for _, k, v in self.rows if k == key]

    def to_bytes(self) -> bytes:
        lines = [self.start] + [f"{name}: {value}" for name, _, value in self.rows]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + self.body


def read_head(data: bytes) -> Head:
    """Unfold, normalize and check a message's header section. Via rows are joined into
    one comma-separated row (equivalent by RFC 3261 §7.3.1), in order."""
    sep = data.find(b"\r\n\r\n")
    raw_head, body = (data, b"") if sep < 0 else (data[:sep], data[sep + 4 :])
    text = raw_head.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    head = Head(lines[0], [], body)
    if "\x00" in text:
        head.problem = "NUL In Headers"
        return head
    if "\r" in text.replace("\r\n", "") or "\n" in text.replace("\r\n", ""):
        # lines end in CRLF (RFC 3261 §7); a bare CR or LF would be read as a line
        # break by aiosipua and as header text here, so the two would disagree
        head.problem = "Bare CR Or LF"
    unfolded: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + line.strip(" \t")
        elif line:
            unfolded.append(line)
    vias: list[str] = []
    via_at: int | None = None
    for line in unfolded:
        name, colon, value = line.partition(":")
        name = name.strip(" \t")
        if not colon or not _TOKEN.match(name):
            head.problem = "Malformed Header Line"
            continue
        key = COMPACT.get(name.lower(), name.lower())
        value = value.strip(" \t")
        if key in STRUCTURED:
            value = collapse_lws(value)
        if key == "via":
            for one in value.split(","):
                if not _VIA_VALUE.match(one.strip()):
                    head.problem = head.problem or "Bad Via"
                vias.append(one.strip())
            if via_at is None:
                via_at = len(head.rows)
                head.rows.append(("Via", "via", ""))
            continue
        head.rows.append((name, key, value))
    if via_at is not None:
        head.rows[via_at] = ("Via", "via", ", ".join(vias))
    if len(head.rows) > MAX_HEADERS:
        head.problem = head.problem or "Too Many Headers"
    lengths = head.values("content-length")
    if len(lengths) > 1:
        head.problem = head.problem or "Multiple Content-Length"
    elif lengths:
        if not lengths[0].isdigit():
            head.problem = head.problem or "Bad Content-Length"
        elif sep >= 0 and int(lengths[0]) > len(body):
            head.problem = head.problem or "Content-Length Mismatch"
    return head


def quick_reply(head: Head, status: int, reason: str) -> bytes | None:
    """A minimal stateless response to a request we refuse to parse fully, if it has
    the headers a response must echo (RFC 3261 §8.2.6.2); else ``None`` (drop it)."""
    if not head.start[:1].isalpha() or head.start.startswith("SIP/"):
        return None
    if head.start.split(" ", 1)[0] == "ACK":
        return None  # an ACK is never answered (RFC 3261 §17.2.1)
    out = [f"SIP/2.0 {status} {reason}"]
    for key, name in (("via", "Via"), ("from", "From"), ("to", "To"), ("call-id", "Call-ID")):
        value = head.first(key)
        if not value or len(value) > 16 * 1024 or "\r" in value or "\n" in value:
            return None
        out.append(f"{name}: {value}")
    cseq = head.first("cseq")
    if cseq is None or "\r" in cseq or "\n" in cseq:
        return None
    out.append(f"CSeq: {cseq[:256]}")
    return ("\r\n".join(out) + "\r\nContent-Length: 0\r\n\r\n").encode("utf-8", "surrogateescape")


def request_problem(start: str, msg: SipRequest) -> tuple[int, str] | None:
    """What RFC 3261 says to answer a parsed request whose Request-Line or core headers
    are wrong, or ``None``."""
    parts = start.split(" ")
    if len(parts) != 3 or not all(parts):
        return 400, "Malformed Request-Line"  # RFC 4475 §3.1.2.8-10
    method, uri, version = parts
    if not _TOKEN.match(method):
        return 400, "Bad Method"
    if version.upper() != "SIP/2.0":
        if re.match(r"^SIP/\d+\.\d+$", version, re.I):
            return 505, "Version Not Supported"  # RFC 3261 §21.5.7, RFC 4475 §3.1.2.16
        return 400, "Bad SIP-Version"
    if not _URI.match(uri):
        return 400, "Bad Request-URI"  # RFC 4475 §3.1.2.7
    for name in SINGLE_VALUED:
        if len(msg.headers.get(name)) > 1:
            return 400, f"Multiple {name.title()} Values"
    m = _CSEQ.match(msg.headers.get_first("cseq") or "")
    if m is None or int(m.group(1)) >= 2**31:
        return 400, "Bad CSeq"  # RFC 3261 §8.1.1.5, RFC 4475 §3.1.2.4
    if m.group(2) != method:
        return 400, "CSeq Method Mismatch"  # RFC 4475 §3.1.2.17
    max_forwards = msg.headers.get_first("max-forwards")
    if max_forwards is not None and not (max_forwards.isdigit() and int(max_forwards) <= 255):
        return 400, "Bad Max-Forwards"  # RFC 3261 §20.22, RFC 4475 §3.1.2.4
    return None


def _cseq(msg: SipMessage) -> tuple[int, str] | None:
    m = _CSEQ.match(msg.headers.get_first("cseq") or "")
    return (int(m.group(1)), m.group(2)) if m else None


def txn_key(msg: SipMessage, method: str) -> tuple[object, ...] | None:
    """The transaction a message belongs to (RFC 3261 §17.2.3): branch, sent-by and
    method (an ACK matches its INVITE); RFC 2543 peers without the magic cookie are
    matched on Call-ID, From tag, CSeq number and the top Via instead."""
    raw = msg.headers.get_first("via")
    if not raw:
        return None
    via = parse_via(raw)
    kind = "INVITE" if method == "ACK" else method
    branch = via.branch or ""
    if branch.startswith("z9hG4bK") and len(branch) > 7:  # the cookie alone: RFC 4475 §3.2.1
        return (branch, via.host.lower(), via.port or 0, kind)
    cseq = _cseq(msg)
    from_tag = re.search(r";\s*tag=([^;>\s]+)", msg.headers.get_first("from") or "")
    return (
        "rfc2543",
        msg.call_id,
        from_tag.group(1) if from_tag else "",
        cseq[0] if cseq else 0,
        via.host.lower(),
        via.port or 0,
        branch,
        kind,
    )


@dataclass(slots=True)
class ServerTxn:
    """What a server transaction remembers: where its request came from and its last
    response (RFC 3261 §17.2)."""

    method: str
    source: Addr
    expires: float
    dest: Addr | None = None
    response: bytes | None = None
    status: int = 0
    final_at: float = 0.0
    acked: bool = False
    timer: asyncio.TimerHandle | None = None
    stateless: bool = False  # answered by a stateless UAS: no Timer G (RFC 3261 §8.2.7)


@dataclass(slots=True)
class ClientInvite:
    """An INVITE we sent, kept to ACK its non-2xx final responses (RFC 3261 §17.1.1.3)."""

    request: SipRequest
    dest: Addr
    expires: float
    final_seen: bool = False


def ack_for(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's
    Request-URI, Call-ID, From, top Via, CSeq number and Route; the response's To."""
    ack = SipRequest(method="ACK", uri=invite.uri)
    ack.headers.append("Via", invite.headers.get("via")[0])
    for name in ("Max-Forwards", "From", "Call-ID"):
        value = invite.headers.get_first(name)
        if value:
            ack.headers.set_single(name, value)
    ack.headers.set_single("To", response.headers.get_first("to") or "")
    cseq = _cseq(invite)
    ack.headers.set_single("CSeq", f"{cseq[0] if cseq else 1} ACK")
    for route in invite.headers.get("route"):
        ack.headers.append("Route", route)
    return ack


@dataclass
class _GuardState:
    server: dict[tuple[object, ...], ServerTxn] = field(default_factory=dict)
    client: dict[str, ClientInvite] = field(default_factory=dict)
    last_purge: float = 0.0


class _Guard:
    """Checks and transaction duties shared by both transports."""

    reliable: bool
    rejected: int = 0
    dropped: int = 0
    on_message: Callable[[SipRequest | SipResponse, Addr], None] | None

    def _guard_init(self) -> None:
        self._state = _GuardState()

    # --- to be provided by the transport ---------------------------------------------

    def _send_raw(self, data: bytes, addr: Addr) -> None:
        raise NotImplementedError

    def _send_message(self, message: SipRequest | SipResponse, addr: Addr) -> None:
        raise NotImplementedError

    # --- transaction tables ----------------------------------------------------------

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _purge(self) -> None:
        now = self._now()
        state = self._state
        if now - state.last_purge < 1.0 and len(state.server) < MAX_TXNS:
            return
        state.last_purge = now
        for key in [k for k, t in state.server.items() if t.expires <= now]:
            txn = state.server.pop(key)
            if txn.timer is not None:
                txn.timer.cancel()
        while len(state.server) >= MAX_TXNS:  # a flood of new branches: oldest first
            txn = state.server.pop(next(iter(state.server)))
            if txn.timer is not None:
                txn.timer.cancel()
        for branch in [b for b, c in state.client.items() if c.expires <= now]:
            del state.client[branch]
        while len(state.client) >= MAX_TXNS:
            del state.client[next(iter(state.client))]

    def _server_filter(self, request: SipRequest, addr: Addr) -> bool:
        """Absorb retransmissions (RFC 3261 §17.2.1, §17.2.2); ``True`` passes it on."""
        key = txn_key(request, request.method)
        if key is None:
            return True
        state = self._state
        txn = state.server.get(key)
        if request.method == "ACK":
            if txn is None or txn.status < 300:
                return True  # the ACK for a 2xx is a transaction of its own (§17.1.1.3)
            if txn.timer is not None:  # Timer G stops (§17.2.1, Confirmed state)
                txn.timer.cancel()
                txn.timer = None
            first = not txn.acked
            txn.acked = True
            return first
        if txn is not None:
            if txn.response is not None:
                self._send_raw(txn.response, txn.dest or txn.source)
            return False
        self._purge()
        state.server[key] = ServerTxn(request.method, addr, self._now() + TXN_PENDING)
        return True

    def _client_filter(self, response: SipResponse) -> bool:
        """ACK every non-2xx final response to our INVITEs (RFC 3261 §17.1.1.2-3);
        ``True`` passes the response on (only the first final one is)."""
        cseq = _cseq(response)
        if cseq is None or cseq[1] != "INVITE" or response.status_code < 300:
            return True
        vias = response.headers.get("via")
        branch = parse_via(vias[0]).branch if vias else None
        sent = self._state.client.get(branch or "")
        if sent is None:
            return True
        self._send_message(ack_for(sent.request, response), sent.dest)
        if sent.final_seen:
            return False
        sent.final_seen = True
        sent.expires = self._now() + TXN_LINGER
        return True

    def _outgoing(self, message: SipRequest | SipResponse, data: bytes, addr: Addr) -> Addr:
        """Note what we send; returns where a response must go (its request's source on
        a stream transport, RFC 3261 §18.2.2)."""
        if isinstance(message, SipRequest):
            if message.method == "INVITE":
                vias = message.headers.get("via")
                branch = parse_via(vias[0]).branch if vias else None
                if branch:
                    self._purge()
                    self._state.client[branch] = ClientInvite(
                        message, addr, self._now() + TXN_PENDING
                    )
            return addr
        cseq = _cseq(message)
        key = txn_key(message, cseq[1]) if cseq else None
        txn = self._state.server.get(key) if key is not None else None
        if txn is None:
            return addr
        dest = txn.source if self.reliable else addr
        txn.dest = dest
        txn.response = data
        txn.status = message.status_code
        if message.status_code >= 200 and not txn.final_at:
            txn.final_at = self._now()
            txn.expires = txn.final_at + TXN_LINGER
            if (
                txn.method == "INVITE"
                and message.status_code >= 300
                and not self.reliable
                and not txn.stateless
            ):
                loop = asyncio.get_running_loop()
                txn.timer = loop.call_later(T1, self._timer_g, txn, T1)
        return dest

    def send_stateless(self, response: SipResponse) -> None:
        """Send a stateless UAS's response (RFC 3261 §8.2.7): kept to answer the
        request's retransmissions, never retransmitted by Timer G."""
        cseq = _cseq(response)
        key = txn_key(response, cseq[1]) if cseq else None
        txn = self._state.server.get(key) if key is not None else None
        if txn is not None:
            txn.stateless = True
        self.send_reply(response)  # type: ignore[attr-defined]

    def _timer_g(self, txn: ServerTxn, interval: float) -> None:
        """Retransmit a non-2xx final response to an INVITE until the ACK (RFC 3261
        §17.2.1, Timer G), for at most Timer H."""
        txn.timer = None
        if txn.acked or txn.response is None or txn.dest is None:
            return
        if self._now() - txn.final_at >= TXN_LINGER:
            return
        self._send_raw(txn.response, txn.dest)
        nxt = min(interval * 2, T2)
        txn.timer = asyncio.get_running_loop().call_later(nxt, self._timer_g, txn, nxt)

    def _stop_timers(self) -> None:
        for txn in self._state.server.values():
            if txn.timer is not None:
                txn.timer.cancel()
        self._state.server.clear()
        self._state.client.clear()

    # --- intake ------------------------------------------------------------------------

    def _guarded_dispatch(self, data: bytes, addr: Addr) -> None:
        """Check, parse and route one message; nothing a peer sends may escape as an
        exception (the TCP connection or the endpoint would go with it)."""
        try:
            self._check_and_dispatch(data, addr)
        except Exception:
            self.dropped += 1
            log.exception("dropped SIP from %s after an internal error", addr)

    def _check_and_dispatch(self, data: bytes, addr: Addr) -> None:
        if not data.strip(b"\r\n"):
            return  # CRLF keepalive (RFC 5626 §3.5.1)
        data = data.lstrip(b"\r\n")  # CRLFs before the start line are ignored (§7.5)
        if len(data) > MAX_DATAGRAM:
            self._refuse(read_head(data[:MAX_HEADER_LINE]), "Message Too Large", addr)
            return
        if any(len(line) > MAX_HEADER_LINE for line in data.split(b"\n", 1024)[:1024]):
            self._refuse(read_head(data[: MAX_HEADER_LINE * 2]), "Header Too Large", addr)
            return
        head = read_head(data)
        if head.problem is not None:
            self._refuse(head, head.problem, addr)
            return
        try:
            msg = SipMessage.parse(head.to_bytes())
        except Exception as exc:
            self.dropped += 1
            log.debug("dropped unparsable SIP from %s: %s", addr, exc)
            return
        if isinstance(msg, SipRequest):
            if not self._accept_request(head, msg, addr):
                return
        elif not self._accept_response(msg):
            self.dropped += 1
            return
        handler = self.on_message
        if handler is not None:
            try:
                handler(msg, addr)
            except Exception:
                log.exception("error handling SIP %s from %s", type(msg).__name__, addr)

    def _refuse(self, head: Head, reason: str, addr: Addr) -> None:
        reply = quick_reply(head, 400, reason)
        if reply is None:
            self.dropped += 1
            return
        self.rejected += 1
        self._send_raw(reply, addr)  # symmetric, as rport (RFC 3581)

    def _accept_request(self, head: Head, msg: SipRequest, addr: Addr) -> bool:
        if not msg.headers.get("via"):
            self.dropped += 1  # Via is mandatory (§8.1.1.7) and nothing says where to answer
            return False
        try:
            _stamp_via_received(msg, addr)
        except Exception:
            self.dropped += 1
            return False
        problem = request_problem(head.start, msg)
        if problem is not None:
            if msg.method != "ACK":
                self.rejected += 1
                self._send_raw(bytes(stateless_response(msg, *problem)), addr)
            else:
                self.dropped += 1
            return False
        return self._server_filter(msg, addr)

    def _accept_response(self, msg: SipResponse) -> bool:
        if not 100 <= msg.status_code <= 699 or _cseq(msg) is None:
            return False  # RFC 4475 §3.1.2.19 bigcode
        if len(msg.headers.get("via")) != 1:
            return False  # RFC 3261 §18.1.2: not for us
        return self._client_filter(msg)


class _Datagrams(asyncio.DatagramProtocol):
    """Each datagram to the transport. aiosipua's own protocol asserts that the loop's
    transport is an ``asyncio.DatagramTransport``, which Python 3.11's selector transport
    does not subclass: every start logged an AssertionError traceback (and uvloop's
    transport would fail the same way). This one takes the transport it is given."""

    def __init__(self, owner: GuardedUdpTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._owner._dispatch(data, (str(addr[0]), int(addr[1])))  # IPv6 adds flow, scope

    def error_received(self, exc: Exception) -> None:
        log.warning("SIP over UDP: %s", exc)  # e.g. ICMP port unreachable for a reply


class GuardedUdpTransport(_Guard, UdpSipTransport):
    def __init__(self, local_addr: Addr) -> None:
        super().__init__(local_addr=local_addr)
        self._guard_init()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self), local_addr=self.local_addr
        )
        self._udp_transport = transport  # type: ignore[assignment]

    def _dispatch(self, data: bytes, addr: Addr) -> None:
        self._guarded_dispatch(data, addr)

    def _send_raw(self, data: bytes, addr: Addr) -> None:
        if self._udp_transport is not None:
            self._udp_transport.sendto(data, addr)

    def _send_message(self, message: SipRequest | SipResponse, addr: Addr) -> None:
        self._send_raw(bytes(message), addr)

    def send(self, message: SipRequest | SipResponse, addr: Addr) -> None:
        if self._udp_transport is None:
            return  # stopped: nothing to send on
        data = bytes(message)
        self._udp_transport.sendto(data, self._outgoing(message, data, addr))

    async def stop(self) -> None:
        self._stop_timers()
        await super().stop()


class GuardedTcpTransport(_Guard, TcpSipTransport):
    def __init__(
        self,
        local_addr: Addr,
        *,
        idle_timeout: float = 120.0,
        max_per_address: int = 64,
        in_use: Callable[[Addr], bool] | None = None,
    ) -> None:
        super().__init__(local_addr=local_addr)
        self._guard_init()
        self.idle_timeout = idle_timeout
        self.max_per_address = max_per_address
        self.in_use = in_use
        self.refused_connections = 0
        self._activity: dict[Addr, float] = {}

    def _dispatch(self, data: bytes, addr: Addr) -> None:
        self._guarded_dispatch(data, addr)

    async def _handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One accepted connection: bounded per address, closed when idle (RFC 3261
        §18.3 leaves both to the implementation; an unbounded port is a DoS)."""
        peername = writer.get_extra_info("peername")
        addr = (str(peername[0]), int(peername[1])) if peername else ("0.0.0.0", 0)  # noqa: S104
        if sum(1 for peer in self._connections if peer[0] == addr[0]) >= self.max_per_address:
            self.refused_connections += 1
            writer.close()
            return
        self._connections[addr] = (reader, writer)
        self._activity[addr] = self._now()
        watchdog = self._spawn(self._close_when_idle(addr, writer))
        try:
            while True:
                data = await self._read_message(reader, writer, addr)
                if data is None:
                    break
                self._activity[addr] = self._now()
                self._dispatch(data, addr)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            watchdog.cancel()
            self._activity.pop(addr, None)
            if self._connections.get(addr, (None, writer))[1] is writer:
                self._connections.pop(addr, None)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(5):
                    await writer.wait_closed()

    async def _close_when_idle(self, addr: Addr, writer: asyncio.StreamWriter) -> None:
        while True:
            idle = self._now() - self._activity.get(addr, self._now())
            if idle >= self.idle_timeout:
                if self.in_use is not None and self.in_use(addr):
                    self._activity[addr] = self._now()  # a call still needs it
                else:
                    log.debug("closing idle SIP connection from %s", addr)
                    writer.close()
                    return
            await asyncio.sleep(max(self.idle_timeout - idle, 0.01))

    async def _read_message(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, addr: Addr
    ) -> bytes | None:
        """One message, framed by its Content-Length (RFC 3261 §18.3), whatever its
        spelling (compact, folded, spaces before the colon)."""
        blank = 0
        while True:  # CRLFs before the start line (RFC 3261 §7.5)
            line = await reader.readline()
            if not line:
                return None
            if line.strip(b"\r\n"):
                break
            self._activity[addr] = self._now()
            blank += 1
            if blank == 2:  # a double-CRLF ping gets a CRLF pong (RFC 5626 §3.5.1)
                writer.write(b"\r\n")
                blank = 0
        head = bytearray(line)
        while not head.endswith(b"\r\n\r\n") and not head.endswith(b"\n\n"):
            line = await reader.readline()
            if not line:
                return None
            head.extend(line)
            if len(head) > MAX_STREAM_HEADER:
                log.warning("SIP peer %s sent over %d header bytes: closing", addr, len(head))
                return None
        unfolded = re.sub(rb"\r?\n[ \t]+", b" ", bytes(head))
        lengths = re.findall(rb"^(?:content-length|l)[ \t]*:[ \t]*(\S*)", unfolded, re.I | re.M)
        length = int(lengths[0]) if len(lengths) == 1 and lengths[0].isdigit() else 0
        if length > MAX_STREAM_BODY:
            log.warning("SIP peer %s announced a %d-byte body: closing", addr, length)
            return None
        body = await reader.readexactly(length) if length else b""
        return bytes(head) + body

    def _write(self, addr: Addr, data: bytes) -> bool:
        conn = self._connections.get(addr)
        if conn is None:
            return False
        conn[1].write(data)
        self._activity[addr] = self._now()
        self._spawn(self._flush(conn[1], addr))
        return True

    def _send_raw(self, data: bytes, addr: Addr) -> None:
        self._write(addr, data)

    def _send_message(self, message: SipRequest | SipResponse, addr: Addr) -> None:
        self.send(message, addr)

    def send(self, message: SipRequest | SipResponse, addr: Addr) -> None:
        data = bytes(message)
        dest = self._outgoing(message, data, addr)
        if self._write(dest, data):
            return
        if isinstance(message, SipResponse):
            # the request's connection is gone: a new one to received/sent-by (§18.2.2)
            via = message.via[0] if message.via else None
            if via is None:
                return
            dest = (via.received or via.host, via.port or 5060)
        self._spawn(self._connect_and_send(dest, data))

    async def _connect_and_send(self, dest: Addr, data: bytes) -> None:
        try:
            if dest not in self._connections:
                await self.connect(dest)
        except OSError as exc:
            log.warning("cannot open a SIP connection to %s: %s", dest, exc)
            return
        self._write(dest, data)

    def send_reply(self, response: SipResponse) -> None:
        dest = _response_destination(response)
        if dest is not None:
            self.send(response, dest)

    async def stop(self) -> None:
        self._stop_timers()
        await super().stop()
