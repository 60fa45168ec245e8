"""The shift plan's integer program against enumeration of every plan on small cases."""

from __future__ import annotations

import itertools
import random

import pytest

from hub.staffing.schedule import ShiftOption, Status, allocate, shift_options, solve

HOUR = 60


def cheapest_by_enumeration(options, starts, minutes, required, covers) -> float:
    """Try every count vector (0..max need per option) and keep the cheapest that covers."""
    top = max(max(need) for need in required.values()) + sum(
        max(need) for need in required.values()
    )
    best = float("inf")
    for counts in itertools.product(range(top + 1), repeat=len(options)):
        cost = sum(o.cost * c for o, c in zip(options, counts, strict=True))
        if cost >= best:
            continue
        if covers(options, counts, starts, minutes, required):
            best = cost
    return best


def covers_one_group(options, counts, starts, minutes, required) -> bool:
    (need,) = required.values()
    return all(
        sum(c for o, c in zip(options, counts, strict=True) if o.works(s, minutes)) >= need[i]
        for i, s in enumerate(starts)
    )


def covers_two_groups(options, counts, starts, minutes, required) -> bool:
    """English-only agents serve E; bilingual ones serve E or S. Hall's condition for two
    groups: bilingual on duty ≥ S, and everyone on duty ≥ E + S."""
    for i, s in enumerate(starts):
        on = [c for o, c in zip(options, counts, strict=True) if o.works(s, minutes)]
        both = sum(
            c
            for o, c in zip(options, counts, strict=True)
            if o.works(s, minutes) and "S" in o.groups
        )
        if both < required["S"][i] or sum(on) < required["E"][i] + required["S"][i]:
            return False
    return True


@pytest.mark.parametrize("seed", range(4))
def test_one_group_optimum_equals_enumeration(seed: int) -> None:
    rng = random.Random(seed)
    starts = [h * HOUR for h in range(6)]
    options = shift_options(
        "full",
        length=4 * HOUR,
        earliest=0,
        latest=2 * HOUR,
        step=HOUR,
        cost_per_hour=10,
        groups={"E"},
    ) + shift_options(
        "part",
        length=2 * HOUR,
        earliest=0,
        latest=4 * HOUR,
        step=2 * HOUR,
        cost_per_hour=12,
        groups={"E"},
    )
    required = {"E": [rng.randint(0, 2) for _ in starts]}
    plan = solve(options, starts, HOUR, required)
    assert plan.status is Status.OPTIMAL
    best = cheapest_by_enumeration(options, starts, HOUR, required, covers_one_group)
    assert plan.cost == pytest.approx(best)
    assert all(plan.coverage["E"][i] >= required["E"][i] for i in range(len(starts)))


@pytest.mark.parametrize("seed", range(3))
def test_two_languages_optimum_equals_enumeration(seed: int) -> None:
    rng = random.Random(100 + seed)
    starts = [h * HOUR for h in range(5)]
    options = shift_options(
        "english",
        length=3 * HOUR,
        earliest=0,
        latest=2 * HOUR,
        step=HOUR,
        cost_per_hour=10,
        groups={"E"},
    ) + shift_options(
        "bilingual",
        length=3 * HOUR,
        earliest=0,
        latest=2 * HOUR,
        step=2 * HOUR,
        cost_per_hour=13,
        groups={"E", "S"},
    )
    required = {
        "E": [rng.randint(0, 2) for _ in starts],
        "S": [rng.randint(0, 1) for _ in starts],
    }
    plan = solve(options, starts, HOUR, required)
    assert plan.status is Status.OPTIMAL
    best = cheapest_by_enumeration(options, starts, HOUR, required, covers_two_groups)
    assert plan.cost == pytest.approx(best)
    for i in range(len(starts)):
        # the allocation never counts a person twice and covers each language
        assert plan.coverage["E"][i] + plan.coverage["S"][i] == plan.on_duty[i]
        assert plan.coverage["S"][i] >= required["S"][i]
        assert plan.coverage["E"][i] >= required["E"][i]


def test_cheaper_part_timers_fill_a_peak() -> None:
    """Flat need of 1 for 8 hours plus a 2-hour peak of 2 more: one full-timer (8 × 10) and
    two 4-hour part-timers would cost 80 + 96; one 2-hour part-timer pair costs 80 + 48."""
    starts = [h * HOUR for h in range(8)]
    options = [
        *shift_options(
            "full", length=8 * HOUR, earliest=0, latest=0, step=HOUR, cost_per_hour=10, groups={"E"}
        ),
        *shift_options(
            "part",
            length=2 * HOUR,
            earliest=0,
            latest=6 * HOUR,
            step=HOUR,
            cost_per_hour=12,
            groups={"E"},
        ),
    ]
    plan = solve(options, starts, HOUR, {"E": [1, 1, 1, 3, 3, 1, 1, 1]})
    assert plan.cost == pytest.approx(80 + 2 * 24)
    assert [(p.option.label, p.count) for p in plan.picks] == [
        ("full 00:00–08:00", 1),
        ("part 03:00–05:00", 2),
    ]


def test_a_break_leaves_its_interval_uncovered() -> None:
    shift = ShiftOption(
        "full",
        start=0,
        length=4 * HOUR,
        cost=40,
        groups=frozenset({"E"}),
        break_offset=2 * HOUR,
        break_minutes=30,
    )
    assert [shift.works(s, HOUR) for s in range(0, 5 * HOUR, HOUR)] == [
        True,
        True,
        False,
        True,
        False,
    ]
    assert [shift.works(s, 15) for s in range(2 * HOUR, 3 * HOUR, 15)] == [False, False, True, True]


def test_no_template_for_a_need_is_named() -> None:
    options = shift_options(
        "day", length=2 * HOUR, earliest=0, latest=0, step=HOUR, cost_per_hour=10, groups={"E"}
    )
    plan = solve(options, [0, HOUR, 2 * HOUR], HOUR, {"E": [1, 1, 1], "S": [0, 1, 0]})
    assert plan.status is Status.INFEASIBLE
    assert plan.problems == [
        "E at 02:00: no shift template works then",
        "S at 01:00: no shift template works then",
    ]


def test_allocate_places_an_edited_roster_where_it_covers_most() -> None:
    """One bilingual and one English agent, need E=1, S=1: the bilingual one takes Spanish.
    Remove the bilingual one and Spanish is short while English keeps its agent."""
    e = ShiftOption("english", start=0, length=HOUR, cost=10, groups=frozenset({"E"}))
    b = ShiftOption("bilingual", start=0, length=HOUR, cost=13, groups=frozenset({"E", "S"}))
    need = {"E": [1], "S": [1]}
    assert allocate([(e, 1), (b, 1)], [0], HOUR, need) == {"E": [1], "S": [1]}
    assert allocate([(e, 1)], [0], HOUR, need) == {"E": [1], "S": [0]}
    assert allocate([(b, 3)], [0], HOUR, need) == {"E": [2], "S": [1]} or allocate(
        [(b, 3)], [0], HOUR, need
    ) == {"E": [1], "S": [2]}
