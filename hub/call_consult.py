"""Consult transfer and conference on a call, with another agent.

1. ``consult``: the caller goes on hold (music, recording paused) and the hub calls the
   other agent's phone (``answer-after=0``); the two agents talk in the call's conference
   while the caller hears only the music.
2. then either ``conference`` (the caller comes off hold: a three-way call), ``drop``
   (the other agent leaves; cancels a consult back to the caller), or ``complete`` (the
   first agent leaves and the other agent keeps the caller: the interaction moves to them
   through routing, with its history, notes and data, still one interaction).

Each step is a ``ControlEvent``; the other agent's part is a segment (role consult, then
agent once they take the call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from channels.voice.call import Call, CallState
from channels.voice.mixer import Role as MixRole
from channels.voice.sip_endpoint import CallFailed
from hub import call_records as records
from hub.call_controls import ControlError, ControlState
from hub.routing.decision import qualifies, strategy_key
from hub.routing.offers import pending_offer
from hub.routing.snapshot import agent_skills, load_agents, load_queues
from models import (
    Agent,
    CallLegKind,
    ControlKind,
    InteractionSegment,
    SegmentRole,
    utcnow,
)

if TYPE_CHECKING:
    from hub.call_controls import CallControls
    from hub.calls import LiveCall

log = logging.getLogger(__name__)
CONSULT_ANSWER_TIMEOUT = 30.0


@dataclass
class ConsultLeg:
    agent_id: int | None  # None: an external number (``number``) through the trunk
    name: str
    number: str | None = None
    note: str = ""
    call: Call | None = None
    leg_id: int | None = None
    segment_id: int | None = None
    since: datetime = field(default_factory=utcnow)
    conferenced: bool = False
    task: asyncio.Task[None] | None = None


async def consult(
    controls: CallControls,
    interaction_id: int,
    agent_id: int | None,
    user_id: int,
    target_agent_id: int,
    note: str = "",
) -> str:
    live = controls.live_for_agent(interaction_id, agent_id)
    st = controls.state.setdefault(interaction_id, ControlState())
    if st.consult is not None:
        raise ControlError(f"you are already consulting {st.consult.name}")
    if target_agent_id == agent_id:
        raise ControlError("pick another agent")
    async with controls.services.sessionmaker() as db:
        target = await db.get(Agent, target_agent_id)
        if target is None:
            raise ControlError(f"agent {target_agent_id} does not exist")
    if not target.extension or controls.calls.endpoint.registrar.lookup(target.extension) is None:
        raise ControlError("that agent's phone is not registered")
    name = await controls._agent_name(target_agent_id)
    leg = ConsultLeg(agent_id=target_agent_id, name=name, note=note)
    extension = target.extension
    await _start(controls, live, st, leg, user_id, {"agent_id": target_agent_id})
    leg.task = asyncio.create_task(_call(controls, live, leg, extension))
    leg.task.add_done_callback(_log_failure)
    return f"Calling {name}…"


async def consult_queue(
    controls: CallControls,
    interaction_id: int,
    agent_id: int | None,
    user_id: int,
    queue_id: int,
    note: str = "",
) -> str:
    """Consult whoever the queue would route a call to now: among the agents taking work
    with a free voice slot and the queue's skills, the first by the queue's strategy
    (``hub.routing.decision.strategy_key``) whose phone is registered."""
    controls.live_for_agent(interaction_id, agent_id)
    async with controls.services.sessionmaker() as db:
        candidates = await db.run_sync(_queue_candidates, queue_id)
    for candidate in candidates:
        if candidate == agent_id:
            continue
        async with controls.services.sessionmaker() as db:
            target = await db.get(Agent, candidate)
        registrar = controls.calls.endpoint.registrar
        if target is None or not target.extension or registrar.lookup(target.extension) is None:
            continue
        return await consult(controls, interaction_id, agent_id, user_id, candidate, note)
    raise ControlError("nobody in that queue can take a consult now")


async def consult_external(
    controls: CallControls, interaction_id: int, agent_id: int | None, user_id: int, raw: str
) -> str:
    """Consult an external number through the trunk (checked and counted like every call
    out): the caller waits on hold while the agent and the number talk; then conference,
    drop, or complete (the number keeps the caller, the agent wraps up)."""
    from hub.call_transfers import checked_number

    live = controls.live_for_agent(interaction_id, agent_id)
    st = controls.state.setdefault(interaction_id, ControlState())
    if st.consult is not None:
        raise ControlError(f"you are already consulting {st.consult.name}")
    live, number = await checked_number(controls, interaction_id, agent_id, user_id, raw, "consult")
    if st.consult is not None:  # a second click while the number was being checked
        raise ControlError(f"you are already consulting {st.consult.name}")
    leg = ConsultLeg(agent_id=None, name=number, number=number)
    await _start(controls, live, st, leg, user_id, {"number": number})
    leg.task = asyncio.create_task(_call_external(controls, live, leg))
    leg.task.add_done_callback(_log_failure)
    return f"Calling {number}…"


async def _start(
    controls: CallControls,
    live: LiveCall,
    st: ControlState,
    leg: ConsultLeg,
    user_id: int,
    detail: dict[str, Any],
) -> None:
    """The consult begins: the caller goes on hold (music, recording paused) and it is
    recorded on the timeline; the caller's card shows who is being called."""
    st.consult = leg
    if not live.customer.held:
        await live.customer.hold()
        live.customer.pause_recording()
    await controls.record(live, ControlKind.CONSULT, user_id, detail)
    await controls.publish(live)


