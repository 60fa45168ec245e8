"""Live queue and agent figures for the supervisor wallboard, read straight from the rows.

Service level is today's (UTC day): of the interactions that entered a queue today and have
been answered or abandoned, the share answered within the queue's ``sla_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.routing.decision import AgentView, WaitingView, qualifies, requirements
from hub.routing.snapshot import agent_skills, as_utc, epoch, load_queues
from hub.routing.work import LOAD_STATES
from models import Agent, Interaction, InteractionState, PresenceState, User, utcnow

S = InteractionState
P = PresenceState


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue_id: int
    name: str
    waiting: int  # QUEUED or OFFERED (ringing)
    longest_wait_seconds: int
    service_level_pct: float | None  # None until something was answered or abandoned today
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


def _start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def queue_stats(db: AsyncSession) -> list[QueueStats]:
    now = utcnow()
    config = await db.run_sync(load_queues, now)
    waiting_rows = (
        await db.exec(
            select(Interaction.queue_id, Interaction.queued_at).where(
                col(Interaction.state).in_([S.QUEUED.value, S.OFFERED.value])
            )
        )
    ).all()
    today = (
        await db.exec(
            select(
                Interaction.queue_id,
                Interaction.queued_at,
                Interaction.answered_at,
                Interaction.closed_at,
            ).where(
                col(Interaction.queued_at) >= _start_of_day(now),
                col(Interaction.answered_at).is_not(None) | (Interaction.state == S.ABANDONED),
            )
        )
    ).all()
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
        handled = in_sla = 0
        for q, queued_at, answered_at, _closed in today:
            if q != queue_id:
                continue
            handled += 1
            if (
                answered_at is not None
                and epoch(answered_at) - epoch(queued_at) <= queue.sla_seconds
            ):
                in_sla += 1
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
                service_level_pct=round(100.0 * in_sla / handled, 1) if handled else None,
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
