"""Report benchmark: a month's report by day and queue, read from the rollups, with up to
1,000,000 interactions inside that month and others around it, on SQLite and PostgreSQL.

    .venv/bin/python bench/reports.py [--sizes 100000,300000,1000000] [--db sqlite,postgres]

For each database: a fresh, migrated and seeded database; interactions are added in
tranches until the month holds each size in ``--sizes`` (plus ``--others`` interactions in
the months before and after), each with its real event rows (queued → active → wrap-up →
closed, or queued → abandoned; a fifth through the IVR first). After each tranche the
rollups are rebuilt from the raw events by ``hub.reports.rollups.rebuild`` (the job's code),
then the report (October 2026 in America/New_York, by day and queue, with repeat contacts
for 1 and 7 days) is timed: ``seconds_first`` and ``seconds_best`` of 5 runs, and
``cpu_seconds_best`` (this process's CPU: a figure a shared machine's load barely moves).
One JSON line per (database, size). Target ≤ 1 s. PostgreSQL runs when it answers at
``HUB_TEST_POSTGRES_URL`` (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from hub.db import make_engine, make_sessionmaker, migrate  # noqa: E402
from hub.reports.figures import Dimension, Period, ReportRequest, build_report  # noqa: E402
from hub.reports.rollups import rebuild  # noqa: E402
from hub.seed import seed_demo  # noqa: E402
from models import Agent, Contact, Inbox, Interaction, InteractionEvent, Queue  # noqa: E402

MONTH_START = datetime(2026, 10, 1, 4, 0, tzinfo=UTC)  # 1 October 00:00 in New York
MONTH_END = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
ZONE = "America/New_York"
CONTACTS = 50_000
_ix = Interaction.__table__  # type: ignore[attr-defined]
_ev = InteractionEvent.__table__  # type: ignore[attr-defined]


def generate(
    rng: random.Random, count: int, start: datetime, end: datetime, first_id: int, refs: dict
) -> tuple[list[tuple], list[tuple]]:
    """``count`` interactions spread over [start, end), with their events (tuples)."""
    span = (end - start).total_seconds()
    interactions, events = [], []
    for n in range(count):
        ix_id = first_id + n
        created = start + timedelta(seconds=rng.random() * span)
        channel = rng.choice(refs["channels"])
        queue = rng.choice(refs["queues"])
        agent = rng.choice(refs["agents"])
        t = created
        evs = []
        if rng.random() < 0.2:
            evs.append(("new", "self_service", t, None))
            t += timedelta(seconds=rng.randint(10, 90))
            if rng.random() < 0.3:
                evs.append(("self_service", "closed", t, None))
                interactions.append(
                    (
                        ix_id,
                        refs["inbox"][channel],
                        rng.randint(1, CONTACTS),
                        channel,
                        "closed",
                        queue,
                        created,
                    )
                )
                events.extend((ix_id, f, to, at, ag, queue) for f, to, at, ag in evs)
                continue
            evs.append(("self_service", "queued", t, None))
        else:
            evs.append(("new", "queued", t, None))
        wait = rng.expovariate(1 / 40)
        t += timedelta(seconds=wait)
        if rng.random() < 0.12:
            evs.append(("queued", "abandoned", t, None))
            state = "abandoned"
        else:
            evs.append(("queued", "active", t, agent))
            t += timedelta(seconds=rng.randint(30, 600))
            evs.append(("active", "wrap_up", t, agent))
            t += timedelta(seconds=rng.randint(5, 90))
            evs.append(("wrap_up", "closed", t, agent))
            state = "closed"
        interactions.append(
            (
                ix_id,
                refs["inbox"][channel],
                rng.randint(1, CONTACTS),
                channel,
                state,
                queue,
                created,
            )
        )
        events.extend((ix_id, f, to, at, ag, queue) for f, to, at, ag in evs)
    return interactions, events


def _text(moment: datetime) -> str:
    """How SQLAlchemy stores a timestamp in SQLite: naive UTC text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def insert(url: str, engine, interactions: list[tuple], events: list[tuple]) -> None:
    if url.startswith("sqlite"):
        # the driver's executemany with the text SQLAlchemy stores (naive UTC timestamps)
        def work(conn) -> None:
            conn.exec_driver_sql(
                "INSERT INTO interaction (id, inbox_id, contact_id, channel, state, queue_id,"
                " priority, required_skills, data, wrapup_notes, overflowed, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 0, '{}', '{}', '', 0, ?)",
                [(*row[:6], _text(row[6])) for row in interactions],
            )
            conn.exec_driver_sql(
                "INSERT INTO interactionevent (interaction_id, from_state, to_state, at,"
                " agent_id, queue_id) VALUES (?, ?, ?, ?, ?, ?)",
                [(i, f, to, _text(at), ag, q) for i, f, to, at, ag, q in events],
            )

        async with engine.begin() as conn:
            await conn.run_sync(work)
        return
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.copy_records_to_table(
            "interaction",
            records=[
                (i, b, c, ch, s, q, 0, "{}", "{}", "", False, cr)
                for i, b, c, ch, s, q, cr in interactions
            ],
            columns=[
                "id",
                "inbox_id",
                "contact_id",
                "channel",
                "state",
                "queue_id",
                "priority",
                "required_skills",
                "data",
                "wrapup_notes",
                "overflowed",
                "created_at",
            ],
        )
        await conn.copy_records_to_table(
            "interactionevent",
            records=[(i, f, to, at, ag, q) for i, f, to, at, ag, q in events],
            columns=["interaction_id", "from_state", "to_state", "at", "agent_id", "queue_id"],
        )
    finally:
        await conn.close()


