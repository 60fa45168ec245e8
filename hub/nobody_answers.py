"""When nobody can answer a call: the call service's hook for voicemail, the queue's
maximum wait, queued callbacks and the forward to the on-duty phone.

``CallService`` asks ``NobodyAnswers`` twice (``hub.calls``):

- ``before_queue`` — before a call joins its queue: the dialog asked for voicemail or a
  callback (``QueueRequest.divert``); the queue is outside its hours, or no agent who
  could take it is logged in, and it has an on-duty number (forwarded through the trunk,
  recorded like any call); the queue is closed and has none (voicemail);
- ``watch`` — while the call waits: the queue's ``callback_key`` starts the callback
  menu, and ``max_wait_seconds`` sends the caller to ``max_wait_action`` (voicemail, a
  callback offer, or the overflow queue).

A call taken over here is marked ``LiveCall.diverted``: the call service then leaves the
interaction's state to this module and only closes the legs and the recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import select

from channels.voice.call import Call, CallError, CallState
from channels.voice.sip_endpoint import CallFailed
from hub import call_records as records
from hub.call_limits import CallOutRefused, check_call_out
from hub.events import SUPERVISOR_TOPIC
from hub.interactions import change_state
from hub.routing.hours import is_open
from hub.routing.work import AfterCommit, lock_interaction, write_lock
from hub.waiting_poll import WaitingPoll
from models import (
    Agent,
    AgentSkill,
    BusinessHours,
    CallbackRequest,
    CallLegKind,
    Interaction,
    InteractionState,
    PresenceState,
    Queue,
    QueueSkill,
    utcnow,
)

if TYPE_CHECKING:
    from hub.calls import CallService, LiveCall, QueueRequest
    from hub.outbound_calls import OutboundDialer
    from hub.voicemail import VoicemailTaker

S = InteractionState
log = logging.getLogger(__name__)

CALLBACK_MENU = (
    "To be called back at the number you are calling from, press 1."
    " To enter another number, press 2."
)
ENTER_NUMBER = "Please enter the number to call you back at, then press the pound key."
NO_NUMBER = "We could not get a number to call you back at. Please keep holding."
MAX_WAIT_CALLBACK = (
    "We are sorry for the wait. We can call you back and keep your place in the queue."
)
FORWARDING = "Please hold while we forward your call."
FORWARD_FAILED = "We could not reach anyone."


def fixed_prompts(greeting: str) -> list[str]:
    """What callers may hear here, rendered when voice starts."""
    from hub.voicemail import GOODBYE

    return [greeting, CALLBACK_MENU, ENTER_NUMBER, MAX_WAIT_CALLBACK, FORWARDING, GOODBYE]


def spoken_number(number: str) -> str:
    """ "+15551230001" read digit by digit."""
    return " ".join(ch for ch in number if ch.isdigit())


class NobodyAnswers:
    def __init__(
        self, calls: CallService, dialer: OutboundDialer, voicemail: VoicemailTaker
    ) -> None:
        self.calls = calls
        self.services = calls.services
        self.dialer = dialer
        self.voicemail = voicemail
        self.watchers: dict[int, asyncio.Task[None]] = {}
        self.waiting = WaitingPoll(
            self.services.sessionmaker, self.services.settings.nobody_poll_seconds
        )

    # -- before the queue ----------------------------------------------------------------

    async def before_queue(
        self,
        live: LiveCall,
        request: QueueRequest,
        *,
        before_divert: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """True when the call was taken care of here (it is not queued by the caller).
        ``before_divert`` runs first when it is (the call service stores the IVR's trace)."""
        async with self.services.sessionmaker() as db:
            queue_id = request.queue_id
            if queue_id is None:  # the interaction's own queue
                interaction = await db.get(Interaction, live.interaction_id)
                queue_id = interaction.queue_id if interaction else None
            queue = await db.get(Queue, queue_id) if queue_id else None
            closed = not await self._open(db, queue, live)
            staffed = True
            if queue is not None and queue.onduty_number and not closed:
                staffed = await self._staffed(db, queue)
        diverts = (
            request.divert in ("voicemail", "callback")
            or closed
            or (queue is not None and bool(queue.onduty_number) and not staffed)
        )
        if diverts and before_divert is not None:
            await before_divert()
        if request.divert == "voicemail":
            live.diverted = True
            await self.voicemail.take(live, reason="dialog", queue_id=queue_id)
            return True
        if request.divert == "callback":
            queued = await self.services.routing.enqueue(
                live.interaction_id,
                queue_id,
                priority=request.priority,
                skills=request.skills,
                data=request.data,
                reason="callback requested in the dialog",
            )
            if not queued:
                return True
            live.diverted = True
            number = str(request.data.get("callback_number") or live.customer.caller_number)
            if not await self._store_callback(live, queue, number):
                live.diverted = False  # refused: the caller waits in the queue after all
                self.calls._start_moh(live)
            return True
        if queue is not None and queue.onduty_number and (closed or not staffed):
            live.diverted = True
            why = "closed" if closed else "no_agents"
            if await self.forward(live, queue, why):
                return True
            await self.voicemail.take(live, reason=why, queue_id=queue_id)
            return True
        if closed:
            live.diverted = True
            await self.voicemail.take(live, reason="closed", queue_id=queue_id)
            return True
        return False

    async def _open(self, db: Any, queue: Queue | None, live: LiveCall) -> bool:
        hours_id = (queue.hours_id if queue is not None else None) or live.inbox.hours_id
        hours = await db.get(BusinessHours, hours_id) if hours_id else None
        return is_open(hours, datetime.now(UTC))

    @staticmethod
    async def _staffed(db: Any, queue: Queue) -> bool:
        """Is an agent who could take the queue's calls logged in (any presence but
        offline), with a voice capacity and the queue's skills?"""
        agents = (await db.exec(select(Agent).where(Agent.presence != PresenceState.OFFLINE))).all()
        needs = (await db.exec(select(QueueSkill).where(QueueSkill.queue_id == queue.id))).all()
        for agent in agents:
            if int((agent.capacity or {}).get("voice", 0)) <= 0:
                continue
            levels = dict(
                (
                    await db.exec(
                        select(AgentSkill.skill_id, AgentSkill.level).where(
                            AgentSkill.agent_id == agent.id
                        )
                    )
                ).all()
            )
            if all(levels.get(n.skill_id, 0) >= n.min_level for n in needs):
                return True
        return False

    # -- while waiting -------------------------------------------------------------------

    def watch(self, live: LiveCall) -> None:
        """Start following a queued call: the callback key and the maximum wait."""
        task = asyncio.create_task(self._watch(live), name=f"nobody-{live.interaction_id}")
        self.watchers[live.interaction_id] = task
        task.add_done_callback(lambda _t: self.watchers.pop(live.interaction_id, None))
        task.add_done_callback(_log_failure)

    def forget(self, live: LiveCall) -> None:
        """The call ended: stop following it (unless the watcher is the one taking the
        caller's message or callback, which it then finishes on its own)."""
        task = self.watchers.get(live.interaction_id)
        if task is not None and not live.diverted and task is not asyncio.current_task():
            self.watchers.pop(live.interaction_id, None)
            task.cancel()

    async def _watch(self, live: LiveCall) -> None:
        """Every ``nobody_poll_seconds``: the callback key while queued, and the maximum
        wait. The interaction and its queue come from the process's shared read
        (``hub.waiting_poll``); its data only once the maximum wait is due."""
        call = live.customer
        poll = self.services.settings.nobody_poll_seconds
        seen = -1
        self.waiting.add(live.interaction_id)
        try:
            while call.state is not CallState.ENDED and not live.finished:
                if live.agent_call is not None or live.diverted:
                    return
                seen, waiting, queue = await self.waiting.next(live.interaction_id, seen)
                if waiting is None or waiting.state not in (S.QUEUED, S.OFFERED):
                    return
                key = queue.callback_key if queue is not None else ""
                if key and waiting.state == S.QUEUED:
                    pressed = await call.collect_dtmf(1, timeout=poll, terminator=None)
                    if pressed.digits == key:
                        await self.offer_callback(live, queue, intro="")  # type: ignore[arg-type]
                        continue
                else:
                    await asyncio.sleep(poll)
                if (
                    queue is not None
                    and queue.max_wait_seconds is not None
                    and waiting.state == S.QUEUED
                    and waiting.queued_at is not None
                    and _waited(waiting.queued_at) >= queue.max_wait_seconds
                    and not await self._max_wait_done(live.interaction_id)
                ):
                    await self._max_wait(live, queue)
        finally:
            self.waiting.discard(live.interaction_id)

    async def _max_wait_done(self, interaction_id: int) -> bool:
        async with self.services.sessionmaker() as db:
            interaction = await db.get(Interaction, interaction_id)
        return interaction is None or bool(interaction.data.get("max_wait_done"))

    async def _max_wait(self, live: LiveCall, queue: Queue) -> None:
        action = queue.max_wait_action
        log.info(
            "interaction %s waited %ss: %s", live.interaction_id, queue.max_wait_seconds, action
        )
        await self._mark(live.interaction_id, {"max_wait_done": True})
        if action == "overflow" and queue.overflow_queue_id is not None:
            await self._overflow(live.interaction_id, queue.overflow_queue_id)
            return
        if action == "callback":
            await self.offer_callback(live, queue, intro=MAX_WAIT_CALLBACK)
            return
        self._divert(live)
        await self.voicemail.take(live, reason="max_wait", queue_id=queue.id)

    async def _overflow(self, interaction_id: int, target: int) -> None:
        """Still waiting, in the overflow queue (its place: the same ``queued_at``)."""
        after = AfterCommit()
        async with self.services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, interaction_id)
            if interaction is None or interaction.state != S.QUEUED:
                return
            after.add(SUPERVISOR_TOPIC, "queue", queue_id=interaction.queue_id)
            interaction.queue_id = target
            interaction.overflowed = True
            change_state(db, interaction, S.QUEUED, reason=f"maximum wait: overflow to {target}")
            from hub.routing.service import RoutingService

            RoutingService._announce_work(after, interaction, None)
            await db.commit()
        await after.publish(self.services.bus)
        self.services.routing.wake()

    def _divert(self, live: LiveCall) -> None:
        live.diverted = True
        self.calls._cancel_ring(live)
        self.calls._stop_moh(live)

    async def _mark(self, interaction_id: int, data: dict[str, Any]) -> None:
        async with self.services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, interaction_id)
            if interaction is not None:
                interaction.data = {**interaction.data, **data}
                db.add(interaction)
                await db.commit()

    # -- callbacks -----------------------------------------------------------------------

    async def offer_callback(self, live: LiveCall, queue: Queue, *, intro: str) -> None:
        """The callback menu on a queued call: the caller ID or a keyed number; the request
        keeps the call's place (same interaction, ``queued_at`` and priority)."""
        self._divert(live)
        try:
            await self._callback_menu(live, queue, intro)
        finally:
            if live.customer.state is CallState.ENDED and live.diverted:
                # hung up in the menu without a request: an abandoned call, as in the queue
                # (a stored request keeps the interaction QUEUED: abandon leaves it be then)
                await self._abandon_unless_kept(live)

    async def _abandon_unless_kept(self, live: LiveCall) -> None:
        async with self.services.sessionmaker() as db:
            kept = (
                await db.exec(
                    select(CallbackRequest.id).where(
                        CallbackRequest.interaction_id == live.interaction_id
                    )
                )
            ).first()
        if kept is None:
            await self.services.routing.abandon(
                live.interaction_id, reason="caller hung up in the callback menu"
            )

    async def _callback_menu(self, live: LiveCall, queue: Queue, intro: str) -> None:
        call = live.customer
        say = self.voicemail.say
        if intro:
            await say(call, intro)
        number = ""
        for _try in range(3):
            call.flush_dtmf()
            await say(call, CALLBACK_MENU)
            choice = await call.collect_dtmf(1, timeout=self._digit_wait(), terminator=None)
            if call.state is CallState.ENDED:
                return
            if choice.digits == "1":
                number = call.caller_number
            elif choice.digits == "2":
                await say(call, ENTER_NUMBER)
                keyed = await call.collect_dtmf(
                    20, timeout=self._digit_wait(), terminator="#", inter_digit_timeout=5.0
                )
                number = keyed.digits
            else:
                continue
            if number and await self._store_callback(live, queue, number):
                return
            if call.state is CallState.ENDED:
                return
        await say(call, NO_NUMBER)
        live.diverted = False
        live.poke.set()  # back to waiting: music, ringing as before
        self.calls._start_moh(live)

    def _digit_wait(self) -> float:
        return self.services.settings.callback_digits_timeout_seconds

    async def _store_callback(self, live: LiveCall, queue: Queue | None, raw: str) -> bool:
        """Check the number (``hub.call_limits``), store the request, say goodbye. False
        (with the reason said) when the number is refused."""
        call = live.customer
        try:
            number = await check_call_out(
                self.services,
                kind="callback",
                number=raw,
                inbox_id=live.inbox.id,
                interaction_id=live.interaction_id,
            )
        except CallOutRefused as refused:
            log.info(
                "interaction %s: callback number refused: %s", live.interaction_id, refused.reason
            )
            await self.voicemail.say(call, refused.prompt)
            return False
        async with self.services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, live.interaction_id)
            if interaction is None or interaction.state not in (S.QUEUED, S.OFFERED):
                return True  # taken meanwhile (an agent accepted): nothing to keep
            existing = (
                await db.exec(
                    select(CallbackRequest).where(
                        CallbackRequest.interaction_id == live.interaction_id
                    )
                )
            ).first()
            if existing is None:
                db.add(
                    CallbackRequest(
                        interaction_id=live.interaction_id,
                        queue_id=interaction.queue_id,
                        number=number,
                        max_tries=max(1, queue.callback_max_tries if queue else 3),
                    )
                )
            interaction.data = {**interaction.data, "kind": "callback", "callback_number": number}
            db.add(interaction)
            await db.commit()
        await self.services.bus.publish(SUPERVISOR_TOPIC, "queue", queue_id=interaction.queue_id)
        await self.voicemail.say(
            call,
            f"Thank you. We will call you back at {spoken_number(number)}, and you keep your"
            " place in the queue. Goodbye.",
        )
        with contextlib.suppress(CallError):
            await call.hangup()
        return True

    # -- on-duty forward -----------------------------------------------------------------

    async def forward(self, live: LiveCall, queue: Queue, why: str) -> bool:
        """Bridge the caller to the queue's on-duty number through the trunk, until either
        side hangs up; the call stays recorded (the external leg is in the recording).
        False when the number is refused or does not answer (then voicemail)."""
        call = live.customer
        settings = self.calls.endpoint.settings
        if not settings.trunk_host:
            log.warning("queue %s has an on-duty number but no trunk is set", queue.name)
            return False
        try:
            number = await check_call_out(
                self.services,
                kind="forward",
                number=queue.onduty_number,
                inbox_id=live.inbox.id,
                interaction_id=live.interaction_id,
            )
        except CallOutRefused as refused:
            log.info("forward of interaction %s refused: %s", live.interaction_id, refused.reason)
            await self.voicemail.say(call, refused.prompt)
            await self._mark(live.interaction_id, {"forward_refused": refused.reason})
            return False
        await self.voicemail.say(call, FORWARDING)
        from hub.outbound_calls import Placed, caller_id

        placed = Placed(live.interaction_id, 0, "", number, caller_id(live.inbox))
        ringing: list[Call] = []
        try:
            external = await self.dialer._dial_customer(placed, ringing, [])
        except CallFailed as exc:
            await self._external_leg(live, ringing[0] if ringing else None, None, exc)
            await self._mark(live.interaction_id, {"forward_failed": f"{exc.status} {exc.reason}"})
            await self.voicemail.say(call, FORWARD_FAILED)
            return False
        if call.state is CallState.ENDED:
            await external.hangup()
            await self._external_leg(live, external, external, None)
            return True
        leg_id = await self._external_leg(live, external, external, None)
        live.agent_call, live.agent_leg_id = external, leg_id
        external.add_listener(lambda _c, e: live.poke.set() if e.kind == "ended" else None)
        call.bridge(external)
        await self._forwarded(live.interaction_id, number, why)
        ended = [asyncio.ensure_future(c.ended.wait()) for c in (call, external)]
        await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
        for waiter in ended:
            waiter.cancel()
        return True

    async def _external_leg(
        self, live: LiveCall, call: Call | None, answered: Call | None, failure: CallFailed | None
    ) -> int | None:
        if call is None:
            return None
        async with self.services.sessionmaker() as db:
            leg_id = await records.add_leg(
                db,
                live.interaction_id,
                kind=CallLegKind.EXTERNAL,
                direction="outbound",
                sip_call_id=call.call_id,
                remote_uri=call.remote_uri,
                node=self.calls.node,
                agent_id=None,
                started_at=records.epoch_to_dt(call.started_at),  # type: ignore[arg-type]
            )
            if answered is not None:
                await records.update_leg(
                    db, leg_id, answered_at=records.epoch_to_dt(answered.answered_at)
                )
            else:
                reason = f"{failure.status} {failure.reason}" if failure else "not answered"
                await records.update_leg(
                    db,
                    leg_id,
                    ended_at=records.epoch_to_dt(call.ended_at or call.started_at),
                    end_reason=reason[:64],
                )
        return leg_id

    async def _forwarded(self, interaction_id: int, number: str, why: str) -> None:
        """The interaction ends as forwarded (closed, with the number and why)."""
        after = AfterCommit()
        async with self.services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, interaction_id)
            if interaction is None:
                return
            interaction.data = {
                **interaction.data,
                "kind": "forward",
                "forwarded_to": number,
                "forward_reason": why,
            }
            if interaction.state in (S.NEW, S.SELF_SERVICE, S.QUEUED):
                change_state(
                    db, interaction, S.CLOSED, at=utcnow(), reason=f"forwarded to on-duty ({why})"
                )
            db.add(interaction)
            from hub.routing.service import RoutingService

            RoutingService._announce_work(after, interaction, None)
            await db.commit()
        await after.publish(self.services.bus)


def _waited(queued_at: datetime) -> float:
    at = queued_at if queued_at.tzinfo is not None else queued_at.replace(tzinfo=UTC)
    return (datetime.now(UTC) - at).total_seconds()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("following a waiting call failed", exc_info=task.exception())
