"""Staffing against the database: history, overrides, requirement, shift options, rosters.

The numbers come from the sans-IO modules (``erlang``, ``forecast``, ``schedule``); this
module only reads what they need (the queued interactions, the planner's overrides, the
templates) and saves what the planner keeps (overrides, rosters), audited.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.routing.snapshot import as_utc
from hub.staffing import erlang
from hub.staffing.forecast import Forecast, same_weekday_forecast
from hub.staffing.schedule import Plan, ShiftOption, allocate, clock, shift_options, solve
from models import (
    ForecastOverride,
    Interaction,
    Roster,
    RosterShift,
    ShiftTemplate,
    StaffingGroup,
    StaffingModel,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MODEL_CHANNELS = {
    StaffingModel.CALLS: ["voice"],
    StaffingModel.CHAT: ["webchat", "telegram", "sms"],
    StaffingModel.EMAIL: ["email"],
}
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$|^24:00$")


class StaffingInputError(ValueError):
    """Input a planner can fix; the message names the field or the CSV line."""


def parse_clock(value: str, label: str) -> int:
    raw = (value or "").strip()
    if not _CLOCK.fullmatch(raw):
        raise StaffingInputError(f"{label}: “{raw}” is not a time like 07:00.")
    hours, minutes = raw.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class DayGrid:
    """The intervals of one planned day in the organisation's time zone."""

    day: date
    minutes: int  # interval length: 15, 30 or 60
    open_from: int  # minutes after midnight
    open_to: int

    def __post_init__(self) -> None:
        if self.minutes not in (15, 30, 60):
            raise StaffingInputError("Interval must be 15, 30 or 60 minutes.")
        if not 0 <= self.open_from < self.open_to <= 24 * 60:
            raise StaffingInputError("Open until must be later than open from.")
        if (self.open_to - self.open_from) % self.minutes or self.open_from % self.minutes:
            raise StaffingInputError("Opening hours must fall on the interval boundaries.")

    @property
    def starts(self) -> list[int]:
        return list(range(self.open_from, self.open_to, self.minutes))

    @property
    def labels(self) -> list[str]:
        return [clock(s) for s in self.starts]

    @property
    def weekday(self) -> str:
        return WEEKDAYS[self.day.weekday()]


@dataclass(frozen=True)
class GroupInputs:
    """Everything the requirement of one group depends on: the what-if changes these."""

    name: str
    model: str
    skill: str
    aht_seconds: int
    sl_target_pct: int
    sl_seconds: int
    shrinkage_pct: int
    concurrency: int
    email_target_minutes: int

    @classmethod
    def of(cls, group: StaffingGroup) -> GroupInputs:
        return cls(
            name=group.name,
            model=group.model,
            skill=group.skill,
            aht_seconds=group.aht_seconds,
            sl_target_pct=group.sl_target_pct,
            sl_seconds=group.sl_seconds,
            shrinkage_pct=group.shrinkage_pct,
            concurrency=group.concurrency,
            email_target_minutes=group.email_target_minutes,
        )

    def check(self) -> None:
        bounds = {
            "handle time (s)": (self.aht_seconds, 1, 86_400),
            "service-level target (%)": (self.sl_target_pct, 1, 99),
            "answer within (s)": (self.sl_seconds, 1, 86_400),
            "shrinkage (%)": (self.shrinkage_pct, 0, 90),
            "concurrency": (self.concurrency, 1, 20),
            "email target (min)": (self.email_target_minutes, 15, 7 * 24 * 60),
        }
        for label, (value, lo, hi) in bounds.items():
            if not lo <= value <= hi:
                raise StaffingInputError(f"{self.name}: {label} must be {lo} to {hi}.")


def requirement(
    inputs: GroupInputs, volumes: Sequence[float], minutes: int
) -> list[erlang.Staffing]:
    """Agents to schedule per interval for one group (Erlang C, chat or email workload)."""
    inputs.check()
    seconds = minutes * 60
    shrink = inputs.shrinkage_pct / 100
    if inputs.model == StaffingModel.EMAIL:
        target = max(inputs.email_target_minutes * 60, seconds)
        return erlang.size_email(list(volumes), inputs.aht_seconds, seconds, target, shrink)
    sl = inputs.sl_target_pct / 100
    if inputs.model == StaffingModel.CHAT:
        return [
            erlang.size_chat(
                v, inputs.aht_seconds, seconds, sl, inputs.sl_seconds, inputs.concurrency, shrink
            )
            for v in volumes
        ]
    return [
        erlang.size_calls(v, inputs.aht_seconds, seconds, sl, inputs.sl_seconds, shrink)
        for v in volumes
    ]


