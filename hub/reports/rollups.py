"""Rollups: ``hub.reports.facts`` summed per 15-minute interval in UTC, kept up to date.

``refresh(db, buckets)`` recomputes whole intervals from the raw events: it deletes their
rows and writes them again, so running it twice (a job retried after a crash) changes
nothing. The ``reports.rollup`` job follows the event table by id (its watermark travels in
the job's payload): the interactions with new events name the intervals to recompute, and
the job enqueues its successor in the same transaction that writes the rows.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session

from hub.jobs import ClaimedJob, enqueue
from hub.reports.facts import (
    ADDITIVE,
    CALLBACK_COMPLETED,
    CALLBACK_REQUESTED,
    CONTROL,
    HOLD_ENDS,
    HOLD_STARTS,
    INTERVAL,
    TRANSFER_OUT,
    Event,
    Fact,
    QueueRule,
    aggregate,
    bucket_of,
    interaction_facts,
)
from models import (
    CallbackRequest,
    CallbackState,
    ControlEvent,
    Interaction,
    InteractionEvent,
    Job,
    JobState,
    Queue,
    ReportRepeat,
    ReportRollup,
    ReportRollupQueue,
    utcnow,
)

if TYPE_CHECKING:
    from hub.services import Services

log = logging.getLogger(__name__)
ROLLUP_JOB = "reports.rollup"
REBUILD_JOB = "reports.rebuild"  # a queue's report rule changed: recompute recent intervals
REBUILD_DAYS = 35
# events one job run takes on (the next run continues at once): small, because on SQLite
# the run holds the write lock while it recomputes the intervals those events touch
BATCH_EVENTS = 2_000
_CHUNK = 500  # ids per IN (…) list
_ev = InteractionEvent.__table__  # type: ignore[attr-defined]
_ctl = ControlEvent.__table__  # type: ignore[attr-defined]
_cb = CallbackRequest.__table__  # type: ignore[attr-defined]
CONTROL_KINDS = sorted(HOLD_STARTS.keys() | HOLD_ENDS.keys() | {"transfer"})
_ix = Interaction.__table__  # type: ignore[attr-defined]
_rollup = ReportRollup.__table__  # type: ignore[attr-defined]
_by_queue = ReportRollupQueue.__table__  # type: ignore[attr-defined]
_repeat = ReportRepeat.__table__  # type: ignore[attr-defined]


def queue_rules(db: Session) -> dict[int, QueueRule]:
    rows = db.execute(
        sa.select(Queue.id, Queue.sla_seconds, Queue.sl_denominator, Queue.short_abandon_seconds)  # type: ignore[call-overload]
    ).all()
    return {row[0]: QueueRule(row[1], row[2], row[3]) for row in rows}


def ranges(buckets: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted intervals merged into contiguous [start, end) ranges."""
    merged: list[tuple[datetime, datetime]] = []
    for bucket in sorted(set(buckets)):
        if merged and merged[-1][1] == bucket:
            merged[-1] = (merged[-1][0], bucket + INTERVAL)
        else:
            merged.append((bucket, bucket + INTERVAL))
    return merged


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for index in range(0, len(ids), _CHUNK):
        yield ids[index : index + _CHUNK]


def facts_of(
    db: Session, interaction_ids: Iterable[int], rules: dict[int, QueueRule]
) -> list[Fact]:
    """Every fact of these interactions, from their raw events."""
    facts: list[Fact] = []
    for chunk in _chunks(sorted(set(interaction_ids))):
        facts.extend(_facts(db, chunk, rules))
    return facts


def facts_in(
    db: Session, start: datetime, end: datetime, rules: dict[int, QueueRule]
) -> list[Fact]:
    """Every fact of the interactions with an event in [start, end), in set-based queries
    (the interactions are chosen in the database, not sent to it as lists of ids)."""
    touched = sa.select(_ev.c.interaction_id).where(_ev.c.at >= start, _ev.c.at < end)
    return _facts(db, touched, rules)


