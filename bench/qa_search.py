"""QA search latency over many transcript segments, on SQLite FTS5 and PostgreSQL full text.

Builds a corpus of N synthetic segments (a Zipf vocabulary of 20,000 words, 8–20 words per
segment, customer and agent turns, 20 segments per call, dates spread over a year in index
order) straight into the search table, then times ``hub.qa.search.search`` — the code the QA
page runs, hit count capped at 1,000 and the newest 20 hits fetched — for this query mix:

- rare: a word about 1 in 100,000 segments holds;   - common: one of the 5 most frequent;
- over_cap: a word with about 1,100 hits, just over the hit-count cap, at any corpus size;
- phrase: two words as they stand in a segment;       - prefix: ``wor*`` of a mid-rank word;
- near: two mid-rank words within 5;                  - speaker: a common word, customer only;
- near_over_cap, phrase_over_cap: two words within 5, two words side by side, with about
  1,400 and 1,200 hits (just over the cap) at any corpus size;
- dates: a common word within one month;              - not: a common word without another;
- browse, browse_month, browse_none: no words (``hub.qa.search.browse``): the newest calls,
  one month's, and a filter no call matches (the worst case: every call is walked).

Prints one JSON line per backend and query kind (p50, p95, max in ms) and one overall p95.

    .venv/bin/python bench/qa_search.py [--segments 1000000] [--backend sqlite|postgres|both]
        [--sqlite-file F] [--pg-db NAME] [--reuse]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's hub, not the venv's

from hub.db import make_engine, make_sessionmaker, migrate
from hub.qa.search import SearchFilters, browse, search

VOCAB = 20_000
PER_CALL = 20
START = datetime(2026, 1, 1, tzinfo=UTC)
RUNS = 15
SQLITE = sqlite.dialect()


def words() -> list[str]:
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out: set[str] = set()
    while len(out) < VOCAB:
        out.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))))
    return sorted(out, key=lambda w: (len(w), w))


COLUMNS = ("interaction_id", "source", "source_id", "speaker", "at", "start_ms", "text")
BATCH = 20_000


def corpus(n: int, vocab: list[str], per_year: int | None = None):
    """``n`` segments as tuples of ``COLUMNS``, in batches; ``per_year`` of them a year (all
    ``n`` in one year by default). With ``per_year`` < ``n`` the dates run on past the first
    year at the same rate: a corpus grown from 1,000,000 to 3,000,000 this way is three years
    of the same traffic, and its first ``per_year`` rows are exactly the one-year corpus of
    that size."""
    rng = random.Random(11)
    weights = [1 / (r + 1) for r in range(VOCAB)]
    cum = list(_accumulate(weights))
    span = 365 * 86400
    per_year = per_year or n
    batch = []
    for i in range(n):
        k = rng.randint(8, 20)
        text = " ".join(rng.choices(vocab, cum_weights=cum, k=k))
        at = START + timedelta(seconds=span * i / per_year)
        speaker = "customer" if i % 2 else "agent"
        batch.append(
            (i // PER_CALL + 1, "segment", i + 1, speaker, at, (i % PER_CALL) * 4000, text)
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _accumulate(values):
    total = 0.0
    for v in values:
        total += v
        yield total


async def build(url: str, sizes: list[int], vocab: list[str]):
    """Insert the corpus in stages: after each size in ``sizes`` (ascending) is reached and
    analysed, yield (size, seconds since the start); the caller times the queries there.

    The segments are bulk-loaded with the search index out of the way, and the index is then
    brought up to date in one statement (``load_sqlite``, ``load_postgres``): the schema left
    behind is the migrations' own, with the same rows and index contents as inserting them
    one by one through the triggers would leave."""
    engine = make_engine(url)
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO inbox (id, name, kind, config, active) "
                "VALUES (1, 'bench', 'voice', '{}', :t)"
            ),
            {"t": True},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO contact (id, name, vip_level, blocked, blocked_reason, notes, known,"
                " created_at) VALUES (1, 'c', 0, :f, '', '', :f, :now)"
            ),
            {"f": False, "now": START},
        )
    per_year = sizes[0]
    calls_per_year = (per_year + PER_CALL - 1) // PER_CALL
    batches = corpus(sizes[-1], vocab, per_year)
    done = calls_done = 0
    for size in sizes:
        calls = (size + PER_CALL - 1) // PER_CALL
        async with engine.begin() as conn:
            rows = [
                {"id": i, "at": START + timedelta(seconds=365 * 86400 * (i - 1) / calls_per_year)}
                for i in range(calls_done + 1, calls + 1)
            ]
            await conn.execute(
                sa.text(
                    "INSERT INTO interaction (id, inbox_id, contact_id, channel, state, "
                    "priority, required_skills, data, wrapup_notes, overflowed, created_at) "
                    "VALUES (:id, 1, 1, 'voice', 'closed', 0, '{}', '{}', '', :f, :at)"
                ),
                [{**r, "f": False} for r in rows],
            )
        calls_done = calls
        await engine.dispose()
        if "sqlite" in url:
            await asyncio.to_thread(load_sqlite, url.split(":///", 1)[1], batches, done, size)
        else:
            await load_postgres(url, batches, done, size)
        done = size
        await analyse(url)
        yield size, time.perf_counter() - t0


def load_sqlite(path: str, batches, done: int, size: int) -> None:
    """Segments ``done`` + 1 … ``size``: the two insert triggers (FTS5 and the day map) are
    dropped, the rows inserted, the FTS5 rows and days added by the triggers' own statements
    over the new ids at once, and the triggers created again from their stored SQL. No
    journal and no fsync while loading: a scratch file."""
    to_text = sa.DateTime(timezone=True).dialect_impl(SQLITE).bind_processor(SQLITE)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")  # 1 GB
    triggers = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
        "AND name IN ('qadoc_fts_ai', 'qadoc_fts_day_ai')"
    ).fetchall()
    assert len(triggers) == 2, triggers
    db.execute("BEGIN")
    for name, _ in triggers:
        db.execute(f"DROP TRIGGER {name}")
    insert = (
        "INSERT INTO qadoc (interaction_id, source, source_id, speaker, at, start_ms, text) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    loaded = done
    while loaded < size:
        batch = next(batches)
        db.executemany(insert, [(*r[:4], to_text(r[4]), *r[5:]) for r in batch])
        loaded += len(batch)
    db.execute(
        "INSERT INTO qadoc_fts (rowid, text) SELECT id, text FROM qadoc WHERE id > ?", (done,)
    )
    db.execute(
        "INSERT INTO qadocday (day, min_id, max_id) SELECT date(at), min(id), max(id) "
        "FROM qadoc WHERE id > ? GROUP BY 1 ORDER BY 1 ON CONFLICT (day) DO UPDATE "
        "SET min_id = min(min_id, excluded.min_id), max_id = max(max_id, excluded.max_id)",
        (done,),
    )
    for _, sql in triggers:
        db.execute(sql)
    db.execute("COMMIT")
    db.execute("PRAGMA journal_mode=WAL")  # as the migrations left it
    db.close()


async def load_postgres(url: str, batches, done: int, size: int) -> None:
    """Segments ``done`` + 1 … ``size`` by COPY, with the GIN index dropped and triggers off
    (``session_replication_role``: the day map's trigger and the foreign-key checks, whose
    rows are there by construction); then the days added, and the index created again from
    its own definition."""
    db = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    index = await db.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_qadoc_fts_vector'"
    )
    async with db.transaction():
        await db.execute("SET LOCAL session_replication_role = replica")
        await db.execute("SET LOCAL maintenance_work_mem = '1GB'")
        await db.execute("DROP INDEX ix_qadoc_fts_vector")
        loaded = done
        while loaded < size:
            batch = next(batches)
            await db.copy_records_to_table("qadoc", records=batch, columns=COLUMNS)
            loaded += len(batch)
        await db.execute(
            "INSERT INTO qadocday (day, min_id, max_id) SELECT (at AT TIME ZONE 'UTC')::date, "
            "min(id), max(id) FROM qadoc WHERE id > $1 GROUP BY 1 ORDER BY 1 "
            "ON CONFLICT (day) DO UPDATE SET min_id = LEAST(qadocday.min_id, EXCLUDED.min_id), "
            "max_id = GREATEST(qadocday.max_id, EXCLUDED.max_id)",
            done,
        )
        await db.execute(index)
    await db.close()


async def analyse(url: str) -> None:
    """What autovacuum does after a bulk load or a migration that rewrote the table: GIN's
    pending list merged, statistics taken."""
    engine = make_engine(url)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("ANALYZE" if "sqlite" in url else "VACUUM ANALYZE"))
    await engine.dispose()


def queries(vocab: list[str], n: int) -> dict[str, tuple[str, SearchFilters]]:
    # rank r is held by about n * 14 / (r * H) segments (H ≈ 10.5): 1 in 100,000 → r ≈ 13,000
    rare = vocab[min(VOCAB - 1, 13_000)]
    # rank 13,000 held 107 times in 1,000,000: about 1,100 hits (just over the cap) at
    # rank n * 1.39 / 1,100
    over_cap = vocab[min(VOCAB - 1, round(n * 1.39 / 1100))]
    common, other = vocab[2], vocab[4]
    mid_a, mid_b = vocab[300], vocab[301]
    # pairs just over the cap: ranks 90 and 91 within 5 of each other are 1,388 segments of
    # 10,000,000, ranks 30 and 31 side by side 1,186; a pair's hits go as n / r²
    near_rank = round(90 * (n / 10_000_000) ** 0.5)
    phrase_rank = round(30 * (n / 10_000_000) ** 0.5)
    rng = random.Random(3)
    probe = next(corpus(1000, vocab))[rng.randint(0, 999)][-1].split()
    month_from = date(2026, 6, 1)
    return {
        "rare": (rare, SearchFilters()),
        "common": (common, SearchFilters()),
        "over_cap": (over_cap, SearchFilters()),
        "phrase": (f'"{probe[0]} {probe[1]}"', SearchFilters()),
        "prefix": (vocab[500][:3] + "*", SearchFilters()),
        "near": (f"{mid_a} NEAR/5 {mid_b}", SearchFilters()),
        "near_over_cap": (f"{vocab[near_rank]} NEAR/5 {vocab[near_rank + 1]}", SearchFilters()),
        "phrase_over_cap": (f'"{vocab[phrase_rank]} {vocab[phrase_rank + 1]}"', SearchFilters()),
        "speaker": (common, SearchFilters(speaker="customer")),
        "dates": (common, SearchFilters(date_from=month_from, date_to=date(2026, 6, 30))),
        "not": (f"{common} -{other}", SearchFilters()),
        # no words (the QA page's list by filters alone, ``browse``): the newest calls, a
        # month's, and a filter that no call matches and no index serves (the corpus has no
        # transcript rows: every call is walked and its transcript looked up)
        "browse": ("", SearchFilters()),
        "browse_month": ("", SearchFilters(date_from=month_from, date_to=date(2026, 6, 30))),
        "browse_none": ("", SearchFilters(sentiment="negative")),
    }


async def measure(url: str, backend: str, n: int, vocab: list[str]) -> list[float]:
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    everything: list[float] = []
    for kind, (text, filters) in queries(vocab, n).items():
        times = []
        hits = 0
        for i in range(RUNS + 1):
            async with maker() as db:
                t0 = time.perf_counter()
                if text:
                    result = await search(db, text, filters, limit=20, cap=1000)
                else:
                    result = await browse(db, filters, limit=20, cap=1000)
                elapsed = (time.perf_counter() - t0) * 1000
            if i:  # the first run warms the cache
                times.append(elapsed)
            hits, capped = result.total, result.capped
        times.sort()
        everything += times
        print(
            json.dumps(
                {
                    "figure": "qa_search_ms",
                    "backend": backend,
                    "segments": n,
                    "query": kind,
                    "text": text,
                    "hits_capped": hits,
                    "capped": capped,
                    "p50": round(statistics.median(times), 2),
                    "p95": round(times[int(0.95 * (len(times) - 1))], 2),
                    "max": round(times[-1], 2),
                }
            ),
            flush=True,
        )
    await engine.dispose()
    everything.sort()
    return everything


async def run_backend(
    backend: str,
    sizes: list[int],
    vocab: list[str],
    postgres_url: str,
    pg_db: str = "qa_bench",
    sqlite_file: Path | None = None,
    reuse: bool = False,
) -> None:
    """Build the corpus and time the queries; with ``reuse``, a corpus that a previous run
    left (``--sqlite-file``, ``--pg-db``) is migrated to the current head and timed again,
    so a change can be compared before and after on the same rows."""
    if backend == "sqlite":
        path = sqlite_file or Path(tempfile.mkdtemp(prefix="qa-bench-")) / "bench.sqlite3"
        url = f"sqlite+aiosqlite:///{path}"
        exists = path.exists()
        if exists and not reuse:
            path.unlink()
            exists = False
    else:
        admin = make_engine(postgres_url.replace("postgresql://", "postgresql+asyncpg://"))
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            exists = bool(
                (
                    await conn.execute(
                        sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": pg_db}
                    )
                ).first()
            )
            if not (exists and reuse):
                await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {pg_db}"))
                await conn.execute(sa.text(f"CREATE DATABASE {pg_db}"))
                exists = False
        await admin.dispose()
        url = postgres_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url += f"/{pg_db}"
    started = time.perf_counter()
    await asyncio.to_thread(migrate, url)
    if exists:
        await analyse(url)
        print(
            json.dumps(
                {
                    "figure": "qa_reused_corpus_migrate_s",
                    "backend": backend,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            ),
            flush=True,
        )
        times = await measure(url, backend, sizes[-1], vocab)
        report_p95(backend, sizes[-1], times)
        return
    async for size, seconds in build(url, sizes, vocab):
        print(
            json.dumps(
                {
                    "figure": "qa_index_build_s",
                    "backend": backend,
                    "segments": size,
                    "years": round(size / sizes[0], 2),
                    "seconds": round(seconds, 1),
                }
            ),
            flush=True,
        )
        report_p95(backend, size, await measure(url, backend, size, vocab))


def report_p95(backend: str, n: int, times: list[float]) -> None:
    print(
        json.dumps(
            {
                "figure": "qa_search_p95_ms",
                "backend": backend,
                "segments": n,
                "p95": round(times[int(0.95 * (len(times) - 1))], 2),
                "target_ms": 100,
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--segments",
        default="1000000",
        help="corpus size, or ascending sizes (1000000,3000000): the corpus grows in stages, "
        "the first size a year of traffic, and the queries are timed at each",
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-db", default="qa_bench", help="scratch database (dropped first)")
    parser.add_argument("--sqlite-file", type=Path, help="where the SQLite corpus is built")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="time the corpus a previous run left (migrated to head) instead of building it",
    )
    args = parser.parse_args()
    if not args.pg_db.isidentifier():
        parser.error("--pg-db must be a plain identifier")
    sizes = [int(x) for x in args.segments.replace("_", "").split(",")]
    if sizes != sorted(set(sizes)):
        parser.error("--segments: ascending sizes")
    if args.reuse and len(sizes) > 1:
        parser.error("--reuse times one corpus: give one size")
    vocab = words()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        asyncio.run(
            run_backend(
                backend,
                sizes,
                vocab,
                args.postgres,
                args.pg_db,
                args.sqlite_file,
                args.reuse,
            )
        )


if __name__ == "__main__":
    main()
