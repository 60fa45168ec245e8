"""Reading the routing snapshot from the database (plain column reads: 10,000 rows are cheap).

The readers are synchronous: the dispatcher runs them inside its write transaction (one
thread hop on SQLite); async callers use ``await db.run_sync(reader, ...)``.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, union_all
from sqlmodel import Session, col, select

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


def load_queue_rows(db: Session) -> QueueRows:
    queues = {q.id: q for q in db.exec(select(Queue)).all()}
    hours = {h.id: h for h in db.exec(select(BusinessHours)).all()}
    names = {s.id: s.name for s in db.exec(select(Skill)).all()}
    skills: dict[int, dict[str, int]] = {}
    for queue_id, skill_id, level in db.exec(
        select(QueueSkill.queue_id, QueueSkill.skill_id, QueueSkill.min_level)
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


def load_queues(db: Session, now: datetime) -> QueueConfig:
    return resolve_queues(load_queue_rows(db), now)


def agent_skills(db: Session, names: dict[int, str]) -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = {}
    rows = db.exec(select(AgentSkill.agent_id, AgentSkill.skill_id, AgentSkill.level))
    for agent_id, skill_id, level in rows.all():
        result.setdefault(agent_id, {})[names[skill_id]] = level
    return result


# The dispatcher runs these on every pass: built once, with expanding ``IN`` parameters, so
# a pass pays neither statement construction nor compilation (both cached per shape).
_IDS = bindparam("ids", expanding=True)
_AGENTS = select(
    Agent.id, Agent.capacity, Agent.idle_since, Agent.presence_since, Agent.last_offer_at
).where(col(Agent.presence).in_(ROUTABLE_PRESENCE))
_AGENTS_BY_ID = _AGENTS.where(col(Agent.id).in_(_IDS))
_WAITING = select(
    Interaction.id,
    Interaction.queue_id,
    Interaction.channel,
    Interaction.priority,
    Interaction.queued_at,
    Interaction.required_skills,
    Interaction.overflowed,
).where(Interaction.state == InteractionState.QUEUED, col(Interaction.queue_id).is_not(None))
_WAITING_BY_ID = _WAITING.where(col(Interaction.id).in_(_IDS))
_SINCE = bindparam("since")
_SAID_NO = select(Offer.interaction_id, Offer.agent_id, Offer.decided_at).where(
    col(Offer.outcome).in_([OfferOutcome.REJECTED.value, OfferOutcome.TIMEOUT.value]),
    col(Offer.decided_at) >= _SINCE,
)
_HANDED_BACK = select(
    InteractionEvent.interaction_id, InteractionEvent.agent_id, InteractionEvent.at
).where(
    col(InteractionEvent.at) >= _SINCE,
    InteractionEvent.from_state == InteractionState.ACTIVE.value,
    InteractionEvent.to_state == InteractionState.QUEUED.value,
    col(InteractionEvent.agent_id).is_not(None),
)
_EXCLUDED = union_all(_SAID_NO, _HANDED_BACK)
_EXCLUDED_BY_ID = union_all(
    _SAID_NO.where(col(Offer.interaction_id).in_(_IDS)),
    _HANDED_BACK.where(col(InteractionEvent.interaction_id).in_(_IDS)),
)


def load_agents(
    db: Session, skills: dict[int, dict[str, int]], ids: Collection[int] | None = None
) -> list[AgentView]:
    """Agents who may take new work (READY, or BUSY with spare capacity), with their load;
    only those of ``ids`` when given.

    ``skills`` (agent id → skill name → level) comes from ``agent_skills``, usually cached.
    """
    if ids is None:
        rows = db.exec(_AGENTS).all()
    else:
        rows = db.exec(_AGENTS_BY_ID, params={"ids": list(ids)}).all()
    if not rows:
        return []
    loads = agent_loads(db, None if ids is None else [row[0] for row in rows])
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


def load_waiting(
    db: Session, config: QueueConfig, now: datetime, ids: Collection[int] | None = None
) -> list[WaitingView]:
    """QUEUED interactions with a queue, and who must not get each again just yet; only
    those of ``ids`` when given."""
    if ids is None:
        waiting = db.exec(_WAITING).all()
    else:
        waiting = db.exec(_WAITING_BY_ID, params={"ids": list(ids)}).all()
    if not waiting:
        return []
    since = now - timedelta(seconds=REOFFER_COOLDOWN_SECONDS)
    if ids is None:
        recent = db.exec(_EXCLUDED, params={"since": since})  # type: ignore[call-overload]
    else:
        recent = db.exec(  # type: ignore[call-overload]
            _EXCLUDED_BY_ID, params={"since": since, "ids": [row[0] for row in waiting]}
        )
    excluded: dict[int, set[int]] = {}
    excluded_since: dict[int, float] = {}  # the oldest exclusion of each item
    for interaction_id, agent_id, at in recent.all():
        excluded.setdefault(interaction_id, set()).add(agent_id)
        excluded_since[interaction_id] = min(
            excluded_since.get(interaction_id, math.inf), epoch(at)
        )
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
                excluded_until=excluded_since.get(interaction_id, math.inf)
                + REOFFER_COOLDOWN_SECONDS,
            )
        )
    return items
