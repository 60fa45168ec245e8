"""Call controls in the agent's hands: hold, mute, recording pause, DTMF, hang-up.

The verbs run on the hub process that carries the call's media (``CallService.live``).
Every change is stored first (a ``ControlEvent``, and an ``InteractionSegment`` for each
agent's part of the call), then published on the interaction's topic as a ``call`` event
that carries the call card's snapshot, so any console tab renders it without a reload.

Supervisor verbs (listen, whisper, barge, force release) live in ``hub.supervision`` and
share this module's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.voice.call import Call, CallEvent, CallState
from hub import call_records as records
from hub.call_records import epoch_to_dt
from hub.events import SUPERVISOR_TOPIC, interaction_topic
from models import CallLeg, ControlEvent, ControlKind, InteractionSegment, SegmentRole, utcnow

if TYPE_CHECKING:
    from hub.call_consult import ConsultLeg
    from hub.calls import CallService, LiveCall

log = logging.getLogger(__name__)
DTMF_DIGITS = re.compile(r"[0-9*#A-D]{1,32}")


class ControlError(ValueError):
    """A verb the call's state does not allow; the message says why (shown as a 409)."""


@dataclass
class SupervisorLeg:
    """A supervisor on the call: their device's leg and their mode."""

    user_id: int
    agent_id: int  # the supervisor's own agent row (their SIP device)
    name: str
    mode: str  # listen | whisper | barge
    call: Call | None = None
    leg_id: int | None = None
    segment_id: int | None = None
    since: datetime = field(default_factory=utcnow)
    task: asyncio.Task[None] | None = None  # ringing the supervisor's phone


@dataclass
class ControlState:
    """What one live call's controls know beyond the ``Call`` objects."""

    agent_id: int | None = None
    agent_name: str = ""
    agent_since: datetime | None = None
    segment_id: int | None = None
    agent_call: Call | None = None
    agent_paused: bool = False  # the agent paused the recording (hold pauses it too)
    supervisor: SupervisorLeg | None = None
    handed_off: bool = False  # transferred out: the call goes on after the agent's wrap-up
    consult: ConsultLeg | None = None  # another agent called in (hub/call_consult.py)
    handing_over: bool = False  # a consult transfer is moving the interaction
    # Back to self-service (hub/call_self_service.py): the dialog node the caller is in,
    # and the last result it brought back.
    self_service: dict[str, Any] | None = None
    self_service_result: dict[str, Any] | None = None


