"""The rebuild's set-based reads against plain recomputes: the rollup rows equal the facts of
every interaction read by id and summed, and the repeat-contact rows equal the definition
checked pair by pair (ties at the same moment and windows ending exactly N days back)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from hub.reports.facts import bucket_of
from hub.reports.rollups import _row, aggregate, facts_of, queue_rules, rebuild
from hub.services import Services
from models import Interaction, ReportRepeat, ReportRollup, ReportRollupQueue
from tests.hub.reports.history import Spec, build

T = datetime(2026, 10, 10, 23, 59, 50, tzinfo=UTC)  # just before midnight UTC
DAY = timedelta(days=1)


def specs() -> list[Spec]:
    return [
        Spec(T, "answered", 30, 120, 15, "alice", "voice", customer="a"),  # ends after midnight
        Spec(T, "abandoned", 4, customer="a"),  # the same moment: a repeat (higher id)
        Spec(T + DAY, "answered", 8, 60, 5, "bob", "webchat", customer="a"),  # exactly 1 day
        Spec(T + 8 * DAY + timedelta(seconds=1), "voicemail", 20, customer="a"),  # 7 d 1 s
        Spec(T + timedelta(hours=3), "contained", customer="b"),
        Spec(T + timedelta(hours=3) + 2 * DAY, "answered", 50, 90, 0, "bob", customer="b"),
        Spec(
            T + timedelta(minutes=7), "answered", 12, 30, 10, "alice", customer="c", bot_seconds=25
        ),
        Spec(T + timedelta(minutes=7), "abandoned", 40, channel="webchat", customer="d"),
    ]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _expected_repeats(db: Session, days: list[int]) -> dict[tuple, tuple[int, int]]:
    """Straight from the definition: another interaction of the same customer created at
    most N days before (at the same moment: with a lower id)."""
    rows = [
        (i, c, _aware(at), ch, ib, q)
        for i, c, at, ch, ib, q in db.execute(
            sa.select(
                Interaction.id,  # type: ignore[call-overload]
                Interaction.contact_id,
                Interaction.created_at,
                Interaction.channel,
                Interaction.inbox_id,
                Interaction.queue_id,
            )
        )
    ]
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for ix, contact, at, channel, inbox, queue in rows:
        for n in days:
            repeat = any(
                other != ix
                and c == contact
                and at - timedelta(days=n) <= when <= at
                and (when < at or other < ix)
                for other, c, when, *_ in rows
            )
            row = counts[(bucket_of(at), n, queue, channel, inbox)]
            row[0] += 1
            row[1] += repeat
    return {key: (value[0], value[1]) for key, value in counts.items()}


async def test_rebuild_equals_facts_read_by_id_and_repeats_by_definition(services: Services):
    await services.transactions.run(lambda db: build(db, specs()))

    def check(db: Session) -> None:
        written = rebuild(db, T - 2 * DAY, T + 12 * DAY, days=[1, 7])
        facts = facts_of(db, range(1, 1_000), queue_rules(db))
        expected = aggregate(facts)
        assert written == len(expected)
        for model, rows in ((ReportRollup, expected), (ReportRollupQueue, None)):
            table = model.__table__  # type: ignore[attr-defined]
            if rows is None:
                rows = aggregate(expected.values(), agent=False)
            got = {}
            for row in db.execute(sa.select(table)).mappings():
                figures = {k: v for k, v in row.items() if k != "id"}
                figures["bucket"] = bucket_of(figures["bucket"])
                key = tuple(
                    figures.get(k) for k in ("bucket", "queue_id", "channel", "inbox_id")
                ) + ((figures["agent_id"],) if "agent_id" in figures else ())
                got[key] = figures
            want = {}
            for key, fact in rows.items():
                figures = _row(fact)
                if "agent_id" not in table.c:
                    figures.pop("agent_id")
                want[key] = figures
            assert got == want
        assert sum(f.offered for f in facts) == 7  # every contact but the contained one
        assert sum(f.handled for f in facts) == 4

        repeats = {
            (bucket_of(r.bucket), r.days, r.queue_id, r.channel, r.inbox_id): (
                r.contacts,
                r.repeats,
            )
            for r in db.execute(sa.select(ReportRepeat.__table__))  # type: ignore[attr-defined]
        }
        assert repeats == _expected_repeats(db, [1, 7])
        by_days = defaultdict(int)
        for (_, n, *_), (_, count) in repeats.items():
            by_days[n] += count
        # a's second (a tie, higher id) and third (exactly 1 day); b's second within 7 days
        assert dict(by_days) == {1: 2, 7: 3}

    async with services.sessionmaker() as db:
        await db.run_sync(check)
