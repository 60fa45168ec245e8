"""Agent activity: time in each presence state and not-ready reason, occupancy, and the
contacts each agent handled per channel (from the rollups), for a local date range.

Presence time comes from the raw ``PresenceChange`` rows: each change lasts until the
agent's next one (or the end of the range, or now), clipped to the range. The change before
the range tells the state at its start.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session

from hub.reports.figures import ReportRequest
from hub.service_level import pct
from models import Agent, PresenceChange, PresenceState, ReportRollup, User

P = PresenceState
_pc = PresenceChange.__table__  # type: ignore[attr-defined]
_rollup = ReportRollup.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Span:
    state: str
    reason: str | None
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(slots=True)
class AgentActivity:
    agent_id: int
    name: str
    spans: list[Span] = field(default_factory=list)
    state_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    reason_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    handled: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # per channel
    handle_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    talk_seconds: float = 0.0
    wrap_seconds: float = 0.0

    @property
    def occupancy_pct(self) -> float | None:
        s = self.state_seconds
        working = s[P.BUSY] + s[P.WRAP_UP]
        return pct(round(working), round(working + s[P.READY]))

    @property
    def total_handled(self) -> int:
        return sum(self.handled.values())

    @property
    def aht_seconds(self) -> float | None:
        count = self.total_handled
        return round(sum(self.handle_seconds.values()) / count, 1) if count else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def agent_activity(
    db: Session, request: ReportRequest, now: datetime | None = None
) -> list[AgentActivity]:
    start, end = request.utc_range
    stop = min(end, now or datetime.now(UTC))
    names = {
        row[0]: row[1]
        for row in db.execute(sa.select(Agent.id, User.display_name).join(User))  # type: ignore[call-overload]
    }
    result = {agent_id: AgentActivity(agent_id, name) for agent_id, name in names.items()}
    before = (
        sa.select(_pc.c.agent_id, sa.func.max(_pc.c.id).label("last"))
        .where(_pc.c.at < start)
        .group_by(_pc.c.agent_id)
        .subquery()
    )
    opening = db.execute(
        sa.select(_pc.c.agent_id, _pc.c.state, _pc.c.reason).join(before, _pc.c.id == before.c.last)
    ).all()
    current: dict[int, tuple[str, str | None, datetime]] = {
        agent_id: (state, reason, start) for agent_id, state, reason in opening
    }
    changes = db.execute(
        sa.select(_pc.c.agent_id, _pc.c.state, _pc.c.reason, _pc.c.at)
        .where(_pc.c.at >= start, _pc.c.at < stop)
        .order_by(_pc.c.at, _pc.c.id)
    ).all()

    def close(agent_id: int, until: datetime) -> None:
        if agent_id in current and agent_id in result:
            state, reason, since = current[agent_id]
            if until > since and state != P.OFFLINE:
                span = Span(state, reason, since, until)
                activity = result[agent_id]
                activity.spans.append(span)
                activity.state_seconds[state] += span.seconds
                if state == P.NOT_READY:
                    activity.reason_seconds[reason or "(no reason)"] += span.seconds

    for agent_id, state, reason, at in changes:
        at = _aware(at)
        close(agent_id, at)
        current[agent_id] = (state, reason, at)
    for agent_id in list(current):
        close(agent_id, stop)
    for agent_id, channel, handled, talk, hold, wrap in db.execute(
        sa.select(
            _rollup.c.agent_id,
            _rollup.c.channel,
            sa.func.sum(_rollup.c.handled),
            sa.func.sum(_rollup.c.talk_seconds),
            sa.func.sum(_rollup.c.hold_seconds),
            sa.func.sum(_rollup.c.wrap_seconds),
        )
        .where(_rollup.c.bucket >= start, _rollup.c.bucket < end, _rollup.c.agent_id.is_not(None))
        .group_by(_rollup.c.agent_id, _rollup.c.channel)
    ):
        activity = result.get(agent_id)
        if activity is None:
            continue
        activity.handled[channel] += int(handled or 0)
        activity.handle_seconds[channel] += float((talk or 0) + (hold or 0) + (wrap or 0))
        activity.talk_seconds += float(talk or 0)
        activity.wrap_seconds += float(wrap or 0)
    return sorted(
        (a for a in result.values() if a.spans or a.handled), key=lambda a: a.name.lower()
    )
