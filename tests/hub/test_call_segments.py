"""Segments of a call left open by a hub process that died end with its dropped legs."""

from __future__ import annotations

from sqlmodel import select

from hub import call_records as records
from hub.call_controls import close_dropped_segments
from hub.services import Services
from models import Agent, CallLegKind, InteractionSegment, utcnow
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