async def prepare(url: str):
    migrate(url)
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as db:
        await seed_demo(db, password_for=lambda u: f"{u}-pass")
        db.add_all(Contact(name=f"c{n}") for n in range(CONTACTS))
        await db.commit()
        inboxes = (await db.exec(sa.select(Inbox.kind, Inbox.id))).all()  # type: ignore[call-overload]
        refs = {
            "inbox": dict(inboxes),
            "channels": ["voice", "webchat", "email"],
            "queues": [q for (q,) in (await db.exec(sa.select(Queue.id))).all()],  # type: ignore[call-overload]
            "agents": [a for (a,) in (await db.exec(sa.select(Agent.id))).all()],  # type: ignore[call-overload]
        }
    return engine, sessionmaker, refs


async def timed_report(sessionmaker) -> tuple[float, float, float, int]:
    request = ReportRequest(
        date(2026, 10, 1), date(2026, 10, 31), Period.DAY, Dimension.QUEUE, ZONE
    )
    times, cpu = [], []
    rows = 0
    for _ in range(5):
        async with sessionmaker() as db:
            started, cpu_started = time.perf_counter(), time.process_time()
            report = await db.run_sync(build_report, request, [1, 7])
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            rows = len(report.rows)
    return times[0], min(times), min(cpu), rows


async def run_db(name: str, url: str, sizes: list[int], others: int) -> None:
    engine, sessionmaker, refs = await prepare(url)
    rng = random.Random(16)
    next_id, in_month = 1, 0
    generated = time.perf_counter()
    # the months around October: half before, half after
    for start, end in (
        (MONTH_START - timedelta(days=30), MONTH_START),
        (MONTH_END, MONTH_END + timedelta(days=30)),
    ):
        ixs, evs = generate(rng, others // 2, start, end, next_id, refs)
        await insert(url, engine, ixs, evs)
        next_id += len(ixs)
    async with sessionmaker() as db:
        await db.run_sync(
            lambda s: rebuild(s, MONTH_START - timedelta(days=30), MONTH_START, days=[1, 7])
        )
        await db.run_sync(
            lambda s: rebuild(s, MONTH_END, MONTH_END + timedelta(days=30), days=[1, 7])
        )
        await db.commit()
    generate_seconds = time.perf_counter() - generated
    for size in sizes:
        started = time.perf_counter()
        while in_month < size:
            step = min(100_000, size - in_month)
            ixs, evs = generate(rng, step, MONTH_START, MONTH_END, next_id, refs)
            await insert(url, engine, ixs, evs)
            next_id += step
            in_month += step
        generate_seconds += time.perf_counter() - started
        built, cpu_built = time.perf_counter(), time.process_time()
        async with sessionmaker() as db:
            rows = await db.run_sync(lambda s: rebuild(s, MONTH_START, MONTH_END, days=[1, 7]))
            await db.commit()
        build_seconds = time.perf_counter() - built
        build_cpu = time.process_time() - cpu_built
        first, best, best_cpu, report_rows = await timed_report(sessionmaker)
        print(
            json.dumps(
                {
                    "figure": "report_month_by_day_and_queue",
                    "db": name,
                    "interactions_in_month": in_month,
                    "interactions_total": next_id - 1,
                    "rollup_rows_in_month": rows,
                    "report_rows": report_rows,
                    "seconds_first": round(first, 3),
                    "seconds_best": round(best, 3),
                    # this process's CPU time: the whole report on SQLite, the client's part
                    # on PostgreSQL (a figure the shared machine's load barely moves)
                    "cpu_seconds_best": round(best_cpu, 3),
                    "target_seconds": 1.0,
                    "met": best <= 1.0,
                    "rollup_rebuild_month_seconds": round(build_seconds, 1),
                    "rollup_rebuild_interactions_per_second": round(in_month / build_seconds),
                    "rollup_rebuild_cpu_seconds": round(build_cpu, 1),
                    "generate_seconds_so_far": round(generate_seconds, 1),
                    "load_average": os.getloadavg()[0],
                }
            ),
            flush=True,
        )
    await engine.dispose()


async def postgres_url() -> str | None:
    import asyncpg

    base = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        admin = await asyncpg.connect(base, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    name = f"bench_reports_{os.getpid()}"
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return base.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"


async def drop_postgres(url: str) -> None:
    import asyncpg

    base = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin = await asyncpg.connect(base)
    await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--others", type=int, default=200_000)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument(
        "--sqlite-file", help="build the SQLite database here and keep it (default: a temp dir)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    for name in args.db.split(","):
        if name == "sqlite":
            if args.sqlite_file:
                Path(args.sqlite_file).unlink(missing_ok=True)
                url = f"sqlite+aiosqlite:///{args.sqlite_file}"
                await run_db("sqlite", url, sizes, args.others)
                continue
            with tempfile.TemporaryDirectory() as tmp:
                await run_db(
                    "sqlite", f"sqlite+aiosqlite:///{tmp}/bench.sqlite3", sizes, args.others
                )
        elif name == "postgres":
            url = await postgres_url()
            if url is None:
                print(
                    json.dumps(
                        {
                            "figure": "report_month_by_day_and_queue",
                            "db": "postgres",
                            "skipped": "PostgreSQL does not answer",
                        }
                    )
                )
                continue
            try:
                await run_db("postgres", url, sizes, args.others)
            finally:
                await drop_postgres(url)


if __name__ == "__main__":
    asyncio.run(main())
