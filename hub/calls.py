"""The call service: SIP calls become voice interactions on the one conversation lifecycle.

An admitted INVITE (``channels.voice.SipEndpoint`` already refused unknown gateways with
403) goes through these steps, each committed before it is published:

1. its DNIS names a voice inbox (else 404), the caller's E.164 number finds or creates the
   contact, and a new interaction with its customer ``CallLeg`` is stored;
2. the call is answered once the self-service step is ready (``ready_to_answer``: it rings
   while the IVR's engines still load), and recorded in stereo (``Recording``), the caller
   on the left;
   a blocked contact hears the inbox's block prompt and is hung up;
3. the **self-service step** runs (``CallService.self_service``: the inbox's dialog on a
   voice port, plugged in by the integrator); its ``QueueRequest`` queues the call through
   ``RoutingService.enqueue``, and the caller hears music on hold, with their place in the
   queue and the estimated wait every ``Queue.announce_seconds``;
4. from then on ``LiveCall`` follows the interaction's state, which routing owns exactly as
   for chats: an offer rings the agent's registered phone; the phone picking up accepts the
   offer; accepting in the console calls the phone again with ``answer-after=0``; a
   rejected or missed offer stops the ringing; on answer caller and agent are bridged;
5. either side hanging up ends the call: abandoned while waiting (``RoutingService.abandon``),
   wrap-up once an agent had it (``RoutingService.wrap_up``); when the agent hangs up and
   the queue has a post-call survey, the caller answers it first (``hub.call_self_service``,
   which also runs a dialog step the agent sends the caller to mid-call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from channels.voice.call import Call, CallError, CallEvent, CallState, PlayOutcome
from channels.voice.sip_endpoint import CallFailed, SipEndpoint
from hub import call_records as records
from hub.call_controls import CallControls, close_dropped_segments
from hub.call_self_service import CallDialogs
from hub.events import interaction_topic
from hub.routing.offers import pending_offer
from models import Agent, CallLegKind, Inbox, Interaction, InteractionState, Queue, Recording

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from hub.nobody_answers import NobodyAnswers
    from hub.services import Services

S = InteractionState
log = logging.getLogger(__name__)
DEFAULT_BLOCK_PROMPT = "We are sorry, we cannot take your call. Goodbye."
ANSWER_AFTER_TIMEOUT = 20.0  # a phone asked to auto-answer that stays silent this long
RING_TIMEOUT = 600.0  # routing's offer timeout stops the ringing first
# An offered agent's phone not registered (480) or missing (404) is tried again this often
# while the offer rings (at once, it was a loop of a few hundred database reads a second).
UNREACHABLE_RETRY_SECONDS = 2.0


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("ringing an agent failed", exc_info=task.exception())


@dataclass(frozen=True, slots=True)
class QueueRequest:
    """Where the self-service step sends the caller: a queue (None: the inbox's default),
    extra priority and skills, and data for the agent's screen pop."""

    queue_id: int | None = None
    priority: int = 0
    skills: dict[str, int] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    divert: str = ""  # "voicemail" | "callback": the dialog's choice (hub.nobody_answers)
    # What the self-service step still has to store (the IVR's trace): committed with the
    # enqueue, or on its own first when the call is not queued (hung up, diverted).
    store: Store | None = None


Store = Callable[["AsyncSession", Interaction], Awaitable[None]]


SelfService = Callable[[Call, Interaction], Awaitable[QueueRequest | None]]
# Awaited while the call rings, before the answer: the self-service step gets ready (the
# IVR's speech engines), so the caller hears its first prompt from the answer on, never
# dead air on an answered call.
ReadyToAnswer = Callable[[Call, Inbox], Awaitable[None]]


async def queue_directly(call: Call, interaction: Interaction) -> QueueRequest | None:
    """The default self-service step: none; the caller waits in the inbox's default queue.

    A step returns None when it served the caller itself (the call then closes as
    self-served once it hangs up)."""
    return QueueRequest(queue_id=interaction.queue_id)


class _StoreOnce:
    """The self-service step's ``QueueRequest.store``, run exactly once: inside the enqueue's
    transaction, or in one of its own (the interaction's write lock first) otherwise."""

    def __init__(
        self, services: Services, interaction_id: int, request: QueueRequest | None
    ) -> None:
        self._services = services
        self._interaction_id = interaction_id
        self._store = request.store if request is not None else None

    def with_enqueue(self) -> Store | None:
        store, self._store = self._store, None
        return store

    async def alone(self) -> None:
        store, self._store = self._store, None
        if store is None:
            return
        from hub.routing.work import lock_interaction, write_lock

        async with self._services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, self._interaction_id)
            if interaction is not None:
                await store(db, interaction)
                await db.commit()