async def _join(controls: CallControls, live: LiveCall, leg: ConsultLeg, call: Call) -> None:
    """The consulted party joins the call's conference (the caller, on hold, hears music)."""
    assert live.agent_call is not None
    conference = live.agent_call.conference
    if conference is None:  # the caller and agent are always bridged while connected
        await call.hangup()
        return
    call.join(conference, MixRole.FULL)
    call.add_listener(
        lambda _c, event: (
            asyncio.create_task(_hung_up(controls, live, leg)) if event.kind == "ended" else None
        )
    )
    await controls.publish(live)


async def _call(controls: CallControls, live: LiveCall, leg: ConsultLeg, extension: str) -> None:
    assert leg.agent_id is not None

    async def dial(created: list[Call]) -> Call:
        return await controls.calls.endpoint.call_agent(
            extension, timeout=CONSULT_ANSWER_TIMEOUT, auto_answer=True, on_created=created.append
        )

    await _dial(controls, live, leg, dial, CallLegKind.AGENT)


async def _call_external(controls: CallControls, live: LiveCall, leg: ConsultLeg) -> None:
    from hub.call_transfers import dial_trunk

    async def dial(created: list[Call]) -> Call:
        return await dial_trunk(controls, live, leg.number or "", created)

    await _dial(controls, live, leg, dial, CallLegKind.EXTERNAL)


async def _dial(
    controls: CallControls,
    live: LiveCall,
    leg: ConsultLeg,
    dial: Callable[[list[Call]], Awaitable[Call]],
    kind: CallLegKind,
) -> None:
    """Call the consulted party (an agent's phone, or a number through the trunk); a failure
    goes back to the caller, an answer joins the conference (an agent with a segment)."""
    created: list[Call] = []
    st = controls.state.get(live.interaction_id)
    try:
        call = await dial(created)
    except CallFailed as exc:
        failure = f"{exc.status} {exc.reason}"
        if created:
            await controls.store_outbound_leg(live, created[0], kind, leg.agent_id, failure)
        if st is not None and st.consult is leg:
            st.consult = None
            await controls.record(live, ControlKind.CONSULT_CANCEL, None, {"failed": failure})
            await _back_to_caller(controls, live, st)
        return
    if st is None or st.consult is not leg or live.finished or live.agent_call is None:
        await call.hangup()
        return
    leg.call = call
    leg.since = utcnow()
    leg.leg_id = await controls.store_outbound_leg(live, call, kind, leg.agent_id, "")
    if leg.agent_id is not None:
        async with controls.services.sessionmaker() as db:
            segment = InteractionSegment(
                interaction_id=live.interaction_id,
                agent_id=leg.agent_id,
                role=SegmentRole.CONSULT,
                leg_id=leg.leg_id,
                started_at=leg.since,
            )
            db.add(segment)
            await db.commit()
            leg.segment_id = segment.id
    await _join(controls, live, leg, call)


