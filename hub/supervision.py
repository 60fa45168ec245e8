"""Live supervision of calls: listen, whisper, barge (switchable live) and force release.

The hub calls the supervisor's own SIP device (their agent row's extension) with
``answer-after=0`` and joins it to the call's conference in the chosen role
(``channels.voice.mixer``): listen hears both and is heard by nobody, whisper is heard by
the agent only, barge is a three-way call. Every intervention is audited
(``hub.audit``) and kept as a ``ControlEvent``; the supervisor's part is a segment.
An admin may limit which queues a supervisor monitors (``SupervisorQueue``; none: all).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from sqlmodel import select

from channels.voice.call import Call, CallState
from channels.voice.sip_endpoint import CallFailed
from hub import audit
from hub import call_records as records
from hub.call_controls import ControlError, ControlState, SupervisorLeg
from models import (
    Agent,
    CallLegKind,
    ControlKind,
    Interaction,
    InteractionSegment,
    SegmentRole,
    SupervisorQueue,
    User,
    utcnow,
)

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from hub.call_controls import CallControls
    from hub.calls import LiveCall

log = logging.getLogger(__name__)
MODES = ("listen", "whisper", "barge")
SUPERVISOR_ANSWER_TIMEOUT = 20.0


async def may_monitor(db: AsyncSession, user_id: int, queue_id: int | None) -> bool:
    """A supervisor with no monitored queues set may monitor every queue."""
    rows = (
        await db.exec(select(SupervisorQueue.queue_id).where(SupervisorQueue.user_id == user_id))
    ).all()
    return not rows or queue_id in rows


async def supervise(controls: CallControls, interaction_id: int, user_id: int, mode: str) -> str:
    """Join the call in ``mode``, or switch a supervisor already on it. Returns what
    happens, for the page ("Calling your phone…", "Now whispering")."""
    if mode not in MODES:
        raise ControlError("pick listen, whisper or barge")
    async with controls.services.sessionmaker() as db:
        interaction = await db.get(Interaction, interaction_id)
        user = await db.get(User, user_id)
        device = (await db.exec(select(Agent).where(Agent.user_id == user_id))).first()
        if interaction is None:
            raise ControlError(f"call #{interaction_id} does not exist")
        if not await may_monitor(db, user_id, interaction.queue_id):
            raise PermissionError("you do not monitor this call's queue")
    live = controls.calls.live.get(interaction_id)
    if live is None or live.finished:
        raise ControlError("this call is not live on this hub")
    if live.agent_call is None:
        raise ControlError("no agent is on this call yet")
    st = controls.state.setdefault(interaction_id, ControlState())
    if st.self_service is not None:  # hub/call_self_service.py: the caller keys a PIN…
        raise ControlError("the caller is in self-service; nobody may hear them now")
    sup = st.supervisor
    if sup is not None and sup.user_id != user_id:
        raise ControlError(f"{sup.name} is already supervising this call")
    if sup is not None:
        if sup.call is None:
            sup.mode = mode  # still ringing: joins in the new mode
            return "Your phone is being called."
        if sup.mode == mode:
            raise ControlError(f"you are already in {mode} mode")
        previous, sup.mode = sup.mode, mode
        _apply(sup, live)
        await _audited(controls, live, user_id, f"call.{mode}", {"from": previous, "to": mode})
        await controls.record(
            live,
            ControlKind.SUPERVISOR_MODE,
            user_id,
            {"from": previous, "to": mode},
            segment_id=sup.segment_id,
        )
        await _set_segment_mode(controls, sup, mode)
        await controls.publish(live)
        return f"Now in {mode} mode."
    if device is None or not device.extension:
        raise ControlError("you have no SIP device (extension) to join with")
    name = user.display_name if user is not None else "Supervisor"
    sup = SupervisorLeg(user_id=user_id, agent_id=device.id, name=name, mode=mode)  # type: ignore[arg-type]
    st.supervisor = sup
    sup.task = asyncio.create_task(_join(controls, live, sup, device.extension))
    return "Calling your phone…"


async def _join(controls: CallControls, live: LiveCall, sup: SupervisorLeg, extension: str) -> None:
    st = controls.state.get(live.interaction_id)
    created: list[Call] = []
    try:
        call = await controls.calls.endpoint.call_agent(
            extension,
            timeout=SUPERVISOR_ANSWER_TIMEOUT,
            auto_answer=True,
            on_created=created.append,
        )
    except CallFailed as exc:
        log.info("supervisor %s phone: %s %s", sup.user_id, exc.status, exc.reason)
        if st is not None and st.supervisor is sup:
            st.supervisor = None
        if created:
            await controls.store_outbound_leg(
                live, created[0], CallLegKind.SUPERVISOR, sup.agent_id, f"{exc.status} {exc.reason}"
            )
        return
    if st is None or st.supervisor is not sup or live.finished or live.agent_call is None:
        await call.hangup()
        return
    sup.call = call
    sup.since = utcnow()
    sup.leg_id = await controls.store_outbound_leg(
        live, call, CallLegKind.SUPERVISOR, sup.agent_id, ""
    )
    async with controls.services.sessionmaker() as db:
        segment = InteractionSegment(
            interaction_id=live.interaction_id,
            agent_id=sup.agent_id,
            role=SegmentRole.SUPERVISOR,
            mode=sup.mode,
            leg_id=sup.leg_id,
            started_at=sup.since,
        )
        db.add(segment)
        await db.commit()
        sup.segment_id = segment.id
    _apply(sup, live)
    call.add_listener(
        lambda c, event: (
            asyncio.create_task(_phone_hung_up(controls, live, sup))
            if event.kind == "ended"
            else None
        )
    )
    await _audited(controls, live, sup.user_id, f"call.{sup.mode}", {"mode": sup.mode})
    await controls.record(
        live,
        ControlKind.SUPERVISOR_JOIN,
        sup.user_id,
        {"mode": sup.mode},
        segment_id=sup.segment_id,
    )
    await controls.publish(live)


def _apply(sup: SupervisorLeg, live: LiveCall) -> None:
    """Put the supervisor's leg into the call's conference in its mode."""
    assert sup.call is not None and live.agent_call is not None
    if sup.mode == "listen":
        sup.call.listen(live.agent_call)
    elif sup.mode == "whisper":
        sup.call.whisper(live.agent_call)
    else:
        sup.call.barge(live.agent_call)


async def _phone_hung_up(controls: CallControls, live: LiveCall, sup: SupervisorLeg) -> None:
    st = controls.state.get(live.interaction_id)
    if st is not None and st.supervisor is sup:
        await leave(controls, live, st, sup, "the supervisor hung up")
        await controls.publish(live)


async def leave(
    controls: CallControls, live: LiveCall, st: ControlState, sup: SupervisorLeg, why: str
) -> None:
    """The supervisor's leg is hung up and their segment closed (idempotent)."""
    if st.supervisor is not sup:
        return
    st.supervisor = None
    if sup.task is not None and not sup.task.done():
        sup.task.cancel()
    call = sup.call
    if call is not None and call.state is not CallState.ENDED:
        await call.hangup()
    async with controls.services.sessionmaker() as db:
        if sup.leg_id is not None and call is not None:
            await records.update_leg(
                db,
                sup.leg_id,
                ended_at=records.epoch_to_dt(call.ended_at) or utcnow(),
                end_reason=(call.end_reason or "ended")[:64],
            )
        if sup.segment_id is not None:
            segment = await db.get(InteractionSegment, sup.segment_id)
            if segment is not None and segment.ended_at is None:
                segment.ended_at = utcnow()
                segment.end_reason = why[:64]
                db.add(segment)
                await db.commit()
    if call is not None:
        await controls.record(
            live, ControlKind.SUPERVISOR_LEAVE, sup.user_id, {"why": why}, segment_id=sup.segment_id
        )