def _facts(db: Session, chosen: list[int] | sa.Select, rules: dict[int, QueueRule]) -> list[Fact]:
    """The facts of the interactions ``chosen`` (their ids, or a query of them)."""
    meta = {
        row[0]: (row[1], row[2])
        for row in db.execute(
            sa.select(_ix.c.id, _ix.c.channel, _ix.c.inbox_id).where(_ix.c.id.in_(chosen))
        )
    }
    by_interaction: dict[int, list[Event]] = defaultdict(list)
    for row in db.execute(
        sa.select(
            _ev.c.interaction_id,
            _ev.c.at,
            _ev.c.from_state,
            _ev.c.to_state,
            _ev.c.agent_id,
            _ev.c.queue_id,
            _ev.c.reason,
        )
        .where(_ev.c.interaction_id.in_(chosen))
        .order_by(_ev.c.interaction_id, _ev.c.at, _ev.c.id)
    ):
        by_interaction[row[0]].append(Event(*row[1:]))
    mixed: set[int] = set()  # interactions with call controls or callbacks among their events
    for interaction_id, at, kind, detail in db.execute(
        sa.select(_ctl.c.interaction_id, _ctl.c.at, _ctl.c.kind, _ctl.c.detail)
        .where(_ctl.c.interaction_id.in_(chosen), _ctl.c.kind.in_(CONTROL_KINDS))
        .order_by(_ctl.c.interaction_id, _ctl.c.at, _ctl.c.id)
    ):
        if kind == "transfer":  # only the request counts, not its outcome rows
            if (detail or {}).get("to") != "external":
                continue
            kind = TRANSFER_OUT
        if interaction_id in by_interaction:
            by_interaction[interaction_id].append(Event(at, None, CONTROL + kind, None, None, None))
            mixed.add(interaction_id)
    for interaction_id, created_at, state, finished_at in db.execute(
        sa.select(_cb.c.interaction_id, _cb.c.created_at, _cb.c.state, _cb.c.finished_at).where(
            _cb.c.interaction_id.in_(chosen)
        )
    ):
        if interaction_id in by_interaction:
            events = by_interaction[interaction_id]
            events.append(Event(created_at, None, CALLBACK_REQUESTED, None, None, None))
            mixed.add(interaction_id)
            if state == CallbackState.CONNECTED and finished_at is not None:
                events.append(Event(finished_at, None, CALLBACK_COMPLETED, None, None, None))
    facts: list[Fact] = []
    for interaction_id, events in by_interaction.items():
        if interaction_id in mixed:  # the state changes alone come in order already
            events.sort(key=_at)  # stable: state changes first
        channel, inbox_id = meta[interaction_id]
        facts.extend(interaction_facts(channel, inbox_id, events, rules))
    return facts


def _at(event: Event) -> datetime:
    return _aware(event.at)


def repeat_days(text: str) -> list[int]:
    """``HUB_REPORTS_REPEAT_DAYS`` ("1,7,30") as a sorted list of positive day counts."""
    days = sorted({int(part) for part in text.replace(" ", "").split(",") if part})
    if not days or days[0] < 1:
        raise ValueError("repeat-contact windows are whole days, at least 1")
    return days


def refresh(db: Session, buckets: Iterable[datetime], *, days: list[int] | None = None) -> int:
    """Recompute the rollup rows of these intervals from the raw events; returns rows written."""
    rules = queue_rules(db)
    written = 0
    for start, end in ranges(bucket_of(b) for b in buckets):
        rows = aggregate(f for f in facts_in(db, start, end, rules) if start <= f.bucket < end)
        for table in (_rollup, _by_queue):
            db.execute(table.delete().where(table.c.bucket >= start, table.c.bucket < end))
        if rows:
            db.execute(_rollup.insert(), [_row(fact) for fact in rows.values()])
            queue_rows = aggregate(rows.values(), agent=False)
            db.execute(
                _by_queue.insert(),
                [
                    {k: v for k, v in _row(f).items() if k != "agent_id"}
                    for f in queue_rows.values()
                ],
            )
        written += len(rows)
        _refresh_repeats(db, start, end, days or [])
    return written


def _row(fact: Fact) -> dict:
    return {
        "bucket": fact.bucket,
        "queue_id": fact.queue_id,
        "channel": fact.channel,
        "inbox_id": fact.inbox_id,
        "agent_id": fact.agent_id,
        **{name: getattr(fact, name) for name in ADDITIVE},
        "wait_max_seconds": fact.wait_max_seconds,
        **{f"ans_w{i}": count for i, count in enumerate(fact.answered_hist)},
        **{f"ab_w{i}": count for i, count in enumerate(fact.abandoned_hist)},
    }