async def _hung_up(controls: CallControls, live: LiveCall, leg: ConsultLeg) -> None:
    """The other agent hung up: a consult or conference goes back to the caller; after a
    completed transfer it is the call's agent leg, which the call service follows."""
    live.poke.set()
    st = controls.state.get(live.interaction_id)
    if st is not None and st.consult is leg:
        st.consult = None
        await _close(controls, live, leg, "hung up")
        await controls.record(live, ControlKind.DROP, None, _who(leg))
        await _back_to_caller(controls, live, st)


async def conference(
    controls: CallControls, interaction_id: int, agent_id: int | None, user_id: int
) -> None:
    """The caller comes off hold: caller, agent and the other agent all talk."""
    live = controls.live_for_agent(interaction_id, agent_id)
    leg = _talking(controls, interaction_id)
    if leg.conferenced:
        raise ControlError("the conference is already on")
    leg.conferenced = True
    await _back_to_caller(controls, live, controls.state[interaction_id], publish=False)
    await controls.record(live, ControlKind.CONFERENCE, user_id, _who(leg))
    await controls.publish(live)


async def drop(
    controls: CallControls, interaction_id: int, agent_id: int | None, user_id: int
) -> None:
    """The other agent leaves (cancels a consult): back to the caller."""
    live = controls.live_for_agent(interaction_id, agent_id)
    st = controls.state.get(interaction_id)
    leg = st.consult if st is not None else None
    if st is None or leg is None:
        raise ControlError("nobody else is on the call")
    st.consult = None
    kind = ControlKind.DROP if leg.conferenced else ControlKind.CONSULT_CANCEL
    await controls.record(live, kind, user_id, _who(leg))
    await _close(controls, live, leg, "dropped" if leg.conferenced else "consult cancelled")
    if leg.task is not None and not leg.task.done():
        leg.task.cancel()
    if leg.call is not None:
        await leg.call.hangup()
    await _back_to_caller(controls, live, st)


async def complete(
    controls: CallControls, interaction_id: int, agent_id: int | None, user_id: int
) -> None:
    """The other agent keeps the caller; this agent's leg is released (no wrap-up: the
    interaction moved on, as with any transfer)."""
    live = controls.live_for_agent(interaction_id, agent_id)
    assert agent_id is not None
    leg = _talking(controls, interaction_id)
    st = controls.state[interaction_id]
    if leg.agent_id is None:
        await _complete_external(controls, live, st, leg, agent_id, user_id)
        return
    routing = controls.services.routing
    st.handing_over = True  # the call service waits until the interaction has moved
    try:
        await routing.transfer_to_agent(
            interaction_id, leg.agent_id, by_agent_id=agent_id, note=leg.note or None
        )
        async with controls.services.sessionmaker() as db:
            offer = await pending_offer(db, interaction_id)
        if offer is None:
            raise ControlError("the transfer's offer is gone")
        await routing.accept_offer(offer.id, leg.agent_id)  # type: ignore[arg-type]
    except (ValueError, LookupError, PermissionError) as exc:
        st.handing_over = False
        live.poke.set()
        raise ControlError(str(exc)) from exc
    old_call, old_leg = live.agent_call, live.agent_leg_id
    st.consult = None
    live.agent_call, live.agent_id, live.agent_leg_id = leg.call, leg.agent_id, leg.leg_id
    await _close(controls, live, leg, "took the call")
    await controls.record(live, ControlKind.CONSULT_COMPLETE, user_id, _who(leg))
    if live.customer.held:
        await live.customer.unhold()
    if live.customer.recording_paused:
        live.customer.resume_recording()
    st.agent_paused = False
    st.handing_over = False
    if old_call is not None:
        await old_call.hangup()
        if old_leg is not None:
            async with controls.services.sessionmaker() as db:
                await controls.calls._close_leg(db, old_leg, old_call)
                if live.recording_id is not None:
                    await records.add_recording_leg(db, live.recording_id, old_leg)
    live.poke.set()  # sync() closes the first agent's segment and opens the new agent's


