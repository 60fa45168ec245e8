"""The least-cost shift plan: how many agents start each shift, as an integer program.

Decision variables: ``x[o]``, the agents starting shift option ``o`` (a template at one of
its start times), integer ≥ 0. Each agent covers the intervals it works (not its break) and
may serve any staffing group its template allows (English, Spanish, chat…). In every
interval, ``a[i, k, g]`` agents of class ``k`` (the options sharing one set of groups) are
given to group ``g``:

    minimise   Σ cost[o] · x[o]
    such that  Σ_g a[i,k,g] = Σ_{o in k, o works i} x[o]     (everyone on duty is placed)
               Σ_k a[i,k,g] ≥ required[g][i]                 (every group covered)
               x[o] ≤ max_count[o]                            (when a template has a cap)

The allocation makes "Spanish speakers also take English calls" exact without counting
anyone twice. HiGHS (through ``highspy``) solves it; nothing here is a solver of our own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import highspy
import numpy as np

INF = highspy.kHighsInf


@dataclass(frozen=True, slots=True)
class ShiftOption:
    """One template starting at one time (minutes after midnight)."""

    template: str
    start: int
    length: int  # minutes, breaks included
    cost: float  # for one agent working this shift
    groups: frozenset[str]  # the staffing groups an agent on it can serve
    break_offset: int | None = None  # minutes after start
    break_minutes: int = 0
    max_count: int | None = None

    @property
    def end(self) -> int:
        return self.start + self.length

    def works(self, start: int, minutes: int) -> bool:
        """On duty for the whole interval [start, start+minutes) and not on a break."""
        if start < self.start or start + minutes > self.end:
            return False
        if self.break_offset is not None and self.break_minutes > 0:
            b0 = self.start + self.break_offset
            b1 = b0 + self.break_minutes
            if start < b1 and b0 < start + minutes:
                return False
        return True

    @property
    def label(self) -> str:
        return f"{self.template} {clock(self.start)}–{clock(self.end)}"


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def shift_options(
    template: str,
    *,
    length: int,
    earliest: int,
    latest: int,
    step: int,
    cost_per_hour: float,
    groups: Iterable[str],
    break_offset: int | None = None,
    break_minutes: int = 0,
    paid_break: bool = False,
    max_count: int | None = None,
) -> list[ShiftOption]:
    """Every start of one template between ``earliest`` and ``latest`` (inclusive) every
    ``step`` minutes; the cost is the paid hours × cost per hour."""
    if length <= 0 or step <= 0 or latest < earliest:
        raise ValueError(f"{template}: the length, start window or step is not valid")
    paid = length - (0 if paid_break else break_minutes)
    cost = round(cost_per_hour * paid / 60.0, 4)
    return [
        ShiftOption(
            template=template,
            start=start,
            length=length,
            cost=cost,
            groups=frozenset(groups),
            break_offset=break_offset,
            break_minutes=break_minutes,
            max_count=max_count,
        )
        for start in range(earliest, latest + 1, step)
    ]


class Status(StrEnum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"  # stopped at the time limit with a plan that covers everything
    INFEASIBLE = "infeasible"


@dataclass(frozen=True, slots=True)
class Pick:
    option: ShiftOption
    count: int


@dataclass
class Plan:
    status: Status
    cost: float = 0.0
    picks: list[Pick] = field(default_factory=list)
    # per group: agents given to it in each interval (the allocation), and on duty in total
    coverage: dict[str, list[int]] = field(default_factory=dict)
    on_duty: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why no plan exists

    @property
    def agents(self) -> int:
        return sum(p.count for p in self.picks)


class ScheduleError(ValueError):
    """The inputs cannot make a plan (the message names why)."""


def uncovered(
    options: Sequence[ShiftOption],
    starts: Sequence[int],
    minutes: int,
    required: Mapping[str, Sequence[int]],
) -> list[str]:
    """Intervals with a need that no shift option can serve: a clear reason, not 'infeasible'."""
    problems = []
    for group, need in required.items():
        for i, start in enumerate(starts):
            if need[i] <= 0:
                continue
            able = [o for o in options if group in o.groups and o.works(start, minutes)]
            if not able:
                problems.append(f"{group} at {clock(start)}: no shift template works then")
            elif all(o.max_count is not None for o in able):
                cap = sum(o.max_count or 0 for o in able)
                if cap < need[i]:
                    problems.append(
                        f"{group} at {clock(start)}: needs {need[i]}, the templates allow {cap}"
                    )
    return problems


def solve(
    options: Sequence[ShiftOption],
    starts: Sequence[int],
    minutes: int,
    required: Mapping[str, Sequence[int]],
    *,
    time_limit: float = 30.0,
) -> Plan:
    """The cheapest picks of ``options`` covering ``required[group][i]`` in every interval
    ``i`` (starting at ``starts[i]``, ``minutes`` long)."""
    groups = [g for g in required if any(n > 0 for n in required[g])]
    for g, need in required.items():
        if len(need) != len(starts):
            raise ScheduleError(
                f"{g}: the requirement has {len(need)} intervals, not {len(starts)}"
            )
    problems = uncovered(options, starts, minutes, required)
    if problems:
        return Plan(Status.INFEASIBLE, problems=problems)
    if not groups:
        return Plan(
            Status.OPTIMAL,
            coverage={g: [0] * len(starts) for g in required},
            on_duty=[0] * len(starts),
        )

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("threads", 1)

    n_x = len(options)
    columns_lb = [0.0] * n_x
    columns_ub = [float(o.max_count) if o.max_count is not None else INF for o in options]
    costs = [float(o.cost) for o in options]
    # classes: options that serve the same set of the groups in play
    class_of: dict[frozenset[str], list[int]] = {}
    for j, o in enumerate(options):
        serve = o.groups & frozenset(groups)
        if serve:
            class_of.setdefault(serve, []).append(j)
    alloc: dict[tuple[int, frozenset[str], str], int] = {}
    for i in range(len(starts)):
        for cls in class_of:
            for g in sorted(cls):
                alloc[(i, cls, g)] = len(columns_lb)
                columns_lb.append(0.0)
                columns_ub.append(INF)
                costs.append(0.0)
    n = len(columns_lb)
    h.addVars(n, np.array(columns_lb), np.array(columns_ub))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), np.array(costs))
    h.changeColsIntegrality(
        n, np.arange(n, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * n)
    )

    def row(lower: float, upper: float, entries: dict[int, float]) -> None:
        idx = np.array(list(entries), dtype=np.int32)
        h.addRow(lower, upper, len(idx), idx, np.array(list(entries.values()), dtype=float))

    for i, start in enumerate(starts):
        for cls, members in class_of.items():
            entries: dict[int, float] = {alloc[(i, cls, g)]: 1.0 for g in cls}
            for j in members:
                if options[j].works(start, minutes):
                    entries[j] = -1.0
            row(0.0, 0.0, entries)
        for g in groups:
            need = required[g][i]
            if need <= 0:
                continue
            entries = {alloc[(i, cls, g)]: 1.0 for cls in class_of if g in cls}
            row(float(need), INF, entries)

    h.run()
    status = h.getModelStatus()
    values = list(h.getSolution().col_value)
    if status == highspy.HighsModelStatus.kOptimal:
        result = Status.OPTIMAL
    elif len(values) == n and h.getInfo().primal_solution_status == 2:
        result = Status.FEASIBLE
    else:
        return Plan(
            Status.INFEASIBLE,
            problems=[f"the solver found no plan ({h.modelStatusToString(status)})"],
        )

    counts = [round(v) for v in values[:n_x]]
    picks = [Pick(o, c) for o, c in zip(options, counts, strict=True) if c > 0]
    coverage = {g: [0] * len(starts) for g in required}
    for (i, _cls, g), col in alloc.items():
        coverage[g][i] += round(values[col])
    on_duty = [
        sum(c for o, c in zip(options, counts, strict=True) if o.works(start, minutes))
        for start in starts
    ]
    cost = round(sum(o.cost * c for o, c in zip(options, counts, strict=True)), 2)
    picks.sort(key=lambda p: (p.option.start, p.option.template))
    return Plan(result, cost=cost, picks=picks, coverage=coverage, on_duty=on_duty)


def allocate(
    staffed: Sequence[tuple[ShiftOption, int]],
    starts: Sequence[int],
    minutes: int,
    required: Mapping[str, Sequence[int]],
) -> dict[str, list[int]]:
    """Given who is on duty (a saved or edited roster), place them on groups per interval so
    that as much of the need as possible is covered, then the rest where they can serve.

    Returns the agents given to each group per interval (the coverage line of the chart)."""
    groups = list(required)
    coverage = {g: [0] * len(starts) for g in groups}
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    lbs: list[float] = []
    ubs: list[float] = []
    costs: list[float] = []
    a_cols: dict[tuple[int, frozenset[str], str], int] = {}
    u_cols: dict[tuple[int, str], int] = {}
    duty: dict[tuple[int, frozenset[str]], int] = {}
    for i, start in enumerate(starts):
        for option, count in staffed:
            serve = option.groups & frozenset(groups)
            if serve and count > 0 and option.works(start, minutes):
                duty[(i, serve)] = duty.get((i, serve), 0) + count
    for (i, cls), _n in duty.items():
        for g in sorted(cls):
            a_cols[(i, cls, g)] = len(lbs)
            lbs.append(0.0)
            ubs.append(INF)
            costs.append(-1.0)  # place everyone on duty somewhere…
    for i in range(len(starts)):
        for g in groups:
            u_cols[(i, g)] = len(lbs)
            lbs.append(0.0)
            ubs.append(float(max(0, required[g][i])))
            costs.append(-1000.0)  # …but covering the need comes first
    n = len(lbs)
    if n == 0:
        return coverage
    h.addVars(n, np.array(lbs), np.array(ubs))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), np.array(costs))
    h.changeColsIntegrality(
        n, np.arange(n, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * n)
    )
    for (i, cls), on in duty.items():
        idx = np.array([a_cols[(i, cls, g)] for g in sorted(cls)], dtype=np.int32)
        h.addRow(-INF, float(on), len(idx), idx, np.ones(len(idx)))
    for (i, g), u in u_cols.items():
        entries = [u] + [col for (j, _cls, gg), col in a_cols.items() if j == i and gg == g]
        vals = [1.0] + [-1.0] * (len(entries) - 1)
        h.addRow(-INF, 0.0, len(entries), np.array(entries, dtype=np.int32), np.array(vals))
    h.run()
    values = list(h.getSolution().col_value)
    for (i, _cls, g), col in a_cols.items():
        coverage[g][i] += round(values[col])
    return coverage
