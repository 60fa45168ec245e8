"""The browser softphone's hub side: browser legs as ordinary media-engine legs.

Every place the hub reaches an agent (an offered call, accept, a consult, a supervisor's
listen/whisper/barge, click to dial) goes through ``SipEndpoint.call_agent``; the endpoint
first asks :meth:`Softphone.reach`, which answers for agents whose device is not their SIP
phone:

- **browser**: the agent's open console (or supervisor page) is told over its softphone
  event stream to ring (an offer: Accept in the console answers) or to connect (the call is
  already theirs: accepted, a consult, supervision). The page POSTs its SDP offer
  (:meth:`Softphone.answer`); a worker process (``hub.softphone.worker``) holds the aiortc
  peer and bridges it by plain PCMU RTP over loopback to an RTP port of the media engine.
  The leg is a :class:`BrowserCall`: a :class:`~channels.voice.call.Call` whose signalling
  is this module instead of SIP, so hold, transfers, conference, recording and the
  supervisor modes work unchanged. It is answered once ICE and DTLS connect.
- **external**: the hub calls the agent's number through the trunk.

A lost browser connection puts the customer on hold; the page negotiates a new peer
connection on the same leg (aiortc has no ICE restart), which takes them off hold again.
If it does not within ``softphone_reconnect_seconds`` the call stays on hold and the page
says so.
"""

# ruff: noqa: ASYNC109  (reach() has the call_agent signature, timeout included)
from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import select

from channels.voice.call import Call, CallError, CallState
from channels.voice.offer_answer import PCMU
from channels.voice.sip_endpoint import CallFailed
from hub.events import agent_topic
from hub.softphone.workers import WorkerClient, WorkerGone, port_slices
from models import Agent, ControlKind

if TYPE_CHECKING:
    from channels.voice.rtp_session import RtpSession
    from hub.calls import CallService, LiveCall

log = logging.getLogger(__name__)
DEVICES = ("browser", "sip", "external")
EVENT = "softphone"


