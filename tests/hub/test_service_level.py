"""Service level, the one shared definition: built days, figures worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.service_level import Entered, day_start, service_level, service_levels
from hub.services import Services
from hub.stats import queue_stats
from models import Interaction
from tests.hub.routing.helpers import chat, queue_id, update

# 03:00 UTC on 2 December is noon in Seoul; Seoul's day began at 15:00 UTC on 1 December.
NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
SEOUL = "Asia/Seoul"


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=UTC)


def test_the_day_starts_at_midnight_in_the_organizations_zone():
    assert day_start(NOW, SEOUL) == at(1, 15)
    assert day_start(NOW, "UTC") == at(2, 0)
    assert day_start(NOW, "America/New_York") == at(1, 5)  # 22:00 on 1 Dec in New York


def test_waiting_past_the_target_is_a_miss_and_within_it_is_not_counted_yet():
    target = 30
    rows = [
        Entered(at(2, 1), at(2, 1, 0, 30), "closed"),  # answered at the target: made it
        Entered(at(2, 1), at(2, 1, 0, 31), "closed"),  # one second late
        Entered(at(2, 2), None, "abandoned"),
        Entered(at(2, 2, 59, 29), None, "queued"),  # 31 s waiting: a miss already
        Entered(at(2, 2, 59, 30), None, "queued"),  # 30 s waiting: not late yet
        Entered(at(2, 2), None, "offered"),  # ringing for an hour: a miss
        Entered(at(2, 2), None, "voicemail"),  # left a message: neither
    ]
    level = service_level(rows, target, NOW)
    assert (level.answered_in_target, level.answered_late, level.abandoned) == (1, 1, 1)
    assert level.waiting_past_target == 2
    assert level.pct == 20.0  # 1 of 5
    assert service_level([], target, NOW).pct is None


async def built_day(services: Services) -> dict[str, int]:
    """Contacts that entered General (target 30 s) around NOW, by what became of them."""
    rows = {
        # Seoul's day, UTC's day before: answered in 10 s
        "early_made": dict(queued_at=at(1, 20), answered_at=at(1, 20, 0, 10), state="closed"),
        "late": dict(queued_at=at(2, 1), answered_at=at(2, 1, 0, 50), state="closed"),
        "abandoned": dict(queued_at=at(2, 2), state="abandoned", closed_at=at(2, 2, 5)),
        "waiting_long": dict(queued_at=at(2, 2, 59), state="queued"),  # 60 s
        "waiting_short": dict(queued_at=at(2, 2, 59, 50), state="queued"),  # 10 s
        "made_at_target": dict(
            queued_at=at(2, 2, 30), answered_at=at(2, 2, 30, 30), state="active"
        ),
        "ringing_long": dict(queued_at=at(2, 0, 30), state="offered"),
        # Seoul's previous day (23:00 there): not today anywhere
        "yesterday": dict(queued_at=at(1, 14), answered_at=at(1, 14, 0, 5), state="closed"),
    }
    general = await queue_id(services, "General")
    ids = {}
    for name, values in rows.items():
        ids[name] = await chat(services, sender=f"sl-{name}")
        await update(services, Interaction, ids[name], queue_id=general, **values)
    return ids


async def test_todays_service_level_in_the_organizations_time_zone(services: Services):
    await built_day(services)
    general = await queue_id(services, "General")
    async with services.sessionmaker() as db:
        seoul = (await service_levels(db, {general: 30}, now=NOW, timezone=SEOUL))[general]
        utc = (await service_levels(db, {general: 30}, now=NOW, timezone="UTC"))[general]
        board = {q.name: q for q in await queue_stats(db, timezone=SEOUL, now=NOW)}
    # Seoul's day: made it = early_made, made_at_target (2); misses = late, abandoned,
    # waiting_long, ringing_long (4); waiting_short is not counted yet. 2 / 6 = 33.3 %.
    assert (seoul.answered_in_target, seoul.misses, seoul.pct) == (2, 4, 33.3)
    assert (seoul.waiting_past_target, seoul.abandoned, seoul.answered_late) == (2, 1, 1)
    # UTC's day leaves out early_made (20:00 UTC on 1 December): 1 / 5 = 20 %.
    assert (utc.answered_in_target, utc.misses, utc.pct) == (1, 4, 20.0)
    # The wallboard shows the same figure, from the same definition.
    assert board["General"].service_level_pct == 33.3
    assert board["Billing"].service_level_pct is None


def test_an_unknown_time_zone_is_refused_at_start():
    import pytest
    from pydantic import ValidationError

    from hub.settings import Settings

    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Base'"):
        Settings(timezone="Mars/Base")


def test_each_queue_rule_counts_its_own_denominator():
    from hub.service_level import Denominator

    target = 30
    rows = [
        Entered(at(2, 1), at(2, 1, 0, 10), "closed"),  # made it
        Entered(at(2, 1), at(2, 1, 0, 50), "closed"),  # late
        Entered(at(2, 2), None, "abandoned", at(2, 2, 0, 4)),  # a short abandon (≤ 5 s)
        Entered(at(2, 2), None, "abandoned", at(2, 2, 1)),  # a real abandon
        Entered(at(2, 2), None, "voicemail"),  # left a message
        Entered(at(2, 2, 30), None, "voicemail"),  # and another
        Entered(at(2, 2, 59), None, "queued"),  # 60 s waiting: a live miss
    ]

    def level(rule: str) -> tuple[int, float | None]:
        sl = service_level(rows, target, NOW, rule=rule, short_abandon_seconds=5)
        return sl.counted, sl.pct

    assert level(Denominator.ANSWERED) == (2, 50.0)  # 1 of the 2 answered
    assert level(Denominator.ANSWERED_ABANDONED) == (5, 20.0)  # 2 answered + 2 abandoned + 1
    # offered (2 answered + 2 abandoned + 2 messages) − 1 short abandon + 1 waiting late
    assert level(Denominator.OFFERED_MINUS_SHORT) == (6, 16.7)
    short = service_level(rows, target, NOW, short_abandon_seconds=5)
    assert (short.abandoned, short.short_abandoned, short.voicemail) == (2, 1, 2)