class CallControls:
    """The agent's verbs on live calls, and the hooks the call service calls."""

    def __init__(self, calls: CallService) -> None:
        self.calls = calls
        self.services = calls.services
        self.state: dict[int, ControlState] = {}

    # -- hooks from the call service -----------------------------------------------------

    async def sync(self, live: LiveCall) -> None:
        """The call service reconciled: open the agent's segment once they are bridged."""
        st = self.state.setdefault(live.interaction_id, ControlState())
        if live.agent_call is None or live.agent_id is None or st.agent_call is live.agent_call:
            return
        await self._close_segment(st, "transferred")
        st.agent_call = live.agent_call
        st.agent_id = live.agent_id
        st.agent_since = epoch_to_dt(live.agent_call.answered_at) or utcnow()
        st.agent_name = await self._agent_name(live.agent_id)
        async with self.services.sessionmaker() as db:
            segment = InteractionSegment(
                interaction_id=live.interaction_id,
                agent_id=live.agent_id,
                role=SegmentRole.AGENT,
                leg_id=live.agent_leg_id,
                started_at=st.agent_since,
            )
            db.add(segment)
            await db.commit()
            st.segment_id = segment.id
        live.agent_call.add_listener(
            lambda _call, event: self._on_agent_phone(live.interaction_id, event)
        )
        await self.publish(live)

    async def release_agent(self, live: LiveCall, reason: str) -> None:
        """The agent's part ends while the call goes on (a blind transfer): the customer
        comes off hold, the supervisor (who was following that agent) leaves."""
        st = self.state.get(live.interaction_id)
        if live.customer.held and live.customer.state is not CallState.ENDED:
            with contextlib.suppress(Exception):
                await live.customer.unhold()
        if live.customer.recording_paused:
            live.customer.resume_recording()
        if st is None:
            return
        st.agent_paused = False
        await self._drop_consult(live, st)
        await self._drop_supervisor(live, st, "the agent left the call")
        await self._close_segment(st, reason)
        st.agent_call = None
        st.agent_id = None
        await self.publish(live)

    async def finished(self, live: LiveCall) -> None:
        """The call ended: segments closed, a supervisor on it hung up."""
        st = self.state.pop(live.interaction_id, None)
        if st is None:
            return
        await self._drop_consult(live, st)
        await self._drop_supervisor(live, st, "the call ended")
        await self._close_segment(st, "call ended")
        bus = self.services.bus
        with contextlib.suppress(Exception):  # a hub shutting down may have no bus left
            await bus.publish(interaction_topic(live.interaction_id), "call", card=None)
            await bus.publish(SUPERVISOR_TOPIC, "call", interaction_id=live.interaction_id)

    def _on_agent_phone(self, interaction_id: int, event: CallEvent) -> None:
        """The agent's own phone held (or resumed) by re-INVITE: recorded and shown. Its
        own transfer button (REFER) is carried out by the hub (``hub.call_phone_transfer``)."""
        live = self.calls.live.get(interaction_id)
        if live is None:
            return
        if event.kind == "refer_requested":
            from hub.call_phone_transfer import carry_out_refer

            target = str(event.detail.get("target"))
            task = asyncio.create_task(carry_out_refer(self, live, target))
            task.add_done_callback(_log_failure)
            return
        if event.kind not in ("remote_hold", "remote_unhold"):
            return
        kind = ControlKind.REMOTE_HOLD if event.kind == "remote_hold" else ControlKind.REMOTE_RESUME
        task = asyncio.create_task(self._record_and_publish(live, kind, None, {}))
        task.add_done_callback(_log_failure)

    def handing_over(self, live: LiveCall) -> bool:
        """A consult transfer is moving the interaction: the call service waits."""
        st = self.state.get(live.interaction_id)
        return st is not None and st.handing_over

    def handed_off(self, live: LiveCall) -> bool:
        """The call was handed to an external party: it outlives the agent's wrap-up."""
        st = self.state.get(live.interaction_id)
        return st is not None and st.handed_off

    # -- the agent's verbs ---------------------------------------------------------------

    def live_for_agent(
        self, interaction_id: int, agent_id: int | None, *, in_self_service: bool = False
    ) -> LiveCall:
        """The agent's live call; while the caller is in self-service only the verbs that
        allow it (``in_self_service``: hang-up) may act on it."""
        live = self.calls.live.get(interaction_id)
        if live is None or live.finished:
            raise ControlError("this call is not live on this hub")
        if live.agent_call is None or live.agent_id != agent_id or agent_id is None:
            raise ControlError("you are not connected to this call")
        st = self.state.get(interaction_id)
        if not in_self_service and st is not None and st.self_service is not None:
            raise ControlError("the caller is in self-service; wait for the result")
        return live

    async def hold(self, interaction_id: int, agent_id: int | None, user_id: int) -> None:
        """The caller hears music on hold, the agent hears nothing of them; the recording
        pauses."""
        live = self.live_for_agent(interaction_id, agent_id)
        if live.customer.held:
            raise ControlError("the caller is already on hold")
        await live.customer.hold()
        offset = live.customer.pause_recording()
        await self._record_and_publish(live, ControlKind.HOLD, user_id, {}, offset)

    async def resume(self, interaction_id: int, agent_id: int | None, user_id: int) -> None:
        live = self.live_for_agent(interaction_id, agent_id)
        if not live.customer.held:
            raise ControlError("the caller is not on hold")
        await live.customer.unhold()
        st = self.state.get(interaction_id)
        offset = None
        if st is None or not st.agent_paused:
            offset = live.customer.resume_recording()
        await self._record_and_publish(live, ControlKind.RESUME, user_id, {}, offset)

    async def mute(
        self, interaction_id: int, agent_id: int | None, user_id: int, muted: bool
    ) -> None:
        live = self.live_for_agent(interaction_id, agent_id)
        assert live.agent_call is not None
        if live.agent_call.muted == muted:
            raise ControlError("already muted" if muted else "not muted")
        live.agent_call.set_muted(muted)
        kind = ControlKind.MUTE if muted else ControlKind.UNMUTE
        await self._record_and_publish(live, kind, user_id, {})

    async def recording(
        self, interaction_id: int, agent_id: int | None, user_id: int, paused: bool
    ) -> None:
        """Pause (a card number is being given) or resume the recording."""
        live = self.live_for_agent(interaction_id, agent_id)
        st = self.state.setdefault(interaction_id, ControlState())
        if st.agent_paused == paused:
            raise ControlError("the recording is already paused" if paused else "not paused")
        st.agent_paused = paused
        offset = None
        if paused:
            offset = live.customer.pause_recording()
            kind = ControlKind.RECORDING_PAUSE
        else:
            if not live.customer.held:
                offset = live.customer.resume_recording()
            kind = ControlKind.RECORDING_RESUME
        await self._record_and_publish(live, kind, user_id, {}, offset)

    async def send_dtmf(
        self, interaction_id: int, agent_id: int | None, user_id: int, digits: str
    ) -> None:
        """Digits to the far end as RFC 4733 events (another company's IVR)."""
        if not DTMF_DIGITS.fullmatch(digits):
            raise ControlError("digits are 0-9, *, #, A-D (up to 32)")
        live = self.live_for_agent(interaction_id, agent_id)
        await self._record_and_publish(live, ControlKind.DTMF, user_id, {"digits": digits})
        await live.customer.send_dtmf(digits)

    async def hangup(self, interaction_id: int, agent_id: int | None) -> None:
        """The agent's side hangs up; the call service ends the call and wraps up."""
        live = self.live_for_agent(interaction_id, agent_id, in_self_service=True)
        assert live.agent_call is not None
        await live.agent_call.hangup()
        live.poke.set()

    # -- rows and events -------------------------------------------------------------------

    async def store_outbound_leg(
        self, live: LiveCall, call: Call, kind: str, agent_id: int | None, failure: str
    ) -> int:
        """The leg of a call the hub placed for this interaction (consult, supervisor,
        external party): answered, or ended at once with why it failed."""
        async with self.services.sessionmaker() as db:
            leg_id = await records.add_leg(
                db,
                live.interaction_id,
                kind=kind,
                direction="outbound",
                sip_call_id=call.call_id,
                remote_uri=call.remote_uri,
                node=self.calls.node,
                agent_id=agent_id,
                started_at=epoch_to_dt(call.started_at),  # type: ignore[arg-type]
            )
            if failure:
                await records.update_leg(
                    db,
                    leg_id,
                    ended_at=epoch_to_dt(call.ended_at or call.started_at) or utcnow(),
                    end_reason=failure[:64],
                )
            else:
                await records.update_leg(db, leg_id, answered_at=epoch_to_dt(call.answered_at))
        return leg_id

    async def record(
        self,
        live: LiveCall,
        kind: ControlKind,
        user_id: int | None,
        detail: dict[str, Any],
        segment_id: int | None = None,
        offset: float | None = None,
    ) -> None:
        """Store a control row; ``offset`` is the recording's timeline at the moment
        it happened (read now when not given)."""
        st = self.state.get(live.interaction_id)
        async with self.services.sessionmaker() as db:
            db.add(
                ControlEvent(
                    interaction_id=live.interaction_id,
                    segment_id=segment_id or (st.segment_id if st else None),
                    kind=kind,
                    user_id=user_id,
                    recording_offset=live.customer.recording_offset if offset is None else offset,
                    detail=detail,
                )
            )
            await db.commit()

    async def _record_and_publish(
        self,
        live: LiveCall,
        kind: ControlKind,
        user_id: int | None,
        detail: dict[str, Any],
        offset: float | None = None,
    ) -> None:
        await self.record(live, kind, user_id, detail, offset=offset)
        await self.publish(live)

    def card(self, interaction_id: int) -> dict[str, Any] | None:
        """The call card's snapshot (JSON-able: it travels in the event)."""
        live = self.calls.live.get(interaction_id)
        if live is None or live.finished:
            return None
        st = self.state.get(interaction_id) or ControlState()
        customer = live.customer
        parties: list[dict[str, Any]] = [
            {
                "who": "customer",
                "name": customer.caller_number
                if customer.direction == "inbound"
                else customer.called_number,
                "since": _iso(epoch_to_dt(customer.answered_at)),
                "status": "on hold" if customer.held else "",
            }
        ]
        agent_call = live.agent_call
        if agent_call is not None and st.agent_id is not None:
            flags = []
            if agent_call.muted:
                flags.append("muted")
            if agent_call.remote_held:
                flags.append("phone on hold")
            parties.append(
                {
                    "who": "agent",
                    "name": st.agent_name,
                    "since": _iso(st.agent_since),
                    "status": ", ".join(flags),
                }
            )
        consult = st.consult
        if consult is not None:
            talking = consult.call is not None
            parties.append(
                {
                    "who": "consult",
                    "name": consult.name,
                    "since": _iso(consult.since) if talking else "",
                    "status": "in conference"
                    if consult.conferenced
                    else ("consulting" if talking else "calling…"),
                }
            )
        sup = st.supervisor
        if sup is not None and sup.call is not None:
            parties.append(
                {
                    "who": "supervisor",
                    "name": sup.name,
                    "since": _iso(sup.since),
                    "status": sup.mode,
                }
            )
        return {
            "interaction_id": interaction_id,
            "agent_id": st.agent_id,
            "parties": parties,
            "held": customer.held,
            "muted": bool(agent_call is not None and agent_call.muted),
            "remote_held": bool(agent_call is not None and agent_call.remote_held),
            "recording_paused": customer.recording_paused,
            "agent_paused": st.agent_paused,
            "consult": None
            if consult is None
            else {
                "name": consult.name,
                "talking": consult.call is not None,
                "conferenced": consult.conferenced,
            },
            "supervisor": None
            if sup is None or sup.call is None
            else {"name": sup.name, "mode": sup.mode},
            "self_service": st.self_service,
            "self_service_result": st.self_service_result,
        }

    async def publish(self, live: LiveCall) -> None:
        """One ``call`` event per change, to the interaction's and the agent's topics."""
        card = self.card(live.interaction_id)
        bus = self.services.bus
        await bus.publish(interaction_topic(live.interaction_id), "call", card=card)
        await bus.publish(SUPERVISOR_TOPIC, "call", interaction_id=live.interaction_id)

    # -- helpers ---------------------------------------------------------------------------

    async def _agent_name(self, agent_id: int) -> str:
        from hub.routing.work import agent_name

        async with self.services.sessionmaker() as db:
            return await agent_name(db, agent_id)

    async def _close_segment(self, st: ControlState, reason: str) -> None:
        segment_id, st.segment_id = st.segment_id, None
        if segment_id is None:
            return
        async with self.services.sessionmaker() as db:
            segment = await db.get(InteractionSegment, segment_id)
            if segment is not None and segment.ended_at is None:
                segment.ended_at = utcnow()
                segment.end_reason = reason[:64]
                db.add(segment)
                await db.commit()

    async def _drop_consult(self, live: LiveCall, st: ControlState) -> None:
        leg, st.consult = st.consult, None
        if leg is None:
            return
        from hub.call_consult import hang_up

        await hang_up(self, live, leg)

    async def _drop_supervisor(self, live: LiveCall, st: ControlState, why: str) -> None:
        sup = st.supervisor
        if sup is None:
            return
        from hub.supervision import leave

        await leave(self, live, st, sup, why)


async def close_dropped_segments(db: AsyncSession) -> int:
    """Segments whose leg a dead process left open (now marked dropped) end with it, so
    reports never see a part of a call that goes on forever."""
    dropped = select(CallLeg.id).where(CallLeg.end_reason == "dropped")
    segments = (
        await db.exec(
            select(InteractionSegment).where(
                col(InteractionSegment.ended_at).is_(None),
                col(InteractionSegment.leg_id).in_(dropped),
            )
        )
    ).all()
    for segment in segments:
        leg = await db.get(CallLeg, segment.leg_id)
        segment.ended_at = (leg.ended_at if leg is not None else None) or utcnow()
        segment.end_reason = "dropped"
        db.add(segment)
    await db.commit()
    return len(segments)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a call control failed", exc_info=task.exception())
