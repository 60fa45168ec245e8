"""Report rows: rollups summed per period in the organization's zone and per dimension.

The database sums rows per (15-minute UTC interval, dimension); Python folds the intervals
into local periods (an interval belongs to the local period its start falls in), so a day
is 92, 96 or 100 intervals as daylight-saving time requires and zones with half-hour or
quarter-hour offsets need nothing special. Each figure is computed from the sums by one
function here (``Totals``), shared by the page, the exports and the wallboard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session

from hub.reports.facts import ADDITIVE
from hub.service_level import DENOMINATOR_LABELS, Denominator, pct
from models import (
    WAIT_BINS,
    Agent,
    Inbox,
    Queue,
    ReportRepeat,
    ReportRollup,
    ReportRollupQueue,
    User,
)

_by_agent = ReportRollup.__table__  # type: ignore[attr-defined]
_by_queue = ReportRollupQueue.__table__  # type: ignore[attr-defined]
_repeat = ReportRepeat.__table__  # type: ignore[attr-defined]
BINS = len(WAIT_BINS) + 1
BIN_LABELS = [f"{lo}–{hi} s" for lo, hi in zip((0, *WAIT_BINS[:-1]), WAIT_BINS, strict=True)] + [
    f"≥ {WAIT_BINS[-1]} s"
]


VECTOR = (
    *ADDITIVE,
    *(f"ans_w{i}" for i in range(BINS)),
    *(f"ab_w{i}" for i in range(BINS)),
)
_INDEX = {name: index for index, name in enumerate(VECTOR)}


class Period(StrEnum):
    INTERVAL = "interval"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Dimension(StrEnum):
    TOTAL = "total"
    QUEUE = "queue"
    CHANNEL = "channel"
    INBOX = "inbox"
    AGENT = "agent"


_COLUMN = {
    Dimension.QUEUE: "queue_id",
    Dimension.CHANNEL: "channel",
    Dimension.INBOX: "inbox_id",
    Dimension.AGENT: "agent_id",
}


@dataclass(frozen=True, slots=True)
class Definition:
    name: str
    formula: str
    note: str = ""


DEFINITIONS: list[Definition] = [
    Definition(
        "Offered",
        "contacts that entered the queue (→ queued from outside the wait)",
        "Counted in the 15-minute interval they entered; every later figure of that contact "
        "(answer, abandon, handle time) goes to the same interval. A transfer back to a "
        "queue is a new offer.",
    ),
    Definition("Answered", "offered contacts an agent accepted (→ active)"),
    Definition("Abandoned", "offered contacts whose customer left before an agent answered"),
    Definition(
        "Short abandons",
        "abandoned with a wait ≤ the queue's short-abandon threshold",
        "A setting per queue (Admin → Queues).",
    ),
    Definition("Left a message", "offered contacts that went to voicemail while waiting"),
    Definition("Wait", "time from entering the queue to the answer (or to leaving)"),
    Definition("Answered within SL", "answered with a wait ≤ the queue's service-level target"),
    Definition(
        "Service level",
        "answered within SL ÷ counted × 100 %, where counted is, by the queue's setting: "
        "answered; answered + abandoned; or offered − short abandons",
        "The wallboard also counts contacts still waiting past the target as misses. "
        "Reports name the rule each queue used.",
    ),
    Definition("Abandon rate", "abandoned ÷ offered × 100 %"),
    Definition("ASA (average speed of answer)", "sum of waits of answered contacts ÷ answered"),
    Definition("Longest wait", "the longest wait of an answered or abandoned contact"),
    Definition(
        "Wait-time histogram",
        f"answered and abandoned contacts by wait, in bins {', '.join(BIN_LABELS)}",
    ),
    Definition(
        "Handled",
        "agent segments that ended: wrap-up finished, closed, or transferred back to a queue",
    ),
    Definition(
        "AHT (average handle time)",
        "(talk + hold + wrap-up) ÷ handled",
        "Talk (chat time for text channels) runs from the answer to wrap-up, a transfer or "
        "the close, less the time the customer was on hold (a hold, or a consult with "
        "another agent); wrap-up from its start to the close.",
    ),
    Definition("Transfers", "answered contacts an agent sent back to a queue or to another agent"),
    Definition("Outbound", "contacts an agent started (click to dial)"),
    Definition(
        "Agents required (volume chart)",
        "per hour and queue, the fewest agents for which Erlang C, given the contacts offered "
        "and their AHT, reaches the queue's service-level target within its answer-within "
        "time; summed over queues; a longer period shows its busiest hour",
        "The target is the queue's wallboard alert threshold, or 80 % when it sets none. "
        "Before shrinkage, and for chat as for calls (one contact per agent).",
    ),
    Definition(
        "Callbacks requested / completed",
        "callers who left a number in the queue / of those, called back and connected",
        "Both count in the interval and queue the caller asked in, where their place was kept.",
    ),
    Definition("Self-service", "contacts that entered the IVR or a bot"),
    Definition(
        "Self-service containment",
        "contained ÷ self-service × 100 %, contained = closed without reaching a queue or agent",
    ),
    Definition(
        "Repeat contacts (N days)",
        "contacts created by a customer who had another interaction, on any channel, "
        "in the N days before ÷ contacts created × 100 %",
        "Precomputed for each N in HUB_REPORTS_REPEAT_DAYS; a first-contact-resolution measure.",
    ),
    Definition(
        "Agent time in state",
        "time between an agent's presence changes, per state and not-ready reason, clipped "
        "to the period",
    ),
    Definition(
        "Occupancy",
        "(busy + wrap-up) ÷ (ready + busy + wrap-up) × 100 %",
        "Time handling contacts out of the time available to handle them.",
    ),
]


@dataclass(slots=True)
class Totals:
    """Sums of rollup rows, and every figure derived from them."""

    # ADDITIVE, then the answered and the abandoned histogram (VECTOR order)
    vec: list[float] = field(default_factory=lambda: [0.0] * len(VECTOR))
    wait_max_seconds: float = 0.0
    repeats: dict[int, tuple[int, int]] = field(default_factory=dict)  # N → (contacts, repeats)

    def add_values(self, values: Sequence[float | None], wait_max: float | None) -> None:
        """Add one summed row (values in ``VECTOR`` order)."""
        self.vec = [a + (b or 0) for a, b in zip(self.vec, values, strict=True)]
        if wait_max and wait_max > self.wait_max_seconds:
            self.wait_max_seconds = wait_max

    def merge(self, other: Totals) -> None:
        self.add_values(other.vec, other.wait_max_seconds)
        for days, (contacts, repeats) in other.repeats.items():
            self.add_repeat(days, contacts, repeats)

    def add_repeat(self, days: int, contacts: int, repeats: int) -> None:
        had = self.repeats.get(days, (0, 0))
        self.repeats[days] = (had[0] + contacts, had[1] + repeats)

    def __getitem__(self, name: str) -> float:
        return self.vec[_INDEX[name]]

    @property
    def answered_hist(self) -> list[int]:
        base = len(ADDITIVE)
        return [int(v) for v in self.vec[base : base + BINS]]

    @property
    def abandoned_hist(self) -> list[int]:
        base = len(ADDITIVE) + BINS
        return [int(v) for v in self.vec[base : base + BINS]]

    @property
    def service_level_pct(self) -> float | None:
        return pct(int(self["answered_in_sl"]), int(self["sl_counted"]))

    @property
    def abandon_pct(self) -> float | None:
        return pct(int(self["abandoned"]), int(self["offered"]))

    @property
    def asa_seconds(self) -> float | None:
        return _avg(self["wait_answered_seconds"], self["answered"])

    @property
    def aht_seconds(self) -> float | None:
        handle = self["talk_seconds"] + self["hold_seconds"] + self["wrap_seconds"]
        return _avg(handle, self["handled"])

    @property
    def avg_talk_seconds(self) -> float | None:
        return _avg(self["talk_seconds"], self["handled"])

    @property
    def avg_hold_seconds(self) -> float | None:
        return _avg(self["hold_seconds"], self["handled"])

    @property
    def avg_wrap_seconds(self) -> float | None:
        return _avg(self["wrap_seconds"], self["handled"])

    @property
    def containment_pct(self) -> float | None:
        return pct(int(self["contained"]), int(self["self_service"]))

    def repeat_pct(self, days: int) -> float | None:
        contacts, repeats = self.repeats.get(days, (0, 0))
        return pct(repeats, contacts)


def _avg(total: float, count: float) -> float | None:
    return round(total / count, 1) if count else None


@dataclass(frozen=True, slots=True)
class ReportRequest:
    start: date  # first local day
    end: date  # last local day (inclusive)
    period: Period = Period.DAY
    by: Dimension = Dimension.QUEUE
    timezone: str = "UTC"
    queue_id: int | None = None  # only this queue

    @property
    def utc_range(self) -> tuple[datetime, datetime]:
        zone = ZoneInfo(self.timezone)
        first = datetime.combine(self.start, time(0), zone).astimezone(UTC)
        last = datetime.combine(self.end + timedelta(days=1), time(0), zone).astimezone(UTC)
        return first, last


@dataclass(slots=True)
class ReportRow:
    period: datetime  # the local start of the period
    key: object  # the dimension's value (queue id, channel, …); None for "none"
    label: str
    totals: Totals


@dataclass(slots=True)
class Report:
    request: ReportRequest
    rows: list[ReportRow]
    total: Totals
    repeat_days: list[int]
    rules: list[tuple[str, str, int, int]]  # queue, denominator label, target s, short s

    def period_label(self, moment: datetime) -> str:
        return period_label(moment, self.request.period)


def period_start(local: datetime, period: Period) -> datetime:
    """The local start of the period holding ``local`` (an aware local time)."""
    zone = local.tzinfo
    if period is Period.INTERVAL:
        return local
    if period is Period.HOUR:
        return local.replace(minute=0)
    day = local.date()
    if period is Period.WEEK:
        day -= timedelta(days=day.weekday())
    elif period is Period.MONTH:
        day = day.replace(day=1)
    return datetime.combine(day, time(0), zone)


def period_label(moment: datetime, period: Period) -> str:
    if period in (Period.INTERVAL, Period.HOUR):
        return moment.strftime("%Y-%m-%d %H:%M %z")
    if period is Period.WEEK:
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d} (from {moment:%Y-%m-%d})"
    if period is Period.MONTH:
        return moment.strftime("%Y-%m")
    return moment.strftime("%Y-%m-%d %a")


def _labels(db: Session, by: Dimension) -> dict[object, str]:
    if by is Dimension.QUEUE:
        return {row[0]: row[1] for row in db.execute(sa.select(Queue.id, Queue.name))}  # type: ignore[call-overload]
    if by is Dimension.INBOX:
        return {row[0]: row[1] for row in db.execute(sa.select(Inbox.id, Inbox.name))}  # type: ignore[call-overload]
    if by is Dimension.AGENT:
        return {
            row[0]: row[1]
            for row in db.execute(sa.select(Agent.id, User.display_name).join(User))  # type: ignore[call-overload]
        }
    return {}


def _label(by: Dimension, key: object, labels: dict[object, str]) -> str:
    if by is Dimension.TOTAL:
        return "All"
    if key is None:
        return {
            Dimension.AGENT: "(no agent)",
            Dimension.QUEUE: "(no queue)",
            Dimension.INBOX: "(no inbox)",
        }.get(by, "—")
    return labels.get(key, str(key))


def whole_hour_offsets(zone: ZoneInfo, start: datetime, end: datetime) -> bool:
    """True when every UTC offset the zone has in [start, end] is a whole number of hours:
    then each UTC hour lies in one local hour, and reports by hour or longer may sum whole
    UTC hours in the database (a quarter of the rows) instead of 15-minute intervals."""
    moment = start
    while moment <= end:
        offset = moment.astimezone(zone).utcoffset() or timedelta()
        if offset.total_seconds() % 3600:
            return False
        moment += timedelta(hours=6)
    return (end.astimezone(zone).utcoffset() or timedelta()).total_seconds() % 3600 == 0


def _hour_of(column: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """The UTC hour a stored interval start falls in, in the database."""
    if dialect == "sqlite":  # stored as text: 'YYYY-MM-DD HH:MM:SS…'
        return sa.func.substr(column, 1, 13) + sa.literal(":00:00")
    return sa.func.date_trunc("hour", column)


def _raw(column: sa.ColumnElement) -> sa.ColumnElement:
    """A timestamp column without SQLAlchemy's per-row parsing (SQLite hands back text,
    parsed once per distinct interval in ``build_report``; asyncpg a datetime already)."""
    return sa.type_coerce(column, sa.String)


def build_report(db: Session, request: ReportRequest, repeat_days: list[int]) -> Report:
    """The report: one row per (local period, dimension value), plus the total."""
    start, end = request.utc_range
    zone = ZoneInfo(request.timezone)
    # only a report by agent needs the rows with the agent in their key
    rollup = _by_agent if request.by is Dimension.AGENT else _by_queue
    dim = rollup.c[_COLUMN[request.by]] if request.by in _COLUMN else sa.literal(None)
    sums = [sa.func.sum(rollup.c[name]) for name in VECTOR]
    where = [rollup.c.bucket >= start, rollup.c.bucket < end]
    if request.queue_id is not None:
        where.append(rollup.c.queue_id == request.queue_id)
    by_hour = request.period is not Period.INTERVAL and whole_hour_offsets(zone, start, end)
    dialect = db.get_bind().dialect.name
    slot = _hour_of(rollup.c.bucket, dialect) if by_hour else rollup.c.bucket
    statement = (
        sa.select(
            _raw(slot),
            dim.label("dim"),
            sa.func.max(rollup.c.wait_max_seconds),
            *sums,
        )
        .where(*where)
        .group_by(slot, dim)
    )
    labels = _labels(db, request.by)
    grouped: dict[tuple[datetime, object], Totals] = {}
    local_of: dict[datetime, datetime] = {}

    def local_period(bucket: datetime | str) -> datetime:
        found = local_of.get(bucket)  # type: ignore[arg-type]
        if found is None:
            moment = datetime.fromisoformat(bucket) if isinstance(bucket, str) else bucket
            if isinstance(moment, datetime) and moment.tzinfo is not None:
                moment = moment.astimezone(UTC)
            aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            # keyed by the UTC instant: equal local times in a repeated hour (fold) are not
            start = period_start(aware.astimezone(zone), request.period)
            found = local_of[bucket] = start.astimezone(UTC)  # type: ignore[index]
        return found

    for row in db.execute(statement).all():
        key = (local_period(row[0]), row[1])
        totals = grouped.get(key)
        if totals is None:
            totals = grouped[key] = Totals()
        totals.add_values(row[3:], row[2])
    if request.by is not Dimension.AGENT and repeat_days:
        rdim = _repeat.c[_COLUMN[request.by]] if request.by in _COLUMN else sa.literal(None)
        rwhere = [_repeat.c.bucket >= start, _repeat.c.bucket < end]
        if request.queue_id is not None:
            rwhere.append(_repeat.c.queue_id == request.queue_id)
        pivot = []
        for n in repeat_days:  # one row per (interval, dimension), a pair of sums per N
            pivot.append(sa.func.sum(sa.case((_repeat.c.days == n, _repeat.c.contacts), else_=0)))
            pivot.append(sa.func.sum(sa.case((_repeat.c.days == n, _repeat.c.repeats), else_=0)))
        rslot = _hour_of(_repeat.c.bucket, dialect) if by_hour else _repeat.c.bucket
        for row in db.execute(
            sa.select(_raw(rslot), rdim, *pivot).where(*rwhere).group_by(rslot, rdim)
        ).all():
            key = (local_period(row[0]), row[1])
            target = grouped.get(key)
            if target is None:
                target = grouped[key] = Totals()
            for index, n in enumerate(repeat_days):
                target.add_repeat(n, int(row[2 + 2 * index] or 0), int(row[3 + 2 * index] or 0))
    total = Totals()
    for totals in grouped.values():
        total.merge(totals)
    rows = [
        ReportRow(period.astimezone(zone), key, _label(request.by, key, labels), totals)
        for (period, key), totals in grouped.items()
    ]
    rows.sort(key=lambda r: (r.period, r.label))
    return Report(request, rows, total, repeat_days, queue_rule_labels(db))


def queue_rule_labels(db: Session) -> list[tuple[str, str, int, int]]:
    rows = db.execute(
        sa.select(  # type: ignore[call-overload]
            Queue.name, Queue.sl_denominator, Queue.sla_seconds, Queue.short_abandon_seconds
        ).order_by(Queue.name)
    ).all()
    return [
        (name, DENOMINATOR_LABELS.get(Denominator(rule), rule), target, short)
        for name, rule, target, short in rows
    ]


# The columns of a report table and of its exports: (header, how to read it from Totals).
def columns(repeat_days: list[int]) -> list[tuple[str, object]]:
    cols: list[tuple[str, object]] = [
        ("Offered", lambda t: int(t["offered"])),
        ("Answered", lambda t: int(t["answered"])),
        ("Abandoned", lambda t: int(t["abandoned"])),
        ("Short abandons", lambda t: int(t["short_abandoned"])),
        ("Left a message", lambda t: int(t["voicemail"])),
        ("Answered within SL", lambda t: int(t["answered_in_sl"])),
        ("SL counted", lambda t: int(t["sl_counted"])),
        ("Service level %", lambda t: t.service_level_pct),
        ("Abandon rate %", lambda t: t.abandon_pct),
        ("ASA s", lambda t: t.asa_seconds),
        ("Longest wait s", lambda t: round(t.wait_max_seconds, 1)),
        ("Handled", lambda t: int(t["handled"])),
        ("AHT s", lambda t: t.aht_seconds),
        ("Avg talk s", lambda t: t.avg_talk_seconds),
        ("Avg hold s", lambda t: t.avg_hold_seconds),
        ("Avg wrap-up s", lambda t: t.avg_wrap_seconds),
        ("Transfers", lambda t: int(t["transfers"])),
        ("Outbound", lambda t: int(t["outbound"])),
        ("Callbacks requested", lambda t: int(t["callbacks_requested"])),
        ("Callbacks completed", lambda t: int(t["callbacks_completed"])),
        ("Self-service", lambda t: int(t["self_service"])),
        ("Containment %", lambda t: t.containment_pct),
    ]
    for days in repeat_days:
        cols.append((f"Repeat {days} d %", lambda t, d=days: t.repeat_pct(d)))
    return cols