# ---------------------------------------------------------------- forecast


@dataclass
class GroupForecast:
    group: StaffingGroup
    history: Forecast
    volumes: list[float]  # history forecast with the planner's overrides applied
    overridden: list[bool] = field(default_factory=list)
    history_aht: float | None = None


def _local_range(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


async def _queued_times(
    db: AsyncSession, group: StaffingGroup, since: datetime, until: datetime
) -> list[tuple[datetime, datetime | None, datetime | None]]:
    channels = group.channels or MODEL_CHANNELS.get(StaffingModel(group.model), [])
    query = select(
        Interaction.queued_at, Interaction.answered_at, Interaction.closed_at, Interaction.data
    ).where(
        col(Interaction.queued_at) >= since,
        col(Interaction.queued_at) < until,
        col(Interaction.channel).in_(channels),
    )
    if group.queue_id is not None:
        query = query.where(Interaction.queue_id == group.queue_id)
    rows = (await db.exec(query)).all()
    return [
        (as_utc(q), a and as_utc(a), c and as_utc(c))
        for q, a, c, data in rows
        if q is not None and (data or {}).get("direction") != "outbound"
    ]


async def history_weeks(
    db: AsyncSession, group: StaffingGroup, grid: DayGrid, weeks: int, timezone: str
) -> tuple[list[list[float]], float | None]:
    """Contacts that entered the group's queue per interval on the same weekday of each of
    the last ``weeks`` weeks (oldest first; weeks with no contacts at all are left out, so a
    new centre's empty past does not drag the trend down), and their mean handle time."""
    tz = ZoneInfo(timezone or "UTC")
    past_days = [grid.day - timedelta(weeks=w) for w in range(weeks, 0, -1)]
    rows = []
    for past in past_days:  # one indexed range per day: no weeks in between are read
        since, until = _local_range(past, tz)
        rows += await _queued_times(db, group, since, until)
    counts = {d: [0.0] * len(grid.starts) for d in past_days}
    handle: list[float] = []
    for queued, answered, closed in rows:
        local = queued.astimezone(tz)
        if local.date() not in counts:
            continue
        minute = local.hour * 60 + local.minute
        if grid.open_from <= minute < grid.open_to:
            counts[local.date()][(minute - grid.open_from) // grid.minutes] += 1
        if answered is not None and closed is not None and closed > answered:
            handle.append((closed - answered).total_seconds())
    used = [counts[d] for d in past_days if sum(counts[d]) > 0]
    return used, (sum(handle) / len(handle) if handle else None)


async def overrides_of(
    db: AsyncSession, group_ids: Iterable[int], day: date, minutes: int
) -> dict[tuple[int, int], float]:
    rows = (
        await db.exec(
            select(ForecastOverride).where(
                col(ForecastOverride.group_id).in_(list(group_ids)),
                ForecastOverride.day == day,
                ForecastOverride.minutes == minutes,
            )
        )
    ).all()
    return {(r.group_id, r.start_minute): r.volume for r in rows}


async def forecasts(
    db: AsyncSession, groups: Sequence[StaffingGroup], grid: DayGrid, weeks: int, timezone: str
) -> list[GroupForecast]:
    """Each active group's forecast for the day: history, then the planner's overrides."""
    result = []
    manual = await overrides_of(db, [g.id for g in groups if g.id], grid.day, grid.minutes)
    other = await _other_length_overrides(db, [g.id for g in groups if g.id], grid)
    for group in groups:
        past, aht = await history_weeks(db, group, grid, weeks, timezone)
        fc = same_weekday_forecast(past)
        base = fc.volumes or [0.0] * len(grid.starts)
        volumes, flags = [], []
        for start, value in zip(grid.starts, base, strict=True):
            key = (group.id or 0, start)
            if key not in manual and key in other:
                manual[key] = other[key]
            flags.append(key in manual)
            volumes.append(manual.get(key, value))
        result.append(GroupForecast(group, fc, volumes, flags, aht))
    return result


async def _other_length_overrides(
    db: AsyncSession, group_ids: list[int], grid: DayGrid
) -> dict[tuple[int, int], float]:
    """Overrides kept at another interval length, spread onto this grid's intervals by
    overlap (an hour's 40 calls are 10 per quarter hour; four quarters make an hour), so
    an hourly forecast still counts when the planner looks at 15 minutes."""
    rows = (
        await db.exec(
            select(ForecastOverride).where(
                col(ForecastOverride.group_id).in_(group_ids),
                ForecastOverride.day == grid.day,
                ForecastOverride.minutes != grid.minutes,
            )
        )
    ).all()
    spread: dict[tuple[int, int], float] = {}
    finest: dict[int, int] = {}
    for row in rows:  # one length per group: the finest the planner kept
        finest[row.group_id] = min(finest.get(row.group_id, row.minutes), row.minutes)
    for row in rows:
        if row.minutes != finest[row.group_id]:
            continue
        for start in grid.starts:
            overlap = min(start + grid.minutes, row.start_minute + row.minutes) - max(
                start, row.start_minute
            )
            if overlap > 0:
                key = (row.group_id, start)
                spread[key] = round(spread.get(key, 0.0) + row.volume * overlap / row.minutes, 2)
    return spread


async def save_overrides(
    db: AsyncSession,
    group: StaffingGroup,
    day: date,
    minutes: int,
    values: Mapping[int, float | None],
    *,
    user_id: int | None,
    source: str = "manual",
) -> int:
    """Set (or, with None, clear) the planner's volume per interval start; audited.

    Returns how many intervals changed."""
    existing = {
        r.start_minute: r
        for r in (
            await db.exec(
                select(ForecastOverride).where(
                    ForecastOverride.group_id == group.id,
                    ForecastOverride.day == day,
                    ForecastOverride.minutes == minutes,
                )
            )
        ).all()
    }
    before = {clock(s): r.volume for s, r in sorted(existing.items())}
    changed = 0
    for start, volume in values.items():
        row = existing.get(start)
        if volume is None:
            if row is not None:
                await db.delete(row)
                changed += 1
            continue
        if volume < 0 or volume > 1_000_000:
            raise StaffingInputError(f"{group.name} {clock(start)}: volume must be 0 to 1000000.")
        if row is None:
            db.add(
                ForecastOverride(
                    group_id=group.id,  # type: ignore[arg-type]
                    day=day,
                    start_minute=start,
                    minutes=minutes,
                    volume=volume,
                    source=source,
                    by_user_id=user_id,
                )
            )
            changed += 1
        elif row.volume != volume:
            row.volume, row.source, row.by_user_id = volume, source, user_id
            db.add(row)
            changed += 1
    if changed:
        await db.flush()
        after_rows = await overrides_of(db, [group.id or 0], day, minutes)
        audit.record(
            db,
            user_id=user_id,
            action=f"forecast_{source}",
            entity="staffing_forecast",
            entity_id=f"{group.id}:{day.isoformat()}:{minutes}",
            before={"group": group.name, "volumes": before},
            after={
                "group": group.name,
                "volumes": {clock(s): v for (_g, s), v in sorted(after_rows.items())},
            },
        )
    return changed


@dataclass(frozen=True)
class UploadRow:
    group: StaffingGroup
    day: date
    start: int
    volume: float


def parse_forecast_csv(
    text: str, groups: Mapping[str, StaffingGroup], minutes: int
) -> list[UploadRow]:
    """A forecast upload: ``group,date,time,volume`` per line (a header line is optional).

    Every problem names its line; nothing is saved unless every line is good."""
    rows: list[UploadRow] = []
    reader = csv.reader(io.StringIO(text))
    for number, line in enumerate(reader, start=1):
        if not line or all(not cell.strip() for cell in line):
            continue
        if number == 1 and line[0].strip().lower() == "group":
            continue
        if len(line) != 4:
            raise StaffingInputError(f"Line {number}: expected group,date,time,volume.")
        name, day_raw, time_raw, volume_raw = (cell.strip() for cell in line)
        group = groups.get(name)
        if group is None:
            raise StaffingInputError(f"Line {number}: no staffing group called “{name}”.")
        try:
            day = date.fromisoformat(day_raw)
        except ValueError:
            raise StaffingInputError(
                f"Line {number}: “{day_raw}” is not a date like 2026-12-07."
            ) from None
        start = parse_clock(time_raw, f"Line {number}")
        if start % minutes:
            raise StaffingInputError(
                f"Line {number}: {time_raw} does not start a {minutes}-minute interval."
            )
        try:
            volume = float(volume_raw)
        except ValueError:
            raise StaffingInputError(f"Line {number}: “{volume_raw}” is not a number.") from None
        if not 0 <= volume <= 1_000_000:
            raise StaffingInputError(f"Line {number}: volume must be 0 to 1000000.")
        rows.append(UploadRow(group, day, start, volume))
    if not rows:
        raise StaffingInputError("The file has no forecast lines.")
    return rows


# ---------------------------------------------------------------- schedule


def options_for(
    templates: Sequence[ShiftTemplate], groups: Sequence[GroupInputs], grid: DayGrid
) -> list[ShiftOption]:
    """Every start of every active template that works this weekday, with the groups its
    skills let it serve. A shift may not run past closing or start before opening."""
    options: list[ShiftOption] = []
    for t in templates:
        if not t.active or (t.weekdays and grid.weekday not in t.weekdays):
            continue
        serve = {g.name for g in groups if g.skill in (t.skills or [])}
        if not serve:
            continue
        earliest = max(t.earliest_start, grid.open_from)
        latest = min(t.latest_start, grid.open_to - t.length_minutes)
        if latest < earliest:
            continue
        options += shift_options(
            t.name,
            length=t.length_minutes,
            earliest=earliest,
            latest=latest,
            step=t.start_step_minutes,
            cost_per_hour=t.cost_per_hour,
            groups=serve,
            break_offset=t.break_offset_minutes,
            break_minutes=t.break_minutes,
            paid_break=t.paid_break,
            max_count=t.max_count,
        )
    return options


@dataclass
class Outcome:
    """A what-if's answer: requirement per group and interval, and the plan if asked."""

    grid: DayGrid
    inputs: list[GroupInputs]
    volumes: dict[str, list[float]]
    sized: dict[str, list[erlang.Staffing]]
    plan: Plan | None = None

    @property
    def required(self) -> dict[str, list[int]]:
        return {name: [s.agents for s in rows] for name, rows in self.sized.items()}

    def chart(self, coverage: Mapping[str, Sequence[int]] | None = None) -> dict:
        """The data the page's Chart.js draws: requirement bars, coverage lines."""
        cover = coverage if coverage is not None else (self.plan.coverage if self.plan else {})
        return chart_data(self.grid.labels, self.required, cover)


def chart_data(
    labels: Sequence[str],
    required: Mapping[str, Sequence[int]],
    coverage: Mapping[str, Sequence[int]],
) -> dict:
    return {
        "labels": list(labels),
        "required": {k: list(v) for k, v in required.items()},
        "coverage": {k: list(v) for k, v in coverage.items()},
    }


def what_if(
    grid: DayGrid,
    inputs: Sequence[GroupInputs],
    volumes: Mapping[str, Sequence[float]],
    templates: Sequence[ShiftTemplate] | None = None,
    *,
    time_limit: float = 30.0,
) -> Outcome:
    """Requirement for every group from its volumes; with ``templates``, the cheapest plan."""
    sized = {i.name: requirement(i, volumes[i.name], grid.minutes) for i in inputs}
    outcome = Outcome(grid, list(inputs), {k: list(v) for k, v in volumes.items()}, sized)
    if templates is not None:
        options = options_for(templates, inputs, grid)
        outcome.plan = solve(
            options, grid.starts, grid.minutes, outcome.required, time_limit=time_limit
        )
    return outcome


def option_of(shift: RosterShift, groups: Sequence[GroupInputs]) -> ShiftOption:
    return ShiftOption(
        template=shift.template_name,
        start=shift.start_minute,
        length=shift.length_minutes,
        cost=shift.cost,
        groups=frozenset(g.name for g in groups if g.skill in (shift.skills or [])),
        break_offset=shift.break_offset_minutes,
        break_minutes=shift.break_minutes,
    )


async def save_roster(
    db: AsyncSession,
    name: str,
    outcome: Outcome,
    templates: Mapping[str, ShiftTemplate],
    *,
    user_id: int | None,
) -> Roster:
    """Keep a solved plan as a named roster: one unassigned row per agent-shift."""
    plan = outcome.plan
    if plan is None or not plan.picks:
        raise StaffingInputError("Run the schedule first: there is no plan to save.")
    name = name.strip()
    if not name or len(name) > 100:
        raise StaffingInputError("Roster name is required (at most 100 characters).")
    if (await db.exec(select(Roster).where(Roster.name == name))).first() is not None:
        raise StaffingInputError(f"A roster called “{name}” exists already.")
    roster = Roster(
        name=name,
        day=outcome.grid.day,
        interval_minutes=outcome.grid.minutes,
        cost=plan.cost,
        plan={
            "open_from": outcome.grid.open_from,
            "open_to": outcome.grid.open_to,
            "required": outcome.required,
            "volumes": outcome.volumes,
            "inputs": [vars_of(i) for i in outcome.inputs],
            "solver": plan.status.value,
            "solver_cost": plan.cost,
        },
        created_by=user_id,
    )
    db.add(roster)
    await db.flush()
    for pick in plan.picks:
        template = templates[pick.option.template]
        for _ in range(pick.count):
            db.add(
                RosterShift(
                    roster_id=roster.id,  # type: ignore[arg-type]
                    template_id=template.id,
                    template_name=template.name,
                    start_minute=pick.option.start,
                    length_minutes=pick.option.length,
                    break_offset_minutes=pick.option.break_offset,
                    break_minutes=pick.option.break_minutes,
                    cost=pick.option.cost,
                    skills=list(template.skills or []),
                )
            )
    await db.flush()
    audit.record(
        db,
        user_id=user_id,
        action="create",
        entity="roster",
        entity_id=roster.id,
        after={
            "name": name,
            "day": roster.day.isoformat(),
            "cost": roster.cost,
            "shifts": plan.agents,
        },
    )
    return roster


def vars_of(inputs: GroupInputs) -> dict:
    return asdict(inputs)


@dataclass
class RosterView:
    roster: Roster
    grid: DayGrid
    shifts: list[RosterShift]
    inputs: list[GroupInputs]
    required: dict[str, list[int]]
    coverage: dict[str, list[int]]
    cost: float

    @property
    def short(self) -> dict[str, list[int]]:
        """Agents missing per group and interval (0 where covered)."""
        return {
            g: [max(0, r - c) for r, c in zip(need, self.coverage[g], strict=True)]
            for g, need in self.required.items()
        }

    def chart(self) -> dict:
        return chart_data(self.grid.labels, self.required, self.coverage)


async def roster_view(db: AsyncSession, roster: Roster) -> RosterView:
    """The roster as it is now (after the planner's edits): coverage and cost recomputed."""
    shifts = list(
        (
            await db.exec(
                select(RosterShift)
                .where(RosterShift.roster_id == roster.id)
                .order_by(col(RosterShift.start_minute), col(RosterShift.id))
            )
        ).all()
    )
    plan = roster.plan or {}
    grid = DayGrid(roster.day, roster.interval_minutes, plan["open_from"], plan["open_to"])
    inputs = [GroupInputs(**i) for i in plan.get("inputs", [])]
    required = {k: list(v) for k, v in plan.get("required", {}).items()}
    staffed = [(option_of(s, inputs), 1) for s in shifts]
    coverage = allocate(staffed, grid.starts, grid.minutes, required)
    return RosterView(
        roster, grid, shifts, inputs, required, coverage, round(sum(s.cost for s in shifts), 2)
    )


def with_overrides(inputs: GroupInputs, **changes: int) -> GroupInputs:
    return replace(inputs, **changes)
