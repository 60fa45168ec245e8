"""Reading the routing snapshot from the database (plain column reads: 10,000 rows are cheap)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.routing.decision import AgentView, QueueView, WaitingView
from hub.routing.hours import is_open
from hub.routing.work import ROUTABLE_PRESENCE, agent_loads
from models import (
    Agent,
    AgentSkill,
    BusinessHours,
    Interaction,
    InteractionState,
    Offer,
    OfferOutcome,
    Queue,
    QueueSkill,
    Skill,
)

# An agent who rejected or missed an interaction is not offered the same one for this long.
REOFFER_COOLDOWN_SECONDS = 60.0


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def epoch(value: datetime | None, default: float = 0.0) -> float:
    aware = as_utc(value)
    return default if aware is None else aware.timestamp()


@dataclass
class QueueConfig:
    """Queues with their skills and hours resolved: what routing, estimates and stats read."""

    rows: dict[int, Queue]
    views: dict[int, QueueView]
    skill_names: dict[int, str]


async def load_queues(db: AsyncSession, now: datetime) -> QueueConfig:
    rows = {q.id: q for q in (await db.exec(select(Queue))).all()}
    hours = {h.id: h for h in (await db.exec(select(BusinessHours))).all()}
    names = {s.id: s.name for s in (await db.exec(select(Skill))).all()}
    skills: dict[int, dict[str, int]] = {}
    for qs in (await db.exec(select(QueueSkill))).all():
        skills.setdefault(qs.queue_id, {})[names[qs.skill_id]] = qs.min_level
    views = {
        queue_id: QueueView(
            id=queue_id,  # type: ignore[arg-type]
            priority=queue.priority,
            strategy=queue.strategy,
            skills=skills.get(queue_id, {}),  # type: ignore[arg-type]
            open=queue.active and is_open(hours.get(queue.hours_id), now),
        )
        for queue_id, queue in rows.items()
    }
    return QueueConfig(rows=rows, views=views, skill_names=names)  # type: ignore[arg-type]


async def agent_skills(db: AsyncSession, names: dict[int, str]) -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = {}
    rows = await db.exec(select(AgentSkill.agent_id, AgentSkill.skill_id, AgentSkill.level))
    for agent_id, skill_id, level in rows.all():
        result.setdefault(agent_id, {})[names[skill_id]] = level
    return result


async def load_agents(db: AsyncSession, names: dict[int, str]) -> list[AgentView]:
    """Agents who may take new work (READY, or BUSY with spare capacity), with their load."""
    rows = (await db.exec(select(Agent).where(col(Agent.presence).in_(ROUTABLE_PRESENCE)))).all()
    if not rows:
        return []
    skills = await agent_skills(db, names)
    loads = await agent_loads(db, [a.id for a in rows])  # type: ignore[misc]
    return [
        AgentView(
            id=agent.id,  # type: ignore[arg-type]
            skills=skills.get(agent.id, {}),  # type: ignore[arg-type]
            capacity=dict(agent.capacity or {}),
            load=loads[agent.id],  # type: ignore[index]
            idle_since=epoch(agent.idle_since or agent.presence_since),
            last_offer_at=epoch(agent.last_offer_at, default=float("-inf")),
        )
        for agent in rows
    ]


async def load_waiting(db: AsyncSession, config: QueueConfig, now: datetime) -> list[WaitingView]:
    """QUEUED interactions with a queue, and who must not get each again just yet."""
    rows = await db.exec(
        select(
            Interaction.id,
            Interaction.queue_id,
            Interaction.channel,
            Interaction.priority,
            Interaction.queued_at,
            Interaction.required_skills,
            Interaction.overflowed,
        ).where(
            Interaction.state == InteractionState.QUEUED,
            col(Interaction.queue_id).is_not(None),
        )
    )
    waiting = rows.all()
    excluded: dict[int, set[int]] = {}
    since = now - timedelta(seconds=REOFFER_COOLDOWN_SECONDS)
    recent = await db.exec(
        select(Offer.interaction_id, Offer.agent_id).where(
            col(Offer.outcome).in_([OfferOutcome.REJECTED.value, OfferOutcome.TIMEOUT.value]),
            col(Offer.decided_at) >= since,
        )
    )
    for interaction_id, agent_id in recent.all():
        excluded.setdefault(interaction_id, set()).add(agent_id)
    items = []
    for interaction_id, queue_id, channel, priority, queued_at, required, overflowed in waiting:
        queue = config.rows.get(queue_id)
        relaxed = bool(
            overflowed
            and queue is not None
            and queue.overflow_relax_skills
            and queue.overflow_queue_id is None
        )
        items.append(
            WaitingView(
                id=interaction_id,
                queue_id=queue_id,
                channel=channel,
                priority=priority,
                queued_at=epoch(queued_at, default=now.timestamp()),
                required_skills=dict(required or {}),
                relaxed=relaxed,
                excluded_agents=frozenset(excluded.get(interaction_id, ())),
            )
        )
    return items