def _refresh_repeats(db: Session, start: datetime, end: datetime, days: list[int]) -> None:
    """Contacts created in [start, end), and which of them are repeats within each N days.

    A contact is a repeat within N days when the same customer has another interaction
    created at most N days before it (one created at the same moment counts when its id is
    lower). That other interaction exists exactly when the customer's previous interaction,
    in the order (created_at, id), is at most N days older: the database finds that one
    (``lag`` over the customer's interactions of the last max(N) days)."""
    db.execute(_repeat.delete().where(_repeat.c.bucket >= start, _repeat.c.bucket < end))
    if not days:
        return
    longest = timedelta(days=max(days))
    window = (
        sa.select(
            _ix.c.created_at,
            _ix.c.channel,
            _ix.c.inbox_id,
            _ix.c.queue_id,
            sa.func.lag(_ix.c.created_at, type_=_ix.c.created_at.type)
            .over(partition_by=_ix.c.contact_id, order_by=(_ix.c.created_at, _ix.c.id))
            .label("previous"),
        )
        .where(_ix.c.created_at >= start - longest, _ix.c.created_at < end)
        .subquery()
    )
    spans = [(n, timedelta(days=n)) for n in days]
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    buckets: dict[datetime, datetime] = {}
    for created_at, channel, inbox_id, queue_id, previous in db.execute(
        sa.select(
            window.c.created_at,
            window.c.channel,
            window.c.inbox_id,
            window.c.queue_id,
            window.c.previous,
        ).where(window.c.created_at >= start)
    ):
        created_at = _aware(created_at)
        bucket = buckets.get(created_at)
        if bucket is None:
            bucket = buckets[created_at] = bucket_of(created_at)
        previous = None if previous is None else _aware(previous)
        for n, span in spans:
            row = counts[(bucket, n, queue_id, channel, inbox_id)]
            row[0] += 1
            row[1] += int(previous is not None and previous >= created_at - span)
    if not counts:
        return
    db.execute(
        _repeat.insert(),
        [
            {
                "bucket": key[0],
                "days": key[1],
                "queue_id": key[2],
                "channel": key[3],
                "inbox_id": key[4],
                "contacts": value[0],
                "repeats": value[1],
            }
            for key, value in counts.items()
        ],
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def rebuild(db: Session, start: datetime, end: datetime, *, days: list[int] | None = None) -> int:
    """Recompute every interval in [start, end), a day at a time."""
    written = 0
    day = bucket_of(start)
    while day < end:
        stop = min(day + timedelta(days=1), end)
        buckets = []
        moment = day
        while moment < stop:
            buckets.append(moment)
            moment += INTERVAL
        written += refresh(db, buckets, days=days)
        db.commit()
        day = stop
    return written


def follow(db: Session, after_event_id: int, *, days: list[int]) -> int:
    """Recompute the intervals touched by events after ``after_event_id``; returns the new
    watermark (the last event id taken on)."""
    new = db.execute(
        sa.select(_ev.c.id, _ev.c.interaction_id)
        .where(_ev.c.id > after_event_id)
        .order_by(_ev.c.id)
        .limit(BATCH_EVENTS)
    ).all()
    if not new:
        return after_event_id
    touched = {row[1] for row in new}
    rules = queue_rules(db)
    buckets = {fact.bucket for fact in facts_of(db, touched, rules)}
    for chunk in _chunks(sorted(touched)):
        buckets.update(
            bucket_of(at)
            for at in db.execute(sa.select(_ix.c.created_at).where(_ix.c.id.in_(chunk))).scalars()
        )
    refresh(db, buckets, days=days)
    return new[-1][0]


class RollupJob:
    """The ``reports.rollup`` job chain: one pending job at a time, each run enqueuing the
    next with its watermark."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.days = repeat_days(services.settings.reports_repeat_days)

    def register(self) -> None:
        self.services.jobs.register(ROLLUP_JOB, self.run_job)
        self.services.jobs.register(REBUILD_JOB, self.rebuild_job)

    async def rebuild_job(self, job: ClaimedJob) -> None:
        """Recompute the last ``REBUILD_DAYS`` days (a queue's rule changed)."""
        end = bucket_of(utcnow()) + INTERVAL
        start = end - timedelta(days=REBUILD_DAYS)

        def work(db: Session) -> None:
            rebuild(db, start, end, days=self.days)

        await self.services.transactions.run(work)

    async def ensure_started(self) -> None:
        """Start the chain unless a job of it is pending or running."""

        def work(db: Session) -> None:
            alive = db.execute(
                sa.select(sa.func.count())
                .select_from(Job)
                .where(
                    Job.kind == ROLLUP_JOB,  # type: ignore[arg-type]
                    Job.state.in_([JobState.PENDING.value, JobState.RUNNING.value]),  # type: ignore[attr-defined]
                )
            ).scalar_one()
            if not alive:
                last = db.execute(
                    sa.select(Job.payload)
                    .where(Job.kind == ROLLUP_JOB)  # type: ignore[arg-type]
                    .order_by(sa.desc(Job.id))
                    .limit(1)
                ).scalar()
                enqueue(db, ROLLUP_JOB, {"after": int((last or {}).get("next", 0))})

        await self.services.transactions.run(work)

    async def run_job(self, job: ClaimedJob) -> None:
        after = int(job.payload.get("after", 0))
        every = self.services.settings.reports_rollup_seconds

        def work(db: Session) -> int:
            watermark = follow(db, after, days=self.days)
            # the successor comes sooner while there is a backlog
            delay = 0 if watermark - after >= BATCH_EVENTS else every
            enqueue(db, ROLLUP_JOB, {"after": watermark}, utcnow() + timedelta(seconds=delay))
            job_row = db.get(Job, job.id)
            if job_row is not None:
                job_row.payload = {**job.payload, "next": watermark}
            return watermark

        await self.services.transactions.run(work)

    async def catch_up(self) -> None:
        """Roll up everything now (tests and the bench; the job does it in the hub)."""

        def work(db: Session) -> None:
            after = 0
            while True:
                watermark = follow(db, after, days=self.days)
                if watermark == after:
                    return
                after = watermark

        await self.services.transactions.run(work)
