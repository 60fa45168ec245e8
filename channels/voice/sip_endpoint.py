"""The SIP endpoint: signalling for every call, the registrar and the trunks.

Built on aiosipua's transaction/dialog layer (:class:`aiosipua.SipUAS` and
:class:`aiosipua.SipUAC`). Every message passes through :meth:`SipEndpoint._on_message`
first, which adds what a contact center's edge needs and aiosipua leaves to the
application:

- the UAS checks of RFC 3261 §8.2 in its order: an unknown method gets 501 and a known
  one we do not serve 405 with Allow (§8.2.1), a Request-URI scheme other than sip/tel
  416 (§8.2.2.1), a ``Require`` naming an extension we lack 420 with Unsupported
  (§8.2.2.3), a body we cannot read 415 with Accept (§8.2.3);
- admission of new INVITEs: trusted gateway addresses, else digest authentication
  (RFC 3261 §22), else 403; refusals like these, sent before any call exists, are a
  stateless UAS's (§8.2.7) and are not retransmitted;
- INVITE retransmissions absorbed (the transport's transaction layer answers them again,
  :mod:`channels.voice.transports`; aiosipua would start a second call for them);
- a CANCEL that crosses our final response changes nothing (§9.2): the call stays up
  until the caller's BYE; a 2xx that crosses our own CANCEL is ACKed and ended with BYE
  (§9.1, §15), so neither side is left with a half-open call;
- late offers (an INVITE without SDP): our offer goes in the 200 and the answer is
  taken from the ACK (RFC 3261 §13.2.1, RFC 3264 §5);
- REGISTER for agent phones (:mod:`channels.voice.registrar`), INFO for DTMF;
- our own re-INVITEs and REFERs on inbound dialogs (aiosipua's UAC only tracks the
  dialogs it created), including the ACK for the 2xx (RFC 3261 §13.2.2.4).
"""

# ruff: noqa: ASYNC109  (timeouts are part of the Call API the IVR drives)
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiosipua import (
    IncomingCall,
    OutgoingCall,
    Registration,
    SipDigestAuth,
    SipRequest,
    SipResponse,
    SipUAC,
    SipUAS,
    generate_branch,
    generate_call_id,
    generate_tag,
    parse_address,
    parse_sdp,
    serialize_sdp,
    stringify_uri,
)
from aiosipua.dialog import DialogState, dialog_matches
from aiosipua.refer import notify_refer
from aiosipua.transport import SipTransport

from channels.voice.call import Call, CallState
from channels.voice.digest import DigestAuthority
from channels.voice.media_engine import MediaEngine
from channels.voice.mixer import Conference
from channels.voice.offer_answer import (
    DEFAULT_DTMF_PT,
    PCMA,
    PCMU,
    MediaParams,
    OfferError,
    answer,
    build_sdp,
    parse_media,
    sdp_body,
)
from channels.voice.playback import FrameSource, PcmSource, default_moh, load_wav_8k
from channels.voice.registrar import Registrar, is_digest, stateless_response
from channels.voice.rtp_session import PortPool, RtpSession
from channels.voice.settings import VoiceSettings
from channels.voice.transports import GuardedTcpTransport, GuardedUdpTransport

log = logging.getLogger(__name__)

CallHandler = Callable[[Call], Awaitable[Any] | Any]
# (extension, timeout, auto_answer, on_created) → the answered leg, or None: use SIP
AgentDevice = Callable[[str, float, bool, Callable[[Call], Any] | None], Awaitable[Call | None]]
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY, UPDATE, PRACK, REGISTER"
SERVED = frozenset(m.strip() for m in ALLOW.split(","))
KNOWN_METHODS = SERVED | {"SUBSCRIBE", "MESSAGE", "PUBLISH"}  # RFC 3265, 3428, 3903
SCHEMES = frozenset({"sip", "tel"})  # no TLS, so no sips (RFC 3261 §26.2.2)
EXTENSIONS: frozenset[str] = frozenset()  # option tags we honour in Require (§8.2.2.3)
REINVITE_TIMEOUT = 8.0
T1, T2 = 0.5, 4.0  # RFC 3261 §17.1.1.1 timer values


class CallFailed(RuntimeError):
    """An outbound call was rejected or not answered."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class _Stack:
    name: str
    transport: SipTransport
    uas: SipUAS
    uac: SipUAC


@dataclass(slots=True)
class _Leg:
    """The SIP side of a call: which stack, and aiosipua's call object."""

    stack: _Stack
    incoming: IncomingCall | None = None
    outgoing: OutgoingCall | None = None
    session_id: int = 0
    sdp_version: int = 1
    awaiting_answer: bool = False  # our offer went in a 2xx: the answer is in the ACK