async def stop_supervising(controls: CallControls, interaction_id: int, user_id: int) -> None:
    live = controls.calls.live.get(interaction_id)
    st = controls.state.get(interaction_id)
    if live is None or st is None or st.supervisor is None or st.supervisor.user_id != user_id:
        raise ControlError("you are not on this call")
    await leave(controls, live, st, st.supervisor, "left by the supervisor")
    await _audited(controls, live, user_id, "call.leave", {})
    await controls.publish(live)


async def force_release(controls: CallControls, interaction_id: int, user_id: int) -> None:
    """End the call for everyone (audited); the agent goes to wrap-up as after a hang-up."""
    async with controls.services.sessionmaker() as db:
        interaction = await db.get(Interaction, interaction_id)
        if interaction is None:
            raise ControlError(f"call #{interaction_id} does not exist")
        if not await may_monitor(db, user_id, interaction.queue_id):
            raise PermissionError("you do not monitor this call's queue")
    live = controls.calls.live.get(interaction_id)
    if live is None or live.finished:
        raise ControlError("this call is not live on this hub")
    await controls.record(live, ControlKind.FORCE_RELEASE, user_id, {})
    await _audited(controls, live, user_id, "call.force_release", {})
    with contextlib.suppress(Exception):
        await live.customer.hangup()
    live.poke.set()


async def _set_segment_mode(controls: CallControls, sup: SupervisorLeg, mode: str) -> None:
    if sup.segment_id is None:
        return
    async with controls.services.sessionmaker() as db:
        segment = await db.get(InteractionSegment, sup.segment_id)
        if segment is not None:
            segment.mode = mode
            db.add(segment)
            await db.commit()


async def _audited(
    controls: CallControls, live: LiveCall, user_id: int, action: str, after: dict[str, str]
) -> None:
    async with controls.services.sessionmaker() as db:
        audit.record(
            db,
            user_id=user_id,
            action=action,
            entity="interaction",
            entity_id=live.interaction_id,
            after={"agent_id": live.agent_id, **after},
        )
        await db.commit()