@dataclass
class _Ring:
    """One attempt to reach the agent's phone."""

    agent_id: int
    offer_id: int | None  # None: the console accepted, the phone is asked to auto-answer
    task: asyncio.Task[None] | None = None
    call: Call | None = None
    answered: bool = False  # the phone picked up (accepting the offer may still be under way)


@dataclass
class LiveCall:
    interaction_id: int
    customer: Call
    leg_id: int
    inbox: Inbox
    recording_id: int | None = None
    recording_path: Path | None = None
    ring: _Ring | None = None
    agent_call: Call | None = None
    agent_id: int | None = None
    agent_leg_id: int | None = None
    moh: asyncio.Task[Any] | None = None
    auto_answer_tried: set[int] = field(default_factory=set)  # agents asked once already
    poke: asyncio.Event = field(default_factory=asyncio.Event)
    finished: bool = False
    # Taken over by hub.nobody_answers (voicemail, callback menu, forward): the
    # interaction's state is its business; the call service only closes legs and recording.
    diverted: bool = False
    # The agent hung up and the caller answers the queue's post-call survey
    # (hub.call_self_service): only the caller's hang-up matters now.
    surveying: bool = False
    opened: Interaction | None = None  # the row as the call's first transaction wrote it
    unreachable: set[int] = field(default_factory=set)  # offers whose phone is not there


