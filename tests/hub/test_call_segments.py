"""Segments of a call left open by a hub process that died end with its dropped legs."""

from __future__ import annotations

from sqlmodel import select

from hub import call_records as records
from hub.call_controls import close_dropped_segments
from hub.interactions import change_state
from hub.services import Services
from models import (
    Agent,
    CallLegKind,
    Interaction,
    InteractionSegment,
    InteractionState,
    utcnow,
)
from tests.hub.test_calls import incoming


async def test_a_dead_processes_open_segments_end_with_its_dropped_legs(
    services: Services, tmp_path
):
    new = await incoming(services, "+15551230077")
    async with services.sessionmaker() as db:
        agent = (await db.exec(select(Agent))).first()
        assert agent is not None
        leg_id = await records.add_leg(
            db,
            new.interaction_id,
            kind=CallLegKind.AGENT,
            direction="outbound",
            sip_call_id="agent-1",
            remote_uri="sip:1001@phone",
            node="test",
            agent_id=agent.id,
            started_at=utcnow(),
        )
        db.add(
            InteractionSegment(
                interaction_id=new.interaction_id, agent_id=agent.id, role="agent", leg_id=leg_id
            )
        )
        finished = InteractionSegment(
            interaction_id=new.interaction_id,
            agent_id=agent.id,
            role="supervisor",
            mode="listen",
            leg_id=leg_id,
            ended_at=utcnow(),
            end_reason="left by the supervisor",
        )
        db.add(finished)
        await db.commit()
        assert await close_dropped_segments(db) == 0  # its legs are still open: nothing yet
        await records.mark_dropped(db, tmp_path, node=None)
        assert await close_dropped_segments(db) == 1
        rows = (await db.exec(select(InteractionSegment).order_by(InteractionSegment.id))).all()
    assert [(s.role, s.end_reason) for s in rows] == [
        ("agent", "dropped"),
        ("supervisor", "left by the supervisor"),
    ]
    assert all(s.ended_at is not None for s in rows)


async def test_a_call_a_dead_process_left_unended_is_ended_on_the_next_start(
    services: Services, tmp_path
):
    """The legs are marked in one commit and the calls ended in the next: a process that
    dies in between must not leave the caller queued for ever."""
    waiting = await incoming(services, "+15551230078", call_id="waiting")
    moved_on = await incoming(services, "+15551230079", call_id="moved-on")
    async with services.sessionmaker() as db:
        first = await records.mark_dropped(db, tmp_path, node=None)
    assert (first.legs, sorted(first.abandon)) == (
        2,
        [waiting.interaction_id, moved_on.interaction_id],
    )
    async with services.sessionmaker() as db:  # the second: a callback back in its queue
        interaction = await db.get(Interaction, moved_on.interaction_id)
        assert interaction is not None
        change_state(db, interaction, InteractionState.QUEUED, reason="callback try 2")
        await db.commit()
    # ...and nothing ended the first before the process died again: the next start does
    async with services.sessionmaker() as db:
        again = await records.mark_dropped(db, tmp_path, node=None)
    assert (again.legs, again.abandon, again.wrap_up) == (0, [waiting.interaction_id], [])
    await services.routing.abandon(waiting.interaction_id, reason="call dropped")
    async with services.sessionmaker() as db:
        assert (await records.mark_dropped(db, tmp_path, node=None)).abandon == []