class SoftphoneError(ValueError):
    """A browser request that cannot be served; the message says why (HTTP 4xx)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class BrowserCall(Call):
    """A call leg to an agent's browser: media through a worker's loopback bridge; no SIP.

    Hold here means music towards the browser (the engine's hold source); REFER is not
    something a browser leg can do (the hub keeps transfers on the interaction)."""

    softphone: Softphone
    token: str

    async def _signal_direction(self, direction: str) -> None:
        """Nothing to signal: the hub's worker is the browser's peer, so hold is only the
        music the engine plays towards the browser, not a renegotiation."""

    async def transfer(self, target_uri: str, timeout: float = 10.0) -> int:
        raise CallError("a browser leg cannot be transferred by REFER")


@dataclass
class _Pending:
    """A browser asked to connect; resolved with the answered leg."""

    agent_id: int
    label: str
    future: asyncio.Future[Call]


@dataclass
class BrowserLeg:
    token: str
    agent_id: int
    worker: WorkerClient
    rtp: RtpSession
    call: BrowserCall
    label: str = ""
    connected: bool = False
    lost: bool = False
    held_for_loss: bool = False
    give_up: asyncio.TimerHandle | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


class Softphone:
    """Worker pool, pending connects and live browser legs of one hub process."""

    def __init__(self, calls: CallService) -> None:
        self.calls = calls
        self.services = calls.services
        self.endpoint = calls.endpoint
        self.settings = self.services.settings
        self.workers: list[WorkerClient] = []
        self.enabled = False  # start(): on with HUB_SOFTPHONE_ENABLED
        self._starting = asyncio.Lock()
        self._warming: asyncio.Task[None] | None = None
        self.pending: dict[str, _Pending] = {}
        self.legs: dict[str, BrowserLeg] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def worker_config(self, port_min: int, port_max: int) -> dict[str, Any]:
        s = self.settings
        return {
            "port_min": port_min,
            "port_max": port_max,
            "public_address": s.softphone_public_address,
            "codecs": [c.strip() for c in s.softphone_codecs.split(",") if c.strip()],
            "stun": [u.strip() for u in s.softphone_stun_urls.split(",") if u.strip()],
            "turn": {
                "url": s.softphone_turn_url,
                "username": s.softphone_turn_username,
                "password": s.softphone_turn_password,
            },
        }

    def ice_servers(self) -> list[dict[str, Any]]:
        """For the browser's RTCPeerConnection (TURN when the hub is reachable only so)."""
        s = self.settings
        servers: list[dict[str, Any]] = [
            {"urls": u.strip()} for u in s.softphone_stun_urls.split(",") if u.strip()
        ]
        if s.softphone_turn_url:
            servers.append(
                {
                    "urls": s.softphone_turn_url,
                    "username": s.softphone_turn_username,
                    "credential": s.softphone_turn_password,
                }
            )
        return servers

    async def start(self) -> None:
        """On; the worker processes start when the first browser offers (a hub whose
        agents all use SIP phones never pays for them)."""
        self.enabled = True

    def warm(self) -> None:
        """Start the workers in the background, without waiting: called when a console that
        takes calls in the browser subscribes, so its first accept does not also wait for
        a worker process to start (seconds on a loaded machine)."""
        if self.enabled and not self.workers and self._warming is None:
            self._warming = asyncio.create_task(self._warm(), name="softphone-warm")

    async def _warm(self) -> None:
        try:
            await self._ensure_workers()
        except Exception:
            log.exception("the softphone workers did not start")
        finally:
            self._warming = None

    async def _ensure_workers(self) -> None:
        async with self._starting:
            if self.workers:
                return
            s = self.settings
            count = max(1, s.softphone_workers)
            for low, high in port_slices(s.softphone_port_min, s.softphone_port_max, count):
                worker = WorkerClient(self.worker_config(low, high), self._on_event)
                await worker.start()
                self.workers.append(worker)

    async def stop(self) -> None:
        self.enabled = False
        if self._warming is not None:  # a worker being started is stopped below with the rest
            with contextlib.suppress(Exception):
                await self._warming
        for leg in list(self.legs.values()):
            with contextlib.suppress(Exception):
                await leg.call.hangup()
        for worker in self.workers:
            await worker.stop()
        self.workers.clear()

    # -- reaching an agent (SipEndpoint.call_agent asks this first) -------------------------

    async def device_of(self, extension: str) -> Agent | None:
        async with self.services.sessionmaker() as db:
            return (await db.exec(select(Agent).where(Agent.extension == extension))).first()

    async def reach(
        self,
        extension: str,
        timeout: float,
        auto_answer: bool,
        on_created: Callable[[Call], Any] | None,
    ) -> Call | None:
        """The agent's leg on their chosen device; None: their SIP phone (the caller dials)."""
        agent = await self.device_of(extension)
        if agent is None or agent.device == "sip" or agent.id is None:
            return None
        if agent.device == "external":
            return await self._external(agent, timeout, on_created)
        if not self.enabled:
            raise CallFailed(503, "the browser softphone is turned off on this hub")
        token = secrets.token_urlsafe(12)
        future: asyncio.Future[Call] = asyncio.get_running_loop().create_future()
        label = "Incoming call" if not auto_answer else "Connecting the call"
        self.pending[token] = _Pending(agent.id, label, future)
        action = "connect" if auto_answer else "ring"
        await self._tell(agent.id, action, token, label=label)
        wait = min(timeout, self.settings.softphone_connect_seconds) if auto_answer else timeout
        try:
            call = await asyncio.wait_for(asyncio.shield(future), wait)
        except TimeoutError:
            raise CallFailed(408 if auto_answer else 480, "the browser did not connect") from None
        finally:
            self.pending.pop(token, None)
            if not future.done():
                future.cancel()
                await self._tell(agent.id, "stop", token)
                self._drop_unclaimed(token)
        if on_created is not None:
            on_created(call)
        return call

    async def _external(
        self,
        agent: Agent,
        timeout: float,
        on_created: Callable[[Call], Any] | None,
    ) -> Call:
        """The agent's own number (a mobile at home) through the trunk."""
        s = self.endpoint.settings
        if not agent.device_number:
            raise CallFailed(404, "the agent's external number is not set")
        if not s.trunk_host:
            raise CallFailed(503, "no trunk is configured to call the agent's external number")
        domain = s.trunk_domain or s.trunk_host
        return await self.endpoint.dial(
            f"sip:{agent.device_number}@{domain}",
            (s.trunk_host, s.trunk_port),
            from_uri=f"sip:{s.trunk_username or 'hub'}@{domain}",
            auth=self.endpoint._trunk_auth(),
            timeout=timeout,
            on_created=on_created,
        )

    async def _tell(self, agent_id: int, action: str, token: str, **data: Any) -> None:
        with contextlib.suppress(Exception):  # a hub shutting down may have no bus left
            await self.services.bus.publish(
                agent_topic(agent_id), EVENT, action=action, token=token, **data
            )

    def _drop_unclaimed(self, token: str) -> None:
        """A leg whose browser answered after its waiter gave up: closed."""
        leg = self.legs.get(token)
        if leg is not None and not leg.connected:
            task = asyncio.create_task(leg.call.hangup())
            leg.tasks.add(task)
            task.add_done_callback(leg.tasks.discard)

    # -- the browser's offer ----------------------------------------------------------------

    async def answer(self, token: str, agent_id: int, offer_sdp: str) -> str:
        """The page's SDP offer for a pending connect (or a reconnect of its live leg);
        returns the worker's answer."""
        if "m=audio" not in offer_sdp:
            raise SoftphoneError("the offer has no audio (m=audio) section", 400)
        leg = self.legs.get(token)
        if leg is not None:
            if leg.agent_id != agent_id:
                raise SoftphoneError("this call is not yours", 403)
            if leg.call.state is CallState.ENDED:
                raise SoftphoneError("this call has ended", 410)
            reply = await self._open(leg.worker, token, offer_sdp, leg.rtp)
            # a restarted worker gave the leg a new bridge socket: the engine sends there now
            bridge = (str(reply["bridge"][0]), int(reply["bridge"][1]))
            with self.endpoint.engine.lock:
                leg.rtp.configure(bridge, PCMU, None)
            return str(reply["sdp"])
        pending = self.pending.get(token)
        if pending is None or pending.future.done():
            raise SoftphoneError("no call is waiting for this browser (it ended or moved)", 404)
        if pending.agent_id != agent_id:
            raise SoftphoneError("this call is not yours", 403)
        await self._ensure_workers()
        worker = min(self.workers, key=lambda w: w.legs)
        rtp = await self.endpoint._open_rtp()
        try:
            reply = await self._open(worker, token, offer_sdp, rtp)
        except SoftphoneError:
            self.endpoint._release_rtp(rtp)
            raise
        bridge = (str(reply["bridge"][0]), int(reply["bridge"][1]))
        with self.endpoint.engine.lock:
            rtp.configure(bridge, PCMU, None)
        call = BrowserCall(
            self.endpoint,
            f"browser-{token}",
            "outbound",
            f"browser:agent-{agent_id}",
            "sip:hub@softphone",
            rtp,
        )
        call.softphone, call.token = self, token
        leg = BrowserLeg(token, agent_id, worker, rtp, call, label=pending.label)
        self.legs[token] = leg
        worker.legs += 1
        call.add_listener(lambda _c, event: self._on_call_event(leg, event.kind))
        call._note("browser offer answered")
        return str(reply["sdp"])

    async def _open(
        self, worker: WorkerClient, token: str, sdp: str, rtp: RtpSession
    ) -> dict[str, Any]:
        try:
            await worker.ensure_running()  # a crashed worker is started again on its next use
            return await worker.request(
                "open", leg=token, sdp=sdp, engine=[rtp.local_host, rtp.local_port]
            )
        except WorkerGone as exc:
            raise SoftphoneError(f"the hub could not answer the browser: {exc}", 503) from exc

    # -- worker events ------------------------------------------------------------------------

    def _on_event(self, message: dict[str, Any]) -> None:
        leg = self.legs.get(str(message.get("leg")))
        if leg is None or message.get("event") != "state":
            return
        state = str(message.get("state"))
        if state == "connected":
            self._connected(leg)
        elif state == "failed" and leg.connected:
            self._spawn(leg, self.lost(leg.token, leg.agent_id))

    def _spawn(self, leg: BrowserLeg, coro: Any) -> None:
        task = asyncio.create_task(coro)
        leg.tasks.add(task)
        task.add_done_callback(leg.tasks.discard)

    def _connected(self, leg: BrowserLeg) -> None:
        if leg.call.state is CallState.ENDED:
            return
        if not leg.connected:
            leg.connected = True
            pending = self.pending.get(leg.token)
            if pending is None or pending.future.done():  # its waiter gave up meanwhile
                self._spawn(leg, leg.call.hangup())
                return
            leg.call._mark_answered()
            pending.future.set_result(leg.call)
            return
        if leg.lost:  # a new peer connection replaced the lost one
            leg.lost = False
            if leg.give_up is not None:
                leg.give_up.cancel()
                leg.give_up = None
            self._spawn(leg, self._back(leg))

    async def lost(self, token: str, agent_id: int) -> None:
        """The browser lost its connection: the customer goes on hold while it reconnects."""
        leg = self.legs.get(token)
        if leg is None or leg.agent_id != agent_id:
            raise SoftphoneError("no such browser call", 404)
        if leg.lost or leg.call.state is CallState.ENDED:
            return
        leg.lost = True
        live = self._live_of(leg.call)
        if live is not None and not live.customer.held:
            with contextlib.suppress(CallError):
                await live.customer.hold()
                live.customer.pause_recording()
                leg.held_for_loss = True
                await self.calls.controls._record_and_publish(
                    live, ControlKind.HOLD, None, {"why": "the agent's browser lost its connection"}
                )
        await self._tell(leg.agent_id, "lost", token)
        loop = asyncio.get_running_loop()
        leg.give_up = loop.call_later(
            self.settings.softphone_reconnect_seconds,
            lambda: self._spawn(leg, self._tell(leg.agent_id, "gave-up", token)),
        )

    async def _back(self, leg: BrowserLeg) -> None:
        live = self._live_of(leg.call)
        if leg.held_for_loss and live is not None and live.customer.held:
            leg.held_for_loss = False
            with contextlib.suppress(CallError):
                await live.customer.unhold()
                st = self.calls.controls.state.get(live.interaction_id)
                if st is None or not st.agent_paused:
                    live.customer.resume_recording()
                await self.calls.controls._record_and_publish(
                    live, ControlKind.RESUME, None, {"why": "the agent's browser reconnected"}
                )
        await self._tell(leg.agent_id, "reconnected", leg.token)

    def _live_of(self, call: Call) -> LiveCall | None:
        for live in self.calls.live.values():
            if live.agent_call is call:
                return live
        return None

    def _on_call_event(self, leg: BrowserLeg, kind: str) -> None:
        if kind != "ended":
            return
        self.legs.pop(leg.token, None)
        leg.worker.legs = max(0, leg.worker.legs - 1)
        if leg.give_up is not None:
            leg.give_up.cancel()
        self._spawn(leg, self._closed(leg))

    async def _closed(self, leg: BrowserLeg) -> None:
        with contextlib.suppress(WorkerGone):
            await leg.worker.request("close", leg=leg.token)
        await self._tell(leg.agent_id, "ended", leg.token)

    async def hangup(self, token: str, agent_id: int) -> None:
        leg = self.legs.get(token)
        if leg is None or leg.agent_id != agent_id:
            raise SoftphoneError("no such browser call", 404)
        await leg.call.hangup()
        live = self._live_of(leg.call)
        if live is not None:
            live.poke.set()

    # -- the agent's device -------------------------------------------------------------------

    def active_tokens(self, agent_id: int) -> list[dict[str, Any]]:
        """What a page opened mid-call should know (a ring, or a leg to reconnect)."""
        out = [
            {"action": "ring", "token": t, "label": p.label}
            for t, p in self.pending.items()
            if p.agent_id == agent_id and p.label == "Incoming call"
        ]
        out += [
            {"action": "connect", "token": t, "label": p.label}
            for t, p in self.pending.items()
            if p.agent_id == agent_id and p.label != "Incoming call" and t not in self.legs
        ]
        # a page opened (or reloaded) during a call negotiates that leg again
        out += [
            {"action": "resume", "token": t, "label": leg.label}
            for t, leg in self.legs.items()
            if leg.agent_id == agent_id and leg.connected
        ]
        return out
