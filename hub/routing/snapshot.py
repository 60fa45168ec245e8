"""Reading the routing snapshot from the database (plain column reads: 10,000 rows are cheap)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import union_all
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
    InteractionEvent,
    InteractionState,
    Offer,
    OfferOutcome,
    Queue,
    QueueSkill,
    Skill,
)

# An agent who rejected, missed or transferred away an interaction is not offered the same
# one again for this long.
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
class QueueRows:
    """Queue configuration as stored: it changes rarely, so the dispatcher may cache it."""

    queues: dict[int, Queue]
    hours: dict[int, BusinessHours]
    skills: dict[int, dict[str, int]]  # queue id → skill name → minimum level
    skill_names: dict[int, str]


@dataclass
class QueueConfig:
    """Queues with their skills and hours resolved: what routing, estimates and stats read."""

    rows: dict[int, Queue]
    views: dict[int, QueueView]
    skill_names: dict[int, str]


async def load_queue_rows(db: AsyncSession) -> QueueRows:
    queues = {q.id: q for q in (await db.exec(select(Queue))).all()}
    hours = {h.id: h for h in (await db.exec(select(BusinessHours))).all()}
    names = {s.id: s.name for s in (await db.exec(select(Skill))).all()}
    skills: dict[int, dict[str, int]] = {}
    for queue_id, skill_id, level in (
        await db.exec(select(QueueSkill.queue_id, QueueSkill.skill_id, QueueSkill.min_level))
    ).all():
        skills.setdefault(queue_id, {})[names[skill_id]] = level
    return QueueRows(queues, hours, skills, names)  # type: ignore[arg-type]


def resolve_queues(rows: QueueRows, now: datetime) -> QueueConfig:
    """Views for the router, with ``open`` from each queue's business hours at ``now``."""
    views = {
        queue_id: QueueView(
            id=queue_id,
            priority=queue.priority,
            strategy=queue.strategy,
            skills=rows.skills.get(queue_id, {}),
            open=queue.active and is_open(rows.hours.get(queue.hours_id), now),  # type: ignore[arg-type]
        )
        for queue_id, queue in rows.queues.items()
    }
    return QueueConfig(rows=rows.queues, views=views, skill_names=rows.skill_names)


async def load_queues(db: AsyncSession, now: datetime) -> QueueConfig:
    return resolve_queues(await load_queue_rows(db), now)


async def agent_skills(db: AsyncSession, names: dict[int, str]) -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = {}
    rows = await db.exec(select(AgentSkill.agent_id, AgentSkill.skill_id, AgentSkill.level))
    for agent_id, skill_id, level in rows.all():
        result.setdefault(agent_id, {})[names[skill_id]] = level
    return result


async def load_agents(db: AsyncSession, skills: dict[int, dict[str, int]]) -> list[AgentView]:
    """Agents who may take new work (READY, or BUSY with spare capacity), with their load.

    ``skills`` (agent id → skill name → level) comes from ``agent_skills``, usually cached.
    """
    rows = (
        await db.exec(
            select(
                Agent.id,
                Agent.capacity,
                Agent.idle_since,
                Agent.presence_since,
                Agent.last_offer_at,
            ).where(col(Agent.presence).in_(ROUTABLE_PRESENCE))
        )
    ).all()
    if not rows:
        return []
    loads = await agent_loads(db)
    return [
        AgentView(
            id=agent_id,
            skills=skills.get(agent_id, {}),
            capacity=dict(capacity or {}),
            load=loads.get(agent_id, {}),
            idle_since=epoch(idle_since or presence_since),
            last_offer_at=epoch(last_offer_at, default=float("-inf")),
        )
        for agent_id, capacity, idle_since, presence_since, last_offer_at in rows
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
    said_no = select(Offer.interaction_id, Offer.agent_id).where(
        col(Offer.outcome).in_([OfferOutcome.REJECTED.value, OfferOutcome.TIMEOUT.value]),
        col(Offer.decided_at) >= since,
    )
    handed_back = select(InteractionEvent.interaction_id, InteractionEvent.agent_id).where(
        col(InteractionEvent.at) >= since,
        InteractionEvent.from_state == InteractionState.ACTIVE.value,
        InteractionEvent.to_state == InteractionState.QUEUED.value,
        col(InteractionEvent.agent_id).is_not(None),
    )
    recent = await db.exec(union_all(said_no, handed_back))  # type: ignore[call-overload]
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
