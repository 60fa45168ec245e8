"""SIP transports (RFC 3261 §18) hardened against malformed and hostile input.

aiosipua's transports parse and dispatch; these subclasses add the checks a public SIP
port needs before anything is parsed or routed:

- a datagram larger than ``MAX_DATAGRAM`` or with a header line longer than
  ``MAX_HEADER_LINE`` is answered 400 when it can be routed, else dropped;
- a request whose body is shorter than its Content-Length is answered 400
  (RFC 3261 §18.3: on UDP the message is discarded or answered 400);
- bare CRLF keepalives (RFC 5626 §3.5.1) are ignored;
- anything that fails to parse is dropped (there is nothing to route a reply to).

TCP responses go back on the connection the request came in on when the Via names
another port (SIP UAs often put their listening port in Via).
"""

from __future__ import annotations

import logging
import re

from aiosipua import SipRequest, SipResponse, TcpSipTransport, UdpSipTransport
from aiosipua.message import SipMessage
from aiosipua.transport import _response_destination, _stamp_via_received

log = logging.getLogger(__name__)

MAX_DATAGRAM = 32 * 1024
MAX_HEADER_LINE = 8 * 1024
_VIA = re.compile(rb"^(?:via|v)\s*:\s*SIP/2\.0/\w+\s+([^\s;:]+)(?::(\d+))?", re.I | re.M)
_ANY_VIA = re.compile(rb"^(?:via|v)[ \t]*:.*$", re.I | re.M)
_CLEN = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(.*?)[ \t]*$", re.I | re.M)


def _header_problem(data: bytes) -> str | None:
    """What makes the header section malformed (RFC 3261 §7.3, §18.3), if anything."""
    sep = data.find(b"\r\n\r\n")
    head = data if sep < 0 else data[:sep]
    if b"\x00" in head:
        return "NUL In Headers"
    for line in head.split(b"\r\n")[1:]:
        if line and line[:1] not in (b" ", b"\t") and b":" not in line:
            return "Malformed Header Line"
    for via in _ANY_VIA.findall(head):
        if not _VIA.match(via):
            return "Bad Via"
    m = _CLEN.search(head)
    if m is not None:
        value = m.group(1)
        if not value.isdigit():
            return "Bad Content-Length"
        if sep >= 0 and int(value) > len(data) - sep - 4:
            return "Content-Length Mismatch"
    return None


def _quick_400(data: bytes, reason: str) -> tuple[bytes, tuple[str, int]] | None:
    """A minimal 400 for a message we refuse to parse fully, if it names a Via."""
    head = data[:MAX_HEADER_LINE]
    if not head[:1].isalpha() or head.startswith(b"SIP/"):
        return None
    lines = {}
    for name in (b"via", b"from", b"to", b"call-id", b"cseq"):
        m = re.search(rb"^" + name + rb"\s*:\s*([^\r\n]{1,512})", head, re.I | re.M)
        if m is None:
            return None
        lines[name.decode().title()] = m.group(1)
    via = _VIA.search(head)
    if via is None:
        return None
    host, port = via.group(1).decode(errors="replace"), int(via.group(2) or 5060)
    body = b"SIP/2.0 400 " + reason.encode() + b"\r\n"
    for name, value in lines.items():
        body += name.encode() + b": " + value + b"\r\n"
    return body + b"Content-Length: 0\r\n\r\n", (host, port)


class _Guard:
    """The checks shared by both transports; runs before aiosipua's dispatch."""

    rejected: int = 0
    dropped: int = 0

    def _send_raw(self, data: bytes, addr: tuple[str, int]) -> None:
        raise NotImplementedError

    def _guarded_dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip(b"\r\n"):
            return  # CRLF keepalive
        reason: str | None = None
        if len(data) > MAX_DATAGRAM:
            reason = "Message Too Large"
        elif any(len(line) > MAX_HEADER_LINE for line in data.split(b"\n", 256)[:256]):
            reason = "Header Too Large"
        if reason is None:
            reason = _header_problem(data)
        if reason is not None:
            reply = _quick_400(data, reason)
            if reply is None:
                self.dropped += 1
            else:
                self.rejected += 1
                self._send_raw(reply[0], addr)  # symmetric, as rport (RFC 3581)
            return
        try:
            msg = SipMessage.parse(data)
            if isinstance(msg, SipRequest):
                if not msg.method.isalpha() or not msg.method.isupper():
                    raise ValueError(f"bad method {msg.method!r}")
                _stamp_via_received(msg, addr)
        except Exception as exc:
            self.dropped += 1
            log.debug("dropped unparsable SIP from %s: %s", addr, exc)
            return
        handler = getattr(self, "on_message", None)
        if handler is not None:
            try:
                handler(msg, addr)
            except Exception:
                log.exception("error handling SIP %s from %s", type(msg).__name__, addr)


class GuardedUdpTransport(_Guard, UdpSipTransport):
    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        self._guarded_dispatch(data, addr)

    def _send_raw(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._udp_transport is not None:
            self._udp_transport.sendto(data, addr)

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if self._udp_transport is None:
            return  # stopped: nothing to send on
        super().send(message, addr)


class GuardedTcpTransport(_Guard, TcpSipTransport):
    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        self._guarded_dispatch(data, addr)

    def _route(self, addr: tuple[str, int]) -> tuple[str, int]:
        if addr in self._connections:
            return addr
        for peer in self._connections:
            if peer[0] == addr[0]:
                return peer
        return addr

    def _send_raw(self, data: bytes, addr: tuple[str, int]) -> None:
        conn = self._connections.get(self._route(addr))
        if conn is not None:
            conn[1].write(data)

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        try:
            super().send(message, self._route(addr))
        except RuntimeError:
            log.warning("no TCP connection to %s for %s", addr, type(message).__name__)

    def send_reply(self, response: SipResponse) -> None:
        dest = _response_destination(response)
        if dest is not None:
            self.send(response, dest)