class CallService:
    """Maps SIP calls to interactions and legs, and follows each live call's interaction."""

    def __init__(self, services: Services, endpoint: SipEndpoint) -> None:
        self.services = services
        self.endpoint = endpoint
        self.self_service: SelfService = queue_directly
        self.ready_to_answer: ReadyToAnswer | None = None
        self.nobody: NobodyAnswers | None = None  # voicemail, callbacks, forwards (optional)
        # A call an agent's own phone places (``Call.phone_extension``) to a number that is
        # not one of the hub's DIDs: the dialer takes it out through the trunk.
        self.from_phone: Callable[[Call], Awaitable[None]] | None = None
        self.live: dict[int, LiveCall] = {}
        self.accepting = True
        self._moh_pcm: np.ndarray | None = None
        self._idle = asyncio.Event()  # set whenever no call is live (for drain)
        self.controls = CallControls(self)  # hold, mute, supervision… (hub/call_controls.py)
        self.dialogs = CallDialogs(self)  # back to self-service, post-call survey

    @property
    def node(self) -> str:
        return self.services.settings.node_name

    @property
    def var_dir(self) -> Path:
        return self.services.settings.var_dir

    # -- start, drain ------------------------------------------------------------------------

    async def recover(self) -> records.Dropped:
        """Calls left open by a process that died: legs dropped, recordings repaired, and
        their interactions ended through the lifecycle (abandoned, or wrap-up)."""
        settings = self.services.settings
        node = None if settings.is_sqlite else settings.node_name
        async with self.services.sessionmaker() as db:
            dropped = await records.mark_dropped(db, self.var_dir, node=node)
            await close_dropped_segments(db)
        routing = self.services.routing
        for interaction_id in dropped.abandon:
            await routing.abandon(interaction_id, reason="call dropped: the hub restarted")
        for interaction_id, agent_id in dropped.wrap_up:
            with contextlib.suppress(LookupError, ValueError, PermissionError):
                await routing.wrap_up(interaction_id, agent_id=agent_id)
        if dropped.legs:
            log.warning("marked %d call legs of a dead process as dropped", dropped.legs)
        return dropped

    async def drain(self, limit: float) -> None:
        """Stop taking calls (503) and wait up to ``limit`` seconds for active ones."""
        self.accepting = False
        self.endpoint.draining = True
        if self.live:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), limit)

    # -- a new call --------------------------------------------------------------------------

    async def on_call(self, call: Call) -> None:
        """The endpoint's handler for each admitted inbound call."""
        if not self.accepting:
            await call.reject(503, "Service Unavailable")
            return
        if call.phone_extension is not None and self.from_phone is not None:
            async with self.services.sessionmaker() as db:  # one of our DIDs: comes in
                ours = await records.inbox_for_dnis(db, call.called_number) is not None
            if not ours:
                await self.from_phone(call)
                return
        # The DNIS's inbox, the contact, the interaction and its leg: one transaction.
        created = await records.open_call(
            self.services.transactions,
            records.InboundCall(
                raw_caller=call.caller_number,
                dnis=call.called_number,
                sip_call_id=call.call_id,
                remote_uri=call.remote_uri,
                node=self.node,
            ),
        )
        if created is None:
            await call.reject(404, "Not Found")
            return
        await call.ring()
        await records.publish_new(self.services.bus, created)
        assert created.inbox is not None
        live = LiveCall(created.interaction_id, call, created.leg_id, created.inbox)
        live.opened = created.interaction
        self.live[live.interaction_id] = live
        try:
            await self._run(live, blocked=created.blocked)
        finally:
            self.live.pop(live.interaction_id, None)
            if not self.live:
                self._idle.set()

    async def _run(self, live: LiveCall, *, blocked: bool) -> None:
        call = live.customer
        call.add_listener(lambda _call, event: self._on_customer_event(live, event))
        if not blocked and self.ready_to_answer is not None:
            await self.ready_to_answer(call, live.inbox)  # still ringing (180)
        if call.state is CallState.ENDED:  # hung up before we could answer
            await self._finished(live)
            return
        await call.answer()
        await self._record(live)
        if blocked:
            await self._refuse(live)
            await self._finished(live)
            return
        async with self.services.bus.subscribe([interaction_topic(live.interaction_id)]) as events:
            pump = asyncio.create_task(self._pump(events, live))
            try:
                await self._self_service_then_queue(live)
                while not live.finished:
                    await live.poke.wait()
                    live.poke.clear()
                    await self._reconcile(live)
            finally:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump

    async def _pump(self, events: Any, live: LiveCall) -> None:
        async for _event in events:
            live.poke.set()

    def _on_customer_event(self, live: LiveCall, event: CallEvent) -> None:
        if event.kind == "ended":
            live.poke.set()

    async def _record(self, live: LiveCall) -> None:
        """Record from the answer on; the leg's answer time and the recording's row (it
        exists from the first frame on, so a crash leaves a recording to repair) are
        written in one transaction."""
        relative = Path("recordings") / f"{live.interaction_id}-{live.leg_id}.wav"
        live.recording_path = self.var_dir / relative
        live.customer.record(live.recording_path)
        live.recording_id = await records.answered(
            self.services.transactions,
            live.leg_id,
            records.epoch_to_dt(live.customer.answered_at),
            Recording(interaction_id=live.interaction_id, path=str(relative), legs=[live.leg_id]),
        )

    async def _refuse(self, live: LiveCall) -> None:
        """A blocked contact: the inbox's block prompt, then goodbye (the call is kept)."""
        text = str((live.inbox.config or {}).get("block_prompt") or DEFAULT_BLOCK_PROMPT)
        with contextlib.suppress(Exception):
            audio = await asyncio.to_thread(self._synthesize, text)
            await live.customer.play(audio, interrupt_on_dtmf=False)
        await live.customer.hangup()

    def _synthesize(self, text: str) -> Any:
        from speech.tts import Synthesizer

        return Synthesizer(cache_dir=self.var_dir / "prompts").synthesize(text)

    async def _self_service_then_queue(self, live: LiveCall) -> None:
        interaction = live.opened  # as the call's first transaction stored it
        if interaction is None:
            async with self.services.sessionmaker() as db:
                interaction = await db.get(Interaction, live.interaction_id)
        assert interaction is not None
        try:
            request = await self.self_service(live.customer, interaction)
        except Exception:
            log.exception("self-service failed for interaction %s", live.interaction_id)
            request = QueueRequest(queue_id=interaction.queue_id)
        store = _StoreOnce(self.services, live.interaction_id, request)
        if live.customer.state is CallState.ENDED:
            await store.alone()
            live.poke.set()
            return
        if request is None:  # served without an agent
            await live.customer.hangup()
            async with self.services.sessionmaker() as db:
                after = await records.close_after_self_service(
                    db, live.interaction_id, "self-service completed"
                )
            await after.publish(self.services.bus)
            return
        if self.nobody is not None and await self._nobody_took(live, request, store):
            await store.alone()  # (done already unless it failed)
            live.poke.set()
            return
        queued = await self.services.routing.enqueue(
            live.interaction_id,
            request.queue_id,
            priority=request.priority,
            skills=request.skills,
            data=request.data,
            reason="incoming call",
            also=store.with_enqueue(),
        )
        if queued:
            self._start_moh(live)
            if self.nobody is not None:
                self.nobody.watch(live)
        live.poke.set()

    async def _nobody_took(self, live: LiveCall, request: QueueRequest, store: _StoreOnce) -> bool:
        """Voicemail, callback or forward before the queue; a fault there queues the call."""
        assert self.nobody is not None
        try:
            return await self.nobody.before_queue(live, request, before_divert=store.alone)
        except Exception:
            log.exception("when-nobody-answers failed for interaction %s", live.interaction_id)
            live.diverted = False
            return live.customer.state is CallState.ENDED

    # -- music on hold -----------------------------------------------------------------------

    def _moh(self) -> np.ndarray:
        if self._moh_pcm is None:
            from channels.voice.playback import default_moh, load_wav_8k

            path = self.endpoint.settings.moh_wav
            self._moh_pcm = load_wav_8k(path) if path is not None else default_moh()
        return self._moh_pcm

    def _start_moh(self, live: LiveCall) -> None:
        if live.moh is not None and not live.moh.done():
            return
        if live.customer.state is CallState.ENDED or live.agent_call is not None:
            return
        live.moh = asyncio.create_task(self._wait_with_music(live))

    def _stop_moh(self, live: LiveCall) -> None:
        moh, live.moh = live.moh, None
        if moh is not None and not moh.done():
            moh.cancel()  # the waiting loop ends (cancelled first, so it announces nothing)
            live.customer.stop_playback()  # and the music stops on this very tick

    async def _wait_with_music(self, live: LiveCall) -> None:
        """Music on hold; every ``announce_seconds`` of the call's queue (0: never) the
        caller hears their place in the queue and the estimated wait."""
        call = live.customer
        loop = asyncio.get_running_loop()
        with contextlib.suppress(CallError):
            while call.state is not CallState.ENDED:
                interval = await self._announce_interval(live)
                if interval <= 0:
                    await call.play(self._moh(), loop=True, interrupt_on_dtmf=False)
                    return
                timer = loop.call_later(interval, call.stop_playback)
                try:
                    outcome = await call.play(self._moh(), loop=True, interrupt_on_dtmf=False)
                finally:
                    timer.cancel()
                if outcome is not PlayOutcome.STOPPED:
                    return
                text = await self._announcement(live)
                if text:
                    audio = await asyncio.to_thread(self._synthesize, text)
                    await call.play(audio, interrupt_on_dtmf=False)

    async def _announce_interval(self, live: LiveCall) -> float:
        async with self.services.sessionmaker() as db:
            interaction = await db.get(Interaction, live.interaction_id)
            queue = await db.get(Queue, interaction.queue_id) if interaction else None
        return float(queue.announce_seconds) if queue is not None else 0.0

    async def _announcement(self, live: LiveCall) -> str:
        """ "You are number 2 in the queue. The estimated wait is about 3 minutes." """
        where = await self.services.routing.queue_position(live.interaction_id)
        parts = []
        if where.position is not None:
            parts.append(f"You are number {where.position} in the queue.")
        if where.ewt_seconds is not None:
            minutes = max(1, round(where.ewt_seconds / 60))
            parts.append(
                f"The estimated wait is about {minutes} minute{'s' if minutes > 1 else ''}."
            )
        return " ".join(parts)

    # -- following the interaction -------------------------------------------------------------

    async def _reconcile(self, live: LiveCall) -> None:
        """Bring the call in line with the interaction (which routing owns) and the phones."""
        if live.finished or self.controls.handing_over(live):
            return
        if live.customer.state is CallState.ENDED:
            await self._finished(live, who="caller")
            return
        if live.surveying:
            return
        if live.agent_call is not None and live.agent_call.state is CallState.ENDED:
            if await self.dialogs.survey_after_agent(live):
                return
            await live.customer.hangup()
            await self._finished(live, who="agent")
            return
        if live.diverted:
            return
        async with self.services.sessionmaker() as db:
            interaction = await db.get(Interaction, live.interaction_id)
            offer = await pending_offer(db, live.interaction_id)
        if interaction is None:
            return
        state = S(interaction.state)
        if live.agent_call is not None and (
            state in (S.QUEUED, S.OFFERED)
            or (state == S.ACTIVE and interaction.agent_id != live.agent_id)
        ):  # transferred away from the agent: their leg goes, the caller stays
            await self._release_agent(live, "transferred")
        await self.controls.sync(live)
        if state == S.OFFERED and offer is not None:
            self._start_moh(live)
            ring = live.ring
            if (ring is None or ring.offer_id != offer.id) and offer.id not in live.unreachable:
                self._cancel_ring(live)
                self._start_ring(live, offer.agent_id, offer.id)
        elif state == S.QUEUED:
            self._cancel_ring(live)
            self._start_moh(live)
        elif state == S.ACTIVE and live.agent_call is None and interaction.agent_id is not None:
            agent_id = interaction.agent_id
            ring = live.ring
            under_way = (
                ring is not None
                and ring.agent_id == agent_id
                and ring.task is not None
                and not ring.task.done()
                and (ring.answered or ring.offer_id is None)
            )
            if not under_way and agent_id not in live.auto_answer_tried:
                # accepted in the console: call the phone again, asking it to pick up at once
                live.auto_answer_tried.add(agent_id)
                self._cancel_ring(live)
                self._start_ring(live, agent_id, None)
        elif state in (S.WRAP_UP, S.CLOSED, S.ABANDONED, S.VOICEMAIL) and not (
            self.controls.handed_off(live)
        ):
            # the agent ended it in the console, or a supervisor did
            self._cancel_ring(live)
            if live.agent_call is not None:
                await live.agent_call.hangup()
            await live.customer.hangup()
            await self._finished(live)

    async def _release_agent(self, live: LiveCall, reason: str) -> None:
        """The agent's leg leaves a call that goes on (a blind transfer)."""
        await self.dialogs.cancel(live)  # sent away while in self-service: the dialog stops
        agent_call, live.agent_call = live.agent_call, None
        live.agent_id = None
        leg_id, live.agent_leg_id = live.agent_leg_id, None
        await self.controls.release_agent(live, reason)
        if agent_call is None:
            return
        agent_call.leave_conference()
        await agent_call.hangup()
        if leg_id is not None:
            async with self.services.sessionmaker() as db:
                await self._close_leg(db, leg_id, agent_call)
                if live.recording_id is not None:
                    await records.add_recording_leg(db, live.recording_id, leg_id)

    def _cancel_ring(self, live: LiveCall) -> None:
        ring, live.ring = live.ring, None
        if ring is not None and ring.task is not None and not ring.task.done():
            ring.task.cancel()

    def _start_ring(self, live: LiveCall, agent_id: int, offer_id: int | None) -> None:
        ring = _Ring(agent_id, offer_id)
        ring.task = asyncio.create_task(self._ring(live, ring))
        ring.task.add_done_callback(_log_failure)
        live.ring = ring

    async def _ring(self, live: LiveCall, ring: _Ring) -> None:
        """Ring the agent's phone; on answer, accept (phone pick-up) and bridge."""
        async with self.services.sessionmaker() as db:
            agent = await db.get(Agent, ring.agent_id)
        extension = agent.extension if agent is not None else None

        def created(call: Call) -> None:
            ring.call = call

        auto = ring.offer_id is None
        agent_call: Call | None = None
        failure = ""
        try:
            if not extension:
                raise CallFailed(404, "the agent has no SIP extension")
            agent_call = await self.endpoint.call_agent(
                extension,
                timeout=ANSWER_AFTER_TIMEOUT if auto else RING_TIMEOUT,
                auto_answer=auto,
                on_created=created,
            )
            ring.answered = True
        except CallFailed as exc:
            failure = f"{exc.status} {exc.reason}"
        finally:
            if ring.call is not None:
                await self._store_agent_leg(live, ring, agent_call is not None, failure)
        if agent_call is None:
            await self._phone_failed(live, ring, failure)
            return
        try:
            await self._answered(live, ring, agent_call)
        except asyncio.CancelledError:  # the caller left while the pick-up was being accepted
            if live.agent_call is not agent_call:
                await self._drop_agent_call(live, agent_call)
            raise

    async def _answered(self, live: LiveCall, ring: _Ring, agent_call: Call) -> None:
        """The phone answered: accept the offer (a pick-up), then bridge."""
        if ring.offer_id is not None:  # the agent picked up the phone: that accepts
            from hub.routing.service import OfferGone

            try:
                await self.services.routing.accept_offer(ring.offer_id, ring.agent_id)
            except (OfferGone, LookupError, ValueError):
                async with self.services.sessionmaker() as db:
                    now = await db.get(Interaction, live.interaction_id)
                taken_here = (
                    now is not None and now.state == S.ACTIVE and now.agent_id == ring.agent_id
                )
                if not taken_here:  # gone, or someone else's now: the phone stops
                    await self._drop_agent_call(live, agent_call)
                    return
                # the agent clicked Accept as the phone picked up: connect all the same
        if live.customer.state is CallState.ENDED or live.finished:
            await self._drop_agent_call(live, agent_call)
            return
        self._connect(live, ring, agent_call)

    async def _drop_agent_call(self, live: LiveCall, agent_call: Call) -> None:
        """An answered agent leg that will not be bridged: hung up, and its row closed."""
        await agent_call.hangup()
        leg_id, live.agent_leg_id = live.agent_leg_id, None
        if leg_id is not None:
            async with self.services.sessionmaker() as db:
                await self._close_leg(db, leg_id, agent_call)
        live.poke.set()

    async def _store_agent_leg(
        self, live: LiveCall, ring: _Ring, answered: bool, failure: str
    ) -> None:
        call = ring.call
        assert call is not None
        async with self.services.sessionmaker() as db:
            leg_id = await records.add_leg(
                db,
                live.interaction_id,
                kind=CallLegKind.AGENT,
                direction="outbound",
                sip_call_id=call.call_id,
                remote_uri=call.remote_uri,
                node=self.node,
                agent_id=ring.agent_id,
                started_at=records.epoch_to_dt(call.started_at),  # type: ignore[arg-type]
            )
            if answered:
                await records.update_leg(
                    db, leg_id, answered_at=records.epoch_to_dt(call.answered_at)
                )
                live.agent_leg_id = leg_id
            else:
                await records.update_leg(
                    db,
                    leg_id,
                    ended_at=records.epoch_to_dt(call.ended_at or call.started_at),
                    end_reason=(failure or call.end_reason or "not answered")[:64],
                )

    async def _phone_failed(self, live: LiveCall, ring: _Ring, failure: str) -> None:
        """The phone refused or cannot be reached. Refused while offered: a reject, so
        routing offers the call to the next agent as for chats. Accepted in the console
        but the phone never connected: back to the queue."""
        routing = self.services.routing
        from hub.routing.service import OfferGone

        log.info("agent %s phone: %s", ring.agent_id, failure)
        if live.ring is ring:
            live.ring = None
        with contextlib.suppress(OfferGone, LookupError, ValueError, PermissionError):
            if ring.offer_id is not None and failure.startswith(("404", "480")):
                # No phone to ring (yet): the offer rings on in the console; the phone is
                # tried again shortly (it may register), not at once in a loop.
                self._retry_later(live, ring.offer_id)
            elif ring.offer_id is not None and failure:
                await routing.reject_offer(ring.offer_id, ring.agent_id)
            elif ring.offer_id is None and live.customer.state is not CallState.ENDED:
                async with self.services.sessionmaker() as db:
                    interaction = await db.get(Interaction, live.interaction_id)
                if interaction is not None and interaction.queue_id is not None:
                    await routing.transfer_to_queue(
                        live.interaction_id,
                        interaction.queue_id,
                        by_agent_id=ring.agent_id,
                        note=f"The agent's phone did not connect ({failure}).",
                    )
        live.poke.set()

    @staticmethod
    def _retry_later(live: LiveCall, offer_id: int) -> None:
        live.unreachable.add(offer_id)

        def retry() -> None:
            live.unreachable.discard(offer_id)
            live.poke.set()

        asyncio.get_running_loop().call_later(UNREACHABLE_RETRY_SECONDS, retry)

    def _connect(self, live: LiveCall, ring: _Ring, agent_call: Call) -> None:
        if live.ring is ring:
            live.ring = None
        self._stop_moh(live)
        live.agent_call = agent_call
        live.agent_id = ring.agent_id
        agent_call.add_listener(
            lambda _c, event: live.poke.set() if event.kind == "ended" else None
        )
        live.customer.bridge(agent_call)
        live.poke.set()

    # -- the end -------------------------------------------------------------------------------

    async def _finished(self, live: LiveCall, who: str = "") -> None:
        """Either side hung up: legs and recording closed, the interaction moves on through
        the lifecycle (abandoned while waiting, wrap-up once an agent had it)."""
        if live.finished:
            return
        live.finished = True
        self._cancel_ring(live)
        self._stop_moh(live)
        try:
            await self.controls.finished(live)
        except Exception:  # the legs and the lifecycle below must still close
            log.exception("call controls failed to finish interaction %s", live.interaction_id)
        if live.agent_call is not None and live.agent_call.state is not CallState.ENDED:
            await live.agent_call.hangup()
        customer = live.customer
        if customer.state is not CallState.ENDED:
            await customer.hangup()
        routing = self.services.routing
        async with self.services.sessionmaker() as db:
            await self._close_leg(db, live.leg_id, customer)
            if live.agent_leg_id is not None and live.agent_call is not None:
                await self._close_leg(db, live.agent_leg_id, live.agent_call)
            if live.recording_id is not None and live.agent_leg_id is not None:
                await records.add_recording_leg(db, live.recording_id, live.agent_leg_id)
            if live.recording_id is not None and live.recording_path is not None:
                await records.finish_recording(db, live.recording_id, live.recording_path)
            interaction = await db.get(Interaction, live.interaction_id)
        if self.nobody is not None:
            self.nobody.forget(live)
        if interaction is None or live.diverted:
            return
        state = S(interaction.state)
        if state in (S.NEW, S.SELF_SERVICE, S.QUEUED, S.OFFERED):
            await routing.abandon(live.interaction_id, reason="caller hung up")
        elif state == S.ACTIVE and interaction.agent_id is not None:
            with contextlib.suppress(LookupError, ValueError, PermissionError):
                await routing.wrap_up(live.interaction_id, agent_id=interaction.agent_id)

    @staticmethod
    async def _close_leg(db: Any, leg_id: int, call: Call) -> None:
        stats = call.stats().get("rtp") or {}
        await records.update_leg(
            db,
            leg_id,
            ended_at=records.epoch_to_dt(call.ended_at),
            end_reason=(call.end_reason or "ended")[:64],
            rtp={k: v for k, v in stats.items() if isinstance(v, int | float | str)},
        )
