"""Live queue and agent figures for the supervisor wallboard, read straight from the rows.

Service level is today's in the organization's time zone, by the one shared definition in
``hub.service_level`` (contacts still waiting past the target count as misses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.routing.decision import AgentView, WaitingView, qualifies, requirements
from hub.routing.snapshot import agent_skills, as_utc, epoch, load_queues
from hub.routing.work import LOAD_STATES
from hub.service_level import service_levels
from models import Agent, Interaction, InteractionState, PresenceState, User, utcnow

S = InteractionState
P = PresenceState


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue_id: int
    name: str
    waiting: int  # QUEUED or OFFERED (ringing)
    longest_wait_seconds: int
    service_level_pct: float | None  # None until something counts today (hub.service_level)
    agents_ready: int  # qualified agents with presence READY
    agents_busy: int  # qualified agents BUSY or in WRAP_UP
    open: bool


@dataclass(frozen=True, slots=True)
class AgentStatus:
    agent_id: int
    user_id: int
    name: str
    presence: str
    reason: str | None
    since: datetime | None
    interactions: list[tuple[int, str, str]] = field(default_factory=list)  # (id, channel, state)


async def queue_stats(
    db: AsyncSession, *, timezone: str = "UTC", now: datetime | None = None
) -> list[QueueStats]:
    """Per active queue: waiting now, longest wait, today's service level, staffing."""
    now = now or utcnow()
    config = await db.run_sync(load_queues, now)
    waiting_rows = (
        await db.exec(
            select(Interaction.queue_id, Interaction.queued_at).where(
                col(Interaction.state).in_([S.QUEUED.value, S.OFFERED.value])
            )
        )
    ).all()
    levels = await service_levels(
        db,
        {queue_id: queue.sla_seconds for queue_id, queue in config.rows.items()},  # type: ignore[misc]
        now=now,
        timezone=timezone,
    )
    agents = (await db.exec(select(Agent).where(Agent.presence != P.OFFLINE))).all()
    skills = await db.run_sync(agent_skills, config.skill_names)
    result = []
    for queue_id, queue in sorted(config.rows.items()):
        if not queue.active:
            continue
        waits = [
            now.timestamp() - epoch(queued_at, now.timestamp())
            for q, queued_at in waiting_rows
            if q == queue_id
        ]
        view = config.views[queue_id]  # type: ignore[index]
        needs = requirements(WaitingView(0, queue_id, "", 0, 0.0), view)  # type: ignore[arg-type]
        ready = busy = 0
        for agent in agents:
            capacity = dict(agent.capacity or {})
            profile = AgentView(agent.id, skills.get(agent.id, {}), capacity)  # type: ignore[arg-type]
            if not any(
                qualifies(profile, channel, needs) for channel in queue.channels or capacity
            ):
                continue
            if agent.presence == P.READY:
                ready += 1
            elif agent.presence in (P.BUSY, P.WRAP_UP):
                busy += 1
        result.append(
            QueueStats(
                queue_id=queue_id,  # type: ignore[arg-type]
                name=queue.name,
                waiting=len(waits),
                longest_wait_seconds=int(max(waits, default=0)),
                service_level_pct=levels[queue_id].pct,  # type: ignore[index]
                agents_ready=ready,
                agents_busy=busy,
                open=view.open,
            )
        )
    return result


async def agent_stats(db: AsyncSession) -> list[AgentStatus]:
    rows = (
        await db.exec(
            select(Agent, User)
            .join(User, col(User.id) == Agent.user_id)
            .order_by(User.display_name)
        )
    ).all()
    work = (
        await db.exec(
            select(Interaction.agent_id, Interaction.id, Interaction.channel, Interaction.state)
            .where(col(Interaction.state).in_(LOAD_STATES))
            .order_by(Interaction.id)
        )
    ).all()
    by_agent: dict[int, list[tuple[int, str, str]]] = {}
    for agent_id, interaction_id, channel, state in work:
        by_agent.setdefault(agent_id, []).append((interaction_id, channel, state))
    return [
        AgentStatus(
            agent_id=agent.id,  # type: ignore[arg-type]
            user_id=user.id,  # type: ignore[arg-type]
            name=user.display_name,
            presence=agent.presence,
            reason=agent.presence_reason,
            since=as_utc(agent.presence_since),
            interactions=by_agent.get(agent.id, []),  # type: ignore[arg-type]
        )
        for agent, user in rows
    ]


@dataclass(frozen=True, slots=True)
class OpenWork:
    """One open text interaction a supervisor may move (``RoutingService.reassign``)."""

    interaction_id: int
    channel: str
    state: str
    contact: str
    queue: str
    agent: str | None
    queued_at: datetime | None


REASSIGNABLE_STATES = (S.QUEUED.value, S.OFFERED.value, S.ACTIVE.value, S.VOICEMAIL.value)


async def open_work(db: AsyncSession, limit: int = 200) -> list[OpenWork]:
    """Open text interactions, oldest wait first: waiting, ringing, active, left messages.
    Calls are not listed: a call in progress stays with its agent until hang-up."""
    from models import Contact, Queue

    rows = (
        await db.exec(
            select(Interaction, Contact.name)
            .join(Contact, col(Contact.id) == Interaction.contact_id)
            .where(
                col(Interaction.state).in_(REASSIGNABLE_STATES),
                Interaction.channel != "voice",
            )
            .order_by(col(Interaction.queued_at), col(Interaction.id))
            .limit(limit)
        )
    ).all()
    queues = {q.id: q.name for q in (await db.exec(select(Queue))).all()}
    names = {
        agent_id: name
        for agent_id, name in (await db.exec(select(Agent.id, User.display_name).join(User))).all()
    }
    return [
        OpenWork(
            interaction_id=interaction.id,  # type: ignore[arg-type]
            channel=interaction.channel,
            state=interaction.state,
            contact=contact or "Unknown contact",
            queue=queues.get(interaction.queue_id, "—"),  # type: ignore[arg-type]
            agent=names.get(interaction.agent_id) if interaction.agent_id else None,  # type: ignore[arg-type]
            queued_at=as_utc(interaction.queued_at),
        )
        for interaction, contact in rows
    ]