async def _complete_external(
    controls: CallControls,
    live: LiveCall,
    st: ControlState,
    leg: ConsultLeg,
    agent_id: int,
    user_id: int,
) -> None:
    """The consulted number keeps the caller, as a blind external transfer does once it
    answers: the agent's leg goes and they wrap up; the call outlives the wrap-up and the
    recording goes on (``hub/call_transfers.py``)."""
    st.consult = None  # released below without hanging the number up
    st.handed_off = True
    await controls.record(live, ControlKind.CONSULT_COMPLETE, user_id, {"number": leg.number})
    with contextlib.suppress(LookupError, ValueError, PermissionError):
        await controls.services.routing.wrap_up(live.interaction_id, agent_id=agent_id)
    await controls.calls._release_agent(live, "transferred to an external number")
    live.agent_call, live.agent_leg_id = leg.call, leg.leg_id
    live.poke.set()


def _queue_candidates(db: Session, queue_id: int) -> list[int]:
    """Agent ids the queue would offer a call to now, best first."""
    config = load_queues(db, utcnow())
    view = config.views.get(queue_id)
    if view is None or not view.open:
        raise ControlError("that queue does not exist or is closed now")
    needs = frozenset(view.skills.items())
    agents = [
        a
        for a in load_agents(db, agent_skills(db, config.skill_names))
        if qualifies(a, "voice", needs) and a.free("voice") > 0
    ]
    agents.sort(key=lambda a: strategy_key(a, view.strategy, needs))
    return [a.id for a in agents]


def _who(leg: ConsultLeg) -> dict[str, object]:
    """The consulted party, as a control row's detail."""
    return {"agent_id": leg.agent_id} if leg.agent_id is not None else {"number": leg.number}


def _talking(controls: CallControls, interaction_id: int) -> ConsultLeg:
    st = controls.state.get(interaction_id)
    leg = st.consult if st is not None else None
    if leg is None or leg.call is None or leg.call.state is CallState.ENDED:
        raise ControlError("no other agent is on the line yet")
    return leg


async def _back_to_caller(
    controls: CallControls, live: LiveCall, st: ControlState, *, publish: bool = True
) -> None:
    if live.customer.state is not CallState.ENDED and live.customer.held:
        with contextlib.suppress(Exception):
            await live.customer.unhold()
        if not st.agent_paused:
            live.customer.resume_recording()
    if publish:
        await controls.publish(live)


async def _close(controls: CallControls, live: LiveCall, leg: ConsultLeg, why: str) -> None:
    async with controls.services.sessionmaker() as db:
        if leg.segment_id is not None:
            segment = await db.get(InteractionSegment, leg.segment_id)
            if segment is not None and segment.ended_at is None:
                segment.ended_at = utcnow()
                segment.end_reason = why[:64]
                db.add(segment)
                await db.commit()
        if why != "took the call" and leg.leg_id is not None and leg.call is not None:
            await records.update_leg(
                db,
                leg.leg_id,
                ended_at=records.epoch_to_dt(leg.call.ended_at) or utcnow(),
                end_reason=why[:64],
            )


async def hang_up(controls: CallControls, live: LiveCall, leg: ConsultLeg) -> None:
    """The call ended (or its agent left) during a consult: the other agent's leg goes."""
    if leg.task is not None and not leg.task.done():
        leg.task.cancel()
    if leg.call is not None and leg.call.state is not CallState.ENDED:
        await leg.call.hangup()
    await _close(controls, live, leg, "the call ended")


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a consult call failed", exc_info=task.exception())
