"""Live queue and agent figures for the supervisor wallboard, read straight from the rows.

Service level is today's in the organization's time zone, by the one shared definition in
``hub.service_level`` (contacts still waiting past the target count as misses), under each
queue's own rule. Today's handled, abandoned, ASA and AHT per queue and per channel come
from the report rollups (``hub.reports.figures``, the same figures as the reports), which
the rollup job keeps within ``HUB_REPORTS_ROLLUP_SECONDS`` of the events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

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
    handled: int = 0  # today (reports' figures)
    abandoned: int = 0
    asa_seconds: float | None = None
    aht_seconds: float | None = None
    alerts: tuple[str, ...] = ()  # thresholds passed (Queue.alert_*): the tile turns red


@dataclass(frozen=True, slots=True)
class ChannelStats:
    channel: str
    offered: int
    handled: int
    abandoned: int
    asa_seconds: float | None
    aht_seconds: float | None


def today_request(timezone: str, now: datetime, by: Any) -> Any:
    from hub.reports.figures import Period, ReportRequest

    today = now.astimezone(ZoneInfo(timezone)).date()
    return ReportRequest(today, today, Period.MONTH, by, timezone)


async def today_by(db: AsyncSession, by: Any, *, timezone: str, now: datetime) -> dict:
    """Today's report totals keyed by queue id or channel (the reports' implementation)."""
    from hub.reports.figures import build_report

    report = await db.run_sync(build_report, today_request(timezone, now, by), [])
    return {row.key: row.totals for row in report.rows}


def alerts_of(queue: Any, waiting: int, longest: int, sl_pct: float | None) -> tuple[str, ...]:
    """Which of the queue's wallboard thresholds are passed now."""
    found = []
    if queue.alert_waiting and waiting >= queue.alert_waiting:
        found.append(f"{waiting} waiting (alert at {queue.alert_waiting})")
    if queue.alert_longest_wait_seconds and longest >= queue.alert_longest_wait_seconds:
        found.append(f"longest wait {longest} s (alert at {queue.alert_longest_wait_seconds} s)")
    if queue.alert_sl_below_pct and sl_pct is not None and sl_pct < queue.alert_sl_below_pct:
        found.append(f"service level {sl_pct} % (alert below {queue.alert_sl_below_pct} %)")
    return tuple(found)


async def channel_stats(
    db: AsyncSession, *, timezone: str = "UTC", now: datetime | None = None
) -> list[ChannelStats]:
    from hub.reports.figures import Dimension

    now = now or utcnow()
    totals = await today_by(db, Dimension.CHANNEL, timezone=timezone, now=now)
    return [
        ChannelStats(
            channel,
            int(t["offered"]),
            int(t["handled"]),
            int(t["abandoned"]),
            t.asa_seconds,
            t.aht_seconds,
        )
        for channel, t in sorted(totals.items())
    ]


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
        rules={
            queue_id: (queue.sl_denominator, queue.short_abandon_seconds)
            for queue_id, queue in config.rows.items()
        },  # type: ignore[misc]
    )
    from hub.reports.figures import Dimension

    today = await today_by(db, Dimension.QUEUE, timezone=timezone, now=now)
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
        longest = int(max(waits, default=0))
        sl_pct = levels[queue_id].pct  # type: ignore[index]
        figures = today.get(queue_id)
        result.append(
            QueueStats(
                queue_id=queue_id,  # type: ignore[arg-type]
                name=queue.name,
                waiting=len(waits),
                longest_wait_seconds=longest,
                service_level_pct=sl_pct,
                agents_ready=ready,
                agents_busy=busy,
                open=view.open,
                handled=int(figures["handled"]) if figures else 0,
                abandoned=int(figures["abandoned"]) if figures else 0,
                asa_seconds=figures.asa_seconds if figures else None,
                aht_seconds=figures.aht_seconds if figures else None,
                alerts=alerts_of(queue, len(waits), longest, sl_pct),
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