class SipEndpoint:
    """A SIP user agent for the hub: inbound calls from gateways, outbound calls through
    trunks, a registrar for agent phones, and the media engine for all of them.

    ``on_call(call)`` is invoked for each admitted inbound call; it should ring/answer
    it. Without a handler, inbound calls get 480.
    """

    def __init__(
        self,
        settings: VoiceSettings,
        on_call: CallHandler | None = None,
        user_agent: str = "ContactHub",
    ) -> None:
        self.settings = settings
        self.on_call = on_call
        self.user_agent = user_agent
        self.engine = MediaEngine(thread=settings.media_thread)
        self.ports = PortPool(settings.rtp_host, settings.rtp_port_min, settings.rtp_port_max)
        self.authority = DigestAuthority(settings.realm)
        self.registrar = Registrar(self.authority, settings.agent_credentials)
        self.calls: dict[str, Call] = {}
        self.trunk_registration: Registration | None = None
        self._legs: dict[Call, _Leg] = {}
        self._stacks: dict[str, _Stack] = {}
        self._pending_reinvites: dict[str, tuple[int, asyncio.Future[SipResponse]]] = {}
        self._transfers: dict[str, asyncio.Future[int]] = {}
        self._refers_in: dict[str, Any] = {}  # REFERs received, waiting for the final NOTIFY
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pings: dict[str, asyncio.Future[int]] = {}
        self._client_txns: dict[str, asyncio.Event] = {}  # branch → a response arrived
        self._cancelled: dict[str, tuple[_Stack, OutgoingCall]] = {}  # our CANCELled INVITEs
        self.trunk_alive: bool | None = None
        self.draining = False  # a clean shutdown: no new calls (the hub's call service sets it)
        # Asked first by call_agent: the agent's leg on another device than their SIP phone
        # (hub.softphone: the browser, or an external number); None from it: the phone.
        self.agent_device: AgentDevice | None = None
        self._moh_pcm = None
        self.port = settings.bind_port
        self.counters = {
            "invites": 0,
            "rejected_403": 0,
            "challenged": 0,
            "trunk_registered": 0,
            "trunk_pings": 0,
        }

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Bind every transport on one port. With ``bind_port`` 0 the port UDP got may
        be taken for TCP by another process: then all are closed and tried again."""
        self.engine.start()  # first: a call's RTP ports are opened on the media loop
        attempts = 8 if self.settings.bind_port == 0 else 1
        for attempt in range(attempts):
            try:
                await self._start_stacks()
                break
            except OSError:
                for stack in self._stacks.values():
                    await stack.uas.stop()
                self._stacks.clear()
                if attempt == attempts - 1:
                    await self.engine.stop()
                    raise

    async def _start_stacks(self) -> None:
        host = self.settings.bind_host
        port = self.settings.bind_port
        for name in self.settings.transports:
            transport: SipTransport
            if name == "udp":
                transport = GuardedUdpTransport(local_addr=(host, port))
            elif name == "tcp":
                transport = GuardedTcpTransport(
                    (host, port),
                    idle_timeout=self.settings.tcp_idle_timeout,
                    max_per_address=self.settings.tcp_max_connections_per_address,
                    in_use=self._connection_in_use,
                )
            else:
                raise ValueError(f"unknown SIP transport {name!r}")
            uac = SipUAC(transport, advertised_addr=None)
            uas = SipUAS(transport, user_agent=self.user_agent, uac=uac)
            stack = _Stack(name, transport, uas, uac)
            await uas.start()
            if port == 0:
                port = self._bound_port(transport)
            transport.local_addr = (self.settings.signalling_host, port)
            transport.on_message = lambda m, a, s=stack: self._on_message(s, m, a)
            uas.on_invite = lambda inc, s=stack: self._spawn(self._new_inbound(s, inc))
            uas.on_bye = self._on_bye
            uas.on_cancel = self._on_cancel
            uas.on_reinvite = lambda inc, s=stack: self._on_reinvite(s, inc)
            uas.on_options = lambda req, addr, s=stack: self._on_options(s, req)
            uas.on_refer = self._on_refer
            uas.on_transfer_progress = self._on_transfer_progress
            uas.on_ack_timeout = lambda inc: self._finish_by_id(inc.call_id, "no ACK")
            self._stacks[name] = stack
        self.port = port

    @staticmethod
    def _bound_port(transport: SipTransport) -> int:
        if isinstance(transport, GuardedUdpTransport) and transport._udp_transport:
            return int(transport._udp_transport.get_extra_info("sockname")[1])
        if isinstance(transport, GuardedTcpTransport) and transport._server:
            return int(transport._server.sockets[0].getsockname()[1])
        raise RuntimeError("transport is not bound")

    async def stop(self) -> None:
        for call in list(self.calls.values()):
            with contextlib.suppress(Exception):
                await call.hangup()
        if self.trunk_registration is not None:
            self.trunk_registration._cancel_timers()
        for task in list(self._tasks):
            task.cancel()
        await self.engine.stop()
        for stack in self._stacks.values():
            await stack.uas.stop()
        self._stacks.clear()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("voice task failed", exc_info=task.exception())

    def _connection_in_use(self, peer: tuple[str, int]) -> bool:
        """Whether a call or a registration still needs the TCP connection from ``peer``
        (an idle call sends no SIP for minutes, and its BYE needs the connection)."""
        for leg in self._legs.values():
            if leg.stack.name != "tcp":
                continue
            if leg.incoming is not None and leg.incoming.source_addr == peer:
                return True
            if leg.outgoing is not None and leg.outgoing.remote_addr == peer:
                return True
        return any(b.source == peer for b in self.registrar.bindings.values())

    @property
    def udp(self) -> _Stack:
        return self._stacks.get("udp") or next(iter(self._stacks.values()))

    # --- message intake ------------------------------------------------------------

    def _on_message(
        self, stack: _Stack, msg: SipRequest | SipResponse, addr: tuple[str, int]
    ) -> None:
        try:
            self._route(stack, msg, addr)
        except ValueError as exc:  # a header aiosipua cannot parse: drop the message
            log.info("dropped malformed %s from %s: %s", type(msg).__name__, addr, exc)

    def _route(self, stack: _Stack, msg: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if isinstance(msg, SipResponse):
            self._on_response(stack, msg, addr)
            return
        missing = [h for h in ("via", "from", "to", "call-id", "cseq") if not msg.headers.get(h)]
        if missing:
            if "via" not in missing:
                self._send_stateless(stack, stateless_response(msg, 400, "Missing Required Header"))
            return
        try:
            parsed = bool(msg.cseq and msg.from_addr and msg.to_addr and msg.via)
        except ValueError:
            parsed = False
        if not parsed:
            with contextlib.suppress(ValueError):  # no routable Via: drop
                self._send_stateless(stack, stateless_response(msg, 400, "Bad Header"))
            return
        method = msg.method
        call_id = msg.call_id or ""
        if method != "ACK" and self._refused_by_uas_checks(stack, msg):
            return
        if method == "CANCEL" and self._cancel_after_final(stack, msg):
            return
        if method == "REGISTER":
            stack.transport.send_reply(self.registrar.handle(msg, addr))
            return
        if method == "INFO":
            self._on_info(stack, msg)
            return
        ack_for: Call | None = None
        if method == "ACK":
            ack_for = self.calls.get(call_id)
            if ack_for is not None:
                ack_for._note("ACK received")
        if method == "INVITE" and not msg.to_addr.tag:
            if call_id in self.calls or call_id in stack.uas._calls:
                known = stack.uas._calls.get(call_id)
                if known is not None and known.invite.via[0].branch == msg.via[0].branch:
                    return  # a retransmission the transport no longer remembers
                # not a retransmission (the transport answers those again): another
                # transaction for a call we have, e.g. a request that forked and came
                # back by two paths (RFC 3261 §8.2.2.2: 482); one Call-ID is one call
                self._send_stateless(stack, stateless_response(msg, 482, "Loop Detected"))
                return
            self.counters["invites"] += 1
            if not self._admit(stack, msg, addr):
                return
        elif method == "INVITE" and call_id not in self.calls:
            # a "re-INVITE" for a dialog we do not have must not become a new call that
            # skipped admission (aiosipua would create one): 481 (RFC 3261 §12.2.2)
            self._send_stateless(
                stack, stateless_response(msg, 481, "Call/Transaction Does Not Exist")
            )
            return
        stack.uas._handle_request(msg, addr)
        if ack_for is not None:
            self._on_ack(ack_for, msg)

    @staticmethod
    def _send_stateless(stack: _Stack, response: SipResponse) -> None:
        """Answer as a stateless UAS (RFC 3261 §8.2.7): a retransmitted request gets the
        response again, but it is never retransmitted on its own, so a scanner spraying
        INVITEs from forged addresses gets one 403 per INVITE, not seven."""
        send = getattr(stack.transport, "send_stateless", stack.transport.send_reply)
        send(response)

    def _refused_by_uas_checks(self, stack: _Stack, msg: SipRequest) -> bool:
        """RFC 3261 §8.2.1-§8.2.3, in that order; ``True`` when a response was sent."""
        method = msg.method
        status: tuple[int, str] | None = None
        extra: dict[str, str] = {}
        if method not in SERVED:
            if method in KNOWN_METHODS:
                status, extra = (405, "Method Not Allowed"), {"Allow": ALLOW}
            else:
                status = (501, "Not Implemented")  # RFC 3261 §21.5.2
        elif msg.uri.split(":", 1)[0].lower() not in SCHEMES:
            status = (416, "Unsupported URI Scheme")
        elif method != "CANCEL":
            required = [t for v in msg.headers.get("require") for t in v.split(",") if t.strip()]
            unknown = [t.strip() for t in required if t.strip().lower() not in EXTENSIONS]
            if unknown:
                status, extra = (420, "Bad Extension"), {"Unsupported": ", ".join(unknown)}
            elif method == "INVITE" and msg.body and sdp_body(msg) is None:
                status, extra = (415, "Unsupported Media Type"), {"Accept": "application/sdp"}
        if status is None:
            return False
        resp = stateless_response(msg, *status)
        for name, value in extra.items():
            resp.headers.set_single(name, value)
        self._send_stateless(stack, resp)
        return True

    def _cancel_after_final(self, stack: _Stack, cancel: SipRequest) -> bool:
        """A CANCEL for an INVITE we already answered finally (RFC 3261 §9.2): 200 for
        the CANCEL and nothing else. aiosipua would end an answered call here, leaving
        the caller, who ACKs our 200, in a call we no longer have."""
        inc = stack.uas._calls.get(cancel.call_id or "")
        if inc is None:
            return False  # no such transaction: aiosipua answers 481
        if not inc._answered and inc.dialog.state is not DialogState.TERMINATED:
            return False  # still ringing: aiosipua answers 200 and 487
        stack.transport.send_reply(inc.dialog.create_response(cancel, 200, "OK"))
        call = self.calls.get(inc.call_id)
        if call is not None:
            call._note("CANCEL after the final response: 200, no effect")
        return True

    def _on_ack(self, call: Call, ack: SipRequest) -> None:
        """The ACK of a late-offer call carries the answer to our offer (RFC 3264 §5,
        RFC 3261 §13.2.1). Without a usable answer there is no session: BYE."""
        leg = self._legs.get(call)
        if leg is None or not leg.awaiting_answer or leg.incoming is None:
            return
        if not dialog_matches(leg.incoming.dialog, ack):
            return
        leg.awaiting_answer = False
        try:
            media = parse_media(sdp_body(ack) or "")
        except OfferError as exc:
            call._note(f"ACK without a usable SDP answer ({exc}): hanging up")
            self._spawn(call.hangup())
            return
        self._apply_media(call, media)
        call.inband_dtmf = media.dtmf_payload_type is None
        call._note("SDP answer received in the ACK")

    def _admit(self, stack: _Stack, request: SipRequest, addr: tuple[str, int]) -> bool:
        """Inbound calls come only from trusted gateways, authenticated ones, or an agent's
        registered phone placing a call, with its extension's digest (RFC 3261 §22.2)."""
        extension = self._calling_phone(request, addr)
        if extension is not None:
            password = self.registrar.passwords[extension]
            return self._digest_admits(stack, request, {extension: password})
        if addr[0] in self.settings.trusted_gateways:
            return True
        return self._digest_admits(stack, request, self.settings.gateway_credentials)

    def _calling_phone(self, request: SipRequest, addr: tuple[str, int]) -> str | None:
        """The extension whose registered phone sent this INVITE: its From names the
        extension and it comes from where the phone registered from or is reached at."""
        sender = request.from_addr
        user = sender.uri.user if sender is not None and sender.uri is not None else None
        if not user or user not in self.registrar.passwords:
            return None
        binding = self.registrar.lookup(user)
        if binding is None or addr not in (binding.source, binding.contact_addr):
            return None
        return user

    def _digest_admits(
        self, stack: _Stack, request: SipRequest, creds: dict[str, str] | None
    ) -> bool:
        """Challenge a request without credentials (401), admit one whose digest is right,
        refuse the rest (403)."""
        authorization = request.get_header("authorization")
        if not is_digest(authorization):
            authorization = None  # an unknown scheme: challenged as if absent (§22.1)
        if creds and not authorization:
            self.counters["challenged"] += 1
            resp = stateless_response(request, 401, "Unauthorized")
            resp.headers.set_single("WWW-Authenticate", self.authority.challenge())
            self._send_stateless(stack, resp)
            return False
        if creds and authorization:
            user, stale = self.authority.verify(authorization, "INVITE", creds)
            if user is not None:
                return True
            if stale:
                resp = stateless_response(request, 401, "Unauthorized")
                resp.headers.set_single("WWW-Authenticate", self.authority.challenge(stale=True))
                self._send_stateless(stack, resp)
                return False
        self.counters["rejected_403"] += 1
        self._send_stateless(stack, stateless_response(request, 403, "Forbidden"))
        return False

    def _on_response(self, stack: _Stack, resp: SipResponse, addr: tuple[str, int]) -> None:
        call_id = resp.call_id or ""
        cseq = resp.cseq
        vias = resp.via
        answered = self._client_txns.get(vias[0].branch or "") if vias else None
        if answered is not None:
            answered.set()
        ping = self._pings.get(call_id)
        if ping is not None:
            if not ping.done() and resp.status_code >= 200:
                ping.set_result(resp.status_code)
            return
        pending = self._pending_reinvites.get(call_id)
        if pending is not None and cseq is not None and cseq.method.upper() == "INVITE":
            seq, future = pending
            if cseq.seq == seq and resp.status_code >= 200:
                call = self.calls.get(call_id)
                leg = self._legs.get(call) if call is not None else None
                if leg is not None and leg.incoming is not None and resp.status_code < 300:
                    self._ack_reinvite(leg, seq)
                if not future.done():
                    future.set_result(resp)
                if leg is not None and leg.incoming is not None:
                    return
        stack.uac.handle_response(resp, addr)
        if (
            call_id in self._cancelled
            and cseq is not None
            and cseq.method == "INVITE"
            and resp.status_code >= 200
        ):
            self._after_cancel(call_id, resp)

    def _retransmit(self, stack: _Stack, request: SipRequest, dest: tuple[str, int]) -> None:
        """Retransmit a request we sent over UDP until a response to its branch arrives
        (RFC 3261 §17.1.1.2 Timer A for INVITE, §17.1.2.2 Timer E otherwise), for at most
        64×T1. aiosipua's UAC sends each request once; a lost BYE or INVITE would
        otherwise be lost for good."""
        if stack.transport.reliable:
            return
        vias = request.via
        branch = vias[0].branch if vias else None
        if not branch:
            return
        answered = asyncio.Event()
        self._client_txns[branch] = answered
        invite = request.method.upper() == "INVITE"

        async def timer() -> None:
            interval, elapsed = T1, 0.0
            try:
                while elapsed < 64 * T1:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(answered.wait(), interval)
                        return
                    elapsed += interval
                    stack.transport.send(request, dest)
                    interval = interval * 2 if invite else min(interval * 2, T2)
            finally:
                self._client_txns.pop(branch, None)

        self._spawn(timer())

    # --- inbound calls -----------------------------------------------------------------

    def _new_rtp(self, port: int) -> RtpSession:
        s = self.settings
        return RtpSession(
            s.rtp_host,
            port,
            prefill=s.jitter_prefill_frames,
            max_frames=s.max_jitter_frames,
            symmetric=s.symmetric_rtp,
            lock=self.engine.lock,
        )

    async def _new_inbound(self, stack: _Stack, inc: IncomingCall) -> None:
        call_id = inc.call_id
        offer = sdp_body(inc.invite)
        media: MediaParams | None = None
        if offer is not None:  # else a late offer: ours goes in the 200
            try:
                media = parse_media(offer)
            except OfferError as exc:
                inc.reject(488, "Not Acceptable Here")
                log.info("488 for %s: %s", call_id, exc)
                return
        try:
            rtp = await self._open_rtp()
        except RuntimeError:
            inc.reject(503, "Service Unavailable")
            return
        if stack.uas._calls.get(call_id) is not inc:  # cancelled meanwhile
            self._release_rtp(rtp)
            return
        if media is not None:
            rtp.configure(media.remote_addr, media.payload_type, media.dtmf_payload_type)
        call = Call(self, call_id, "inbound", inc.caller, inc.callee, rtp)
        call.phone_extension = self._calling_phone(inc.invite, inc.source_addr)
        call.media = media
        call.inband_dtmf = media is not None and media.dtmf_payload_type is None
        call._note(f"INVITE received from {inc.source_addr[0]}:{inc.source_addr[1]}")
        call._note("100 Trying sent")
        self._legs[call] = _Leg(stack, incoming=inc, session_id=int(time.time() * 1000) % 10**9)
        self.calls[call_id] = call
        if self.on_call is None:
            await call.reject(480, "Temporarily Unavailable")
            return
        self._spawn(self._run_handler(call))

    async def _run_handler(self, call: Call) -> None:
        """Run ``on_call``; a handler that fails must not leave the caller hanging."""
        try:
            result = self.on_call(call) if self.on_call is not None else None
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception("call handler failed for %s", call.call_id)
            if call.state in (CallState.RINGING, CallState.EARLY):
                await call.reject(500, "Server Internal Error")
            else:
                await call.hangup()

    def _answer_sdp(self, call: Call, leg: _Leg) -> str:
        assert call.media is not None and call.rtp is not None
        return answer(
            call.media,
            self.settings.sdp_host,
            call.rtp.local_port,
            leg.session_id,
            leg.sdp_version,
        )

    def _send_ringing(self, call: Call) -> None:
        leg = self._legs[call]
        if leg.incoming is not None:
            leg.incoming.ringing()
            call._note("180 Ringing sent")

    def _offer_sdp(self, call: Call, leg: _Leg) -> str:
        """Our offer for a late-offer call: every codec we speak (RFC 3264 §5)."""
        assert call.rtp is not None
        return build_sdp(
            self.settings.sdp_host,
            call.rtp.local_port,
            (PCMU, PCMA),
            DEFAULT_DTMF_PT,
            "sendrecv",
            leg.session_id,
            leg.sdp_version,
        )

    def _send_early_media(self, call: Call) -> None:
        leg = self._legs[call]
        if leg.incoming is None:
            return
        if call.media is None:
            # no offer yet, and an offer may not ride an unreliable 183 (RFC 3261 §13.2.1)
            leg.incoming._send_response(183, "Session Progress")
            call._note("183 Session Progress sent (late offer: no SDP)")
            return
        leg.incoming._send_response(
            183,
            "Session Progress",
            body=self._answer_sdp(call, leg),
            content_type="application/sdp",
        )
        call._note("183 Session Progress sent (early media)")

    def _send_answer(self, call: Call) -> None:
        leg = self._legs[call]
        if leg.incoming is None:
            return
        if call.media is None:
            leg.awaiting_answer = True
            leg.incoming.accept(parse_sdp(self._offer_sdp(call, leg)))
            call._note("200 OK sent with our offer (late offer)")
            return
        leg.incoming.accept(parse_sdp(self._answer_sdp(call, leg)))
        call._note("200 OK sent")

    def _send_reject(self, call: Call, status: int, reason: str) -> None:
        leg = self._legs.get(call)
        if leg is not None and leg.incoming is not None:
            leg.incoming.reject(status, reason)
            call._note(f"{status} sent")

    def _send_hangup(self, call: Call) -> None:
        leg = self._legs.get(call)
        if leg is None:
            return
        if leg.incoming is not None:
            if call.state is CallState.ANSWERED:
                leg.incoming._stop_retransmissions()
                bye = leg.incoming.hangup()
                if bye is not None:
                    self._retransmit(leg.stack, bye, leg.incoming.source_addr)
                leg.stack.uas._calls.pop(call.call_id, None)
                leg.stack.uas._remove_invite_transaction(leg.incoming.invite)
                call._note("BYE sent")
            else:
                leg.incoming.reject(480, "Temporarily Unavailable")
                call._note("480 sent")
        elif leg.outgoing is not None:
            if call.state is CallState.ANSWERED:
                bye = leg.outgoing.hangup(leg.stack.uac)
                if bye is not None:
                    self._retransmit(leg.stack, bye, leg.outgoing.remote_addr)
                call._note("BYE sent")
            else:
                self._cancel(leg.stack, leg.outgoing)
                call._note("CANCEL sent")

    def _cancel(self, stack: _Stack, out: OutgoingCall) -> None:
        """CANCEL our INVITE (RFC 3261 §9.1) and remember it: a 2xx that crosses the
        CANCEL still sets up a call at the far end, which must then be ACKed and ended
        with BYE (§15), or the phone would be left in a call nobody is on."""
        with contextlib.suppress(ValueError):
            cancel = out.cancel(stack.uac)
            if cancel is not None:
                self._retransmit(stack, cancel, out.remote_addr)
        self._cancelled[out.call_id] = (stack, out)
        asyncio.get_running_loop().call_later(64 * T1, self._cancelled.pop, out.call_id, None)

    def _after_cancel(self, call_id: str, resp: SipResponse) -> None:
        """The final response to an INVITE we CANCELled. aiosipua forgets the call at
        the CANCEL, so a crossing 2xx is ACKed (§13.2.2.4) and ended with BYE here."""
        stack, out = self._cancelled.pop(call_id)
        if not 200 <= resp.status_code < 300 or resp.cseq is None:
            return  # a non-2xx: the transport ACKs it (§17.1.1.3)
        invite = out.invite
        contacts = resp.headers.get("contact")
        target = invite.uri
        if contacts:
            with contextlib.suppress(ValueError):
                target = stringify_uri(parse_address(contacts[0]).uri)
        routes = list(reversed(resp.headers.get("record-route")))
        local = stack.transport.local_addr

        def request(method: str, seq: int) -> SipRequest:
            req = SipRequest(method=method, uri=target)
            req.headers.append(
                "Via",
                f"SIP/2.0/{stack.name.upper()} {local[0]}:{local[1]}"
                f";branch={generate_branch()};rport",
            )
            req.headers.set_single("Max-Forwards", "70")
            req.headers.set_single("From", invite.headers.get_first("from") or "")
            req.headers.set_single("To", resp.headers.get_first("to") or "")
            req.headers.set_single("Call-ID", call_id)
            req.headers.set_single("CSeq", f"{seq} {method}")
            for route in routes:
                req.headers.append("Route", route)
            return req

        stack.transport.send(request("ACK", resp.cseq.seq), out.remote_addr)
        bye = request("BYE", resp.cseq.seq + 1)
        stack.transport.send(bye, out.remote_addr)
        self._retransmit(stack, bye, out.remote_addr)
        log.info("2xx crossed our CANCEL on %s: ACKed and ended with BYE", call_id)

    def _on_bye(self, inc: IncomingCall, request: SipRequest) -> None:
        call = self.calls.get(inc.call_id)
        if call is not None:
            call._note("BYE received, 200 OK sent")
            call._finish("remote hangup")

    def _on_cancel(self, request: SipRequest, addr: tuple[str, int]) -> None:
        call = self.calls.get(request.call_id or "")
        if call is not None:
            call._note("CANCEL received, 487 sent")
            call._finish("cancelled")

    def _finish_by_id(self, call_id: str, reason: str) -> None:
        call = self.calls.get(call_id)
        if call is not None:
            call._finish(reason)

    def _on_options(self, stack: _Stack, request: SipRequest) -> None:
        """OPTIONS (keepalive/capabilities, RFC 3261 §11): 200 with what we support, or
        503 while draining, as an INVITE would get (§11.2): a load balancer's probe
        (Kamailio's dispatcher) then takes this node out of rotation."""
        if self.draining:
            resp = stateless_response(request, 503, "Service Unavailable")
            resp.headers.set_single("Retry-After", "30")
            stack.transport.send_reply(resp)
            return
        resp = stateless_response(request, 200, "OK")
        resp.headers.set_single("Allow", ALLOW)
        resp.headers.set_single("Accept", "application/sdp")
        resp.headers.set_single("User-Agent", self.user_agent)
        stack.transport.send_reply(resp)

    def _on_info(self, stack: _Stack, request: SipRequest) -> None:
        """DTMF in SIP INFO (application/dtmf-relay ``Signal=5`` or application/dtmf)."""
        call = self.calls.get(request.call_id or "")
        leg = self._legs.get(call) if call is not None else None
        if call is None or leg is None:
            stack.transport.send_reply(stateless_response(request, 481, "Call Does Not Exist"))
            return
        dialog = (leg.incoming or leg.outgoing).dialog  # type: ignore[union-attr]
        stack.transport.send_reply(dialog.create_response(request, 200, "OK"))
        ctype = (request.content_type or "").lower()
        text = request.text.strip()
        digit = ""
        if "dtmf-relay" in ctype:
            for line in text.splitlines():
                key, _, value = line.partition("=")
                if key.strip().lower() == "signal":
                    digit = value.strip()
        elif ctype.startswith("application/dtmf"):
            digit = text
        if len(digit) == 1 and digit.upper() in "0123456789*#ABCD":
            call._on_digit(digit.upper(), "info")

    # --- re-INVITE (hold) ------------------------------------------------------------

    def _on_reinvite(self, stack: _Stack, inc: IncomingCall) -> None:
        """A re-INVITE from the party: new media parameters, maybe hold (RFC 3264 §8)."""
        call = self.calls.get(inc.call_id)
        if call is None or call.rtp is None:
            inc.reject(481, "Call Does Not Exist")
            return
        leg = self._legs[call]
        offer = sdp_body(inc.invite)
        if offer is None:
            # a re-INVITE without SDP asks for our offer; the answer comes in the ACK
            # (RFC 3261 §14.2, RFC 3264 §8)
            leg.sdp_version += 1
            sdp = self._offer_sdp(call, leg) if call.media is None else self._answer_sdp(call, leg)
            leg.awaiting_answer = leg.incoming is not None
            inc.accept(parse_sdp(sdp))
            call._note("re-INVITE without SDP received, 200 OK sent with our offer")
            return
        try:
            media = parse_media(offer)
        except OfferError:
            leg_call = leg.incoming or inc
            leg_call._send_response(488, "Not Acceptable Here")
            return
        self._apply_media(call, media)
        leg.sdp_version += 1
        inc.accept(parse_sdp(self._answer_sdp(call, leg)))
        call._note("re-INVITE received, 200 OK sent")

    def _apply_media(self, call: Call, media: MediaParams) -> None:
        assert call.rtp is not None
        was_held = call.remote_held
        call.media = media
        with self.engine.lock:  # the media thread reads these per packet and per tick
            call.rtp.configure(media.remote_addr, media.payload_type, media.dtmf_payload_type)
            call.rtp.send_enabled = media.direction in ("sendrecv", "recvonly") and (
                media.remote_addr[0] != "0.0.0.0"  # noqa: S104 (comparison, not a bind)
            )
        call.remote_held = media.remote_on_hold
        if call.remote_held != was_held:
            call._emit("remote_hold" if call.remote_held else "remote_unhold")

    async def _reinvite(self, call: Call, direction: str) -> None:
        """Our re-INVITE offering ``direction`` (hold = sendonly, RFC 3264 §8.4)."""
        leg = self._legs[call]
        if call.rtp is None or call.media is None:
            return
        leg.sdp_version += 1
        sdp = build_sdp(
            self.settings.sdp_host,
            call.rtp.local_port,
            (call.media.payload_type,),
            call.media.dtmf_payload_type,
            direction,
            leg.session_id,
            leg.sdp_version,
        )
        future: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        if leg.incoming is not None:
            inc = leg.incoming
            addr = leg.stack.transport.local_addr
            req = inc.dialog.create_request("INVITE", via_host=addr[0], via_port=addr[1])
            req.headers.set_single("Contact", f"<sip:{addr[0]}:{addr[1]}>")
            req.headers.set_single("Content-Type", "application/sdp")
            req.text = sdp
            assert req.cseq is not None
            self._pending_reinvites[call.call_id] = (req.cseq.seq, future)
            leg.stack.transport.send(req, inc.source_addr)
            self._retransmit(leg.stack, req, inc.source_addr)
        elif leg.outgoing is not None:
            req = leg.stack.uac.send_reinvite(
                leg.outgoing.dialog, parse_sdp(sdp), leg.outgoing.remote_addr
            )
            self._retransmit(leg.stack, req, leg.outgoing.remote_addr)
            assert req.cseq is not None
            self._pending_reinvites[call.call_id] = (req.cseq.seq, future)
        call._note(f"re-INVITE sent ({direction})")
        try:
            resp = await asyncio.wait_for(future, REINVITE_TIMEOUT)
        except TimeoutError:
            call._note("re-INVITE timed out")
            return
        finally:
            self._pending_reinvites.pop(call.call_id, None)
        call._note(f"re-INVITE answered {resp.status_code}")
        if 200 <= resp.status_code < 300 and resp.body:
            with contextlib.suppress(OfferError):
                media = parse_media(resp.text)
                self._apply_media(call, media)
                # we stay the sender of music while the party is on hold
                with self.engine.lock:
                    if call.rtp is not None:
                        call.rtp.send_enabled = True

    def _ack_reinvite(self, leg: _Leg, seq: int) -> None:
        """ACK for the 2xx to our re-INVITE on an inbound dialog (RFC 3261 §13.2.2.4)."""
        inc = leg.incoming
        assert inc is not None
        addr = leg.stack.transport.local_addr
        ack = inc.dialog.create_request("ACK", via_host=addr[0], via_port=addr[1])
        inc.dialog.local_cseq -= 1  # the ACK reuses the INVITE's CSeq number
        ack.headers.set_single("CSeq", f"{seq} ACK")
        leg.stack.transport.send(ack, inc.source_addr)

    # --- REFER (blind transfer out, RFC 3515) -------------------------------------

    async def _refer(self, call: Call, target: str, timeout: float) -> int:
        leg = self._legs[call]
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._transfers[call.call_id] = future
        if leg.incoming is not None:
            inc = leg.incoming
            addr = leg.stack.transport.local_addr
            req = inc.dialog.create_request("REFER", via_host=addr[0], via_port=addr[1])
            req.headers.set_single("Contact", f"<sip:{addr[0]}:{addr[1]}>")
            req.headers.set_single("Refer-To", f"<{target}>")
            req.headers.set_single("Referred-By", f"<{inc.callee}>")
            leg.stack.transport.send(req, inc.source_addr)
            self._retransmit(leg.stack, req, inc.source_addr)
        elif leg.outgoing is not None:
            req = leg.stack.uac.send_refer(leg.outgoing.dialog, target, leg.outgoing.remote_addr)
            self._retransmit(leg.stack, req, leg.outgoing.remote_addr)
        call._note(f"REFER sent to {target}")
        try:
            status = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            status = 408
        finally:
            self._transfers.pop(call.call_id, None)
        call._emit("transfer", target=target, status=status)
        if 200 <= status < 300:
            await call.hangup()
        return status

    def _on_transfer_progress(self, call_id: str, status: int, reason: str) -> None:
        call = self.calls.get(call_id)
        if call is not None:
            call._note(f"NOTIFY transfer {status} {reason}")
        future = self._transfers.get(call_id)
        if future is not None and status >= 200 and not future.done():
            future.set_result(status)

    def _on_refer(self, inc: IncomingCall, target: str) -> None:
        """A party asking us to transfer it (REFER in): reported, not acted on here; the
        application answers with ``Call.answer_refer`` (the final NOTIFY)."""
        call = self.calls.get(inc.call_id)
        if call is None:
            notify_refer(inc, 481, "Call/Transaction Does Not Exist")
            return
        self._refers_in[call.call_id] = inc
        call._note(f"REFER received to {target}")
        call._emit("refer_requested", target=target)

    def _answer_refer(self, call: Call, status: int, reason: str) -> bool:
        """The final NOTIFY for the party's REFER (RFC 3515 §2.4.5)."""
        inc = self._refers_in.pop(call.call_id, None)
        if inc is None or call.state is CallState.ENDED:
            return False
        notify_refer(inc, status, reason, final=True)
        call._note(f"NOTIFY sent: their REFER ended {status} {reason}".rstrip())
        return True

    # --- outbound calls (UAC) ------------------------------------------------------

    async def dial(
        self,
        target_uri: str,
        remote_addr: tuple[str, int],
        *,
        from_uri: str | None = None,
        auth: SipDigestAuth | None = None,
        timeout: float = 30.0,
        transport: str = "udp",
        headers: dict[str, str] | None = None,
        on_created: Callable[[Call], Any] | None = None,
    ) -> Call:
        """Call ``target_uri`` via ``remote_addr`` (a trunk, or a registered phone).

        Returns the answered :class:`Call`; raises :class:`CallFailed` on a final
        non-2xx or when nobody answers within ``timeout`` (the INVITE is CANCELled, RFC
        3261 §9.1). Cancelling the awaiting task CANCELs the INVITE too. ``headers`` go
        into the INVITE (e.g. ``Call-Info: answer-after=0``); ``on_created`` gets the
        ringing :class:`Call` as soon as the INVITE is sent (its Call-ID, for the record).
        """
        stack = self._stacks[transport]
        rtp = await self._open_rtp()
        addr = stack.transport.local_addr
        from_uri = from_uri or f"sip:hub@{addr[0]}:{addr[1]}"
        session_id = int(time.time() * 1000) % 10**9
        offer = build_sdp(
            self.settings.sdp_host,
            rtp.local_port,
            (PCMU, PCMA),
            DEFAULT_DTMF_PT,
            "sendrecv",
            session_id,
            1,
        )
        out = stack.uac.send_invite(
            from_uri,
            target_uri,
            remote_addr,
            parse_sdp(offer),
            auth=auth,
            user_agent=self.user_agent,
            extra_headers=headers,
        )
        self._retransmit(stack, out.invite, remote_addr)
        call = Call(self, out.call_id, "outbound", target_uri, from_uri, rtp)
        self._legs[call] = _Leg(stack, outgoing=out, session_id=session_id)
        self.calls[out.call_id] = call
        call._note(f"INVITE sent to {target_uri} via {remote_addr[0]}:{remote_addr[1]}")

        def ringing(o: OutgoingCall) -> None:
            call._note("ringing")
            call._emit("ringing")

        out.on_ringing = ringing
        if on_created is not None:
            on_created(call)
        try:
            await out.wait_answered(timeout)
        except asyncio.CancelledError:
            if call.state is not CallState.ENDED:
                await call.hangup()  # CANCEL while ringing, BYE if the 200 just came
            raise
        except TimeoutError:
            self._cancel(stack, out)
            call._finish("no answer")
            raise CallFailed(408, "no answer") from None
        except RuntimeError:
            call._finish(f"rejected {out._reject_code}")
            raise CallFailed(out._reject_code, out._reject_reason) from None
        call._note("200 OK received, ACK sent")
        if out.sdp_answer is not None:
            try:
                self._apply_media(call, parse_media(serialize_sdp(out.sdp_answer)))
            except OfferError:
                await call.hangup()
                raise CallFailed(488, "unusable SDP answer") from None
        call.inband_dtmf = call.media is not None and call.media.dtmf_payload_type is None
        call._mark_answered()
        return call

    async def call_agent(
        self,
        extension: str,
        timeout: float = 30.0,
        *,
        auto_answer: bool = False,
        on_created: Callable[[Call], Any] | None = None,
    ) -> Call:
        """Ring a registered agent phone (see :attr:`registrar`).

        ``auto_answer`` asks the phone to pick up at once (``Call-Info: answer-after=0``,
        the draft-ietf-sip-answermode convention that Linphone, MicroSIP and Zoiper
        follow); a phone that ignores it rings as usual."""
        if self.agent_device is not None:  # the agent's browser or external number
            call = await self.agent_device(extension, timeout, auto_answer, on_created)
            if call is not None:
                return call
        binding = self.registrar.lookup(extension)
        if binding is None:
            raise CallFailed(480, f"extension {extension} is not registered")
        headers = {"Call-Info": f"<{binding.contact}>;answer-after=0"} if auto_answer else None
        return await self.dial(
            binding.contact, binding.target, timeout=timeout, headers=headers, on_created=on_created
        )

    def _trunk_auth(self) -> SipDigestAuth | None:
        s = self.settings
        return SipDigestAuth(s.trunk_username, s.trunk_password) if s.trunk_username else None

    async def dial_trunk(self, number: str, timeout: float = 30.0) -> Call:
        """An outbound call through the configured trunk (callbacks, campaigns)."""
        s = self.settings
        if not s.trunk_host:
            raise CallFailed(503, "no trunk configured")
        domain = s.trunk_domain or s.trunk_host
        from_uri = f"sip:{s.trunk_username or 'hub'}@{domain}"
        return await self.dial(
            f"sip:{number}@{domain}",
            (s.trunk_host, s.trunk_port),
            from_uri=from_uri,
            auth=self._trunk_auth(),
            timeout=timeout,
        )

    async def register_trunk(self, timeout: float = 10.0) -> Registration:
        """REGISTER to the provider with digest auth; aiosipua refreshes it at 90 % of
        the granted interval (RFC 3261 §10.2.4)."""
        s = self.settings
        domain = s.trunk_domain or s.trunk_host
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        reg = Registration(
            self.udp.uac,
            f"sip:{s.trunk_username}@{domain}",
            (s.trunk_host, s.trunk_port),
            expires=s.trunk_register_expires,
            auth=self._trunk_auth(),
            user_agent=self.user_agent,
        )

        def ok(r: Registration) -> None:
            self.counters["trunk_registered"] += 1
            if not done.done():
                done.set_result(True)

        def failed(r: Registration, status: int, reason: str) -> None:
            if not done.done():
                done.set_exception(CallFailed(status, reason))

        reg.on_registered = ok
        reg.on_failed = failed
        self.trunk_registration = reg
        reg.register()
        await asyncio.wait_for(done, timeout)
        return reg

    async def ping(self, addr: tuple[str, int], timeout: float = 2.0) -> int | None:
        """Send an OPTIONS (RFC 3261 §11) and return the response status, or ``None``
        when nothing answers within ``timeout``."""
        stack = self.udp
        local = stack.transport.local_addr
        request = SipRequest(method="OPTIONS", uri=f"sip:{addr[0]}:{addr[1]}")
        request.headers.append(
            "Via", f"SIP/2.0/UDP {local[0]}:{local[1]};branch={generate_branch()};rport"
        )
        call_id = generate_call_id(local[0])
        request.headers.set_single("From", f"<sip:hub@{local[0]}:{local[1]}>;tag={generate_tag()}")
        request.headers.set_single("To", f"<sip:{addr[0]}:{addr[1]}>")
        request.headers.set_single("Call-ID", call_id)
        request.headers.set_single("CSeq", "1 OPTIONS")
        request.headers.set_single("Max-Forwards", "70")
        request.headers.set_single("User-Agent", self.user_agent)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pings[call_id] = future
        try:
            stack.transport.send(request, addr)
            self._retransmit(stack, request, addr)
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            self._pings.pop(call_id, None)

    def start_trunk_keepalive(self, interval: float = 30.0) -> None:
        """OPTIONS to the trunk every ``interval`` s; :attr:`trunk_alive` tracks the
        answers (any response means the provider is reachable)."""

        async def loop() -> None:
            target = (self.settings.trunk_host, self.settings.trunk_port)
            while True:
                status = await self.ping(target, timeout=min(interval, 5.0))
                self.trunk_alive = status is not None
                self.counters["trunk_pings"] += 1
                await asyncio.sleep(interval)

        self._spawn(loop())

    # --- conferences, music, teardown (used by Call) ------------------------------

    def _new_conference(self) -> Conference[Call]:
        conf: Conference[Call] = Conference()
        with self.engine.lock:
            self.engine.conferences.add(conf)
        return conf

    def _drop_conference(self, conf: Conference[Call]) -> None:
        with self.engine.lock:
            self.engine.conferences.discard(conf)

    def _moh_source(self) -> FrameSource:
        if self._moh_pcm is None:
            path = self.settings.moh_wav
            self._moh_pcm = load_wav_8k(path) if path is not None else default_moh()
        return PcmSource(self._moh_pcm, loop=True)

    def _invite_headers(self, call: Call) -> dict[str, str]:
        leg = self._legs.get(call)
        sip = None if leg is None else (leg.incoming or leg.outgoing)
        if sip is None:
            return {}
        return {name: values[0] for name, values in sip.invite.headers.items() if values}

    async def _open_rtp(self) -> RtpSession:
        """An RTP port, bound on the media loop so its packets are handled there."""
        return await self.engine.run(self.ports.open(self._new_rtp))

    def _release_rtp(self, rtp: RtpSession) -> None:
        """Close the port on the media loop (the call has left the engine already)."""
        self.engine.submit(self.ports.release, rtp)

    def _forget(self, call: Call) -> None:
        self.calls.pop(call.call_id, None)
        self._refers_in.pop(call.call_id, None)
        leg = self._legs.pop(call, None)
        if leg is not None and leg.incoming is not None:
            leg.incoming._stop_retransmissions()
            if leg.stack.uas._calls.get(call.call_id) is leg.incoming:
                # rejected or cancelled: nothing in aiosipua waits for this call any more
                # (the transport's transaction still absorbs retransmissions and the ACK)
                leg.stack.uas._calls.pop(call.call_id, None)
                leg.stack.uas._remove_invite_transaction(leg.incoming.invite)
