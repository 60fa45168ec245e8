"""QA search latency over many transcript segments, on SQLite FTS5 and PostgreSQL full text.

Builds a corpus of N synthetic segments (a Zipf vocabulary of 20,000 words, 8–20 words per
segment, customer and agent turns, 20 segments per call, dates spread over a year in index
order) straight into the search table, then times ``hub.qa.search.search`` — the code the QA
page runs, hit count capped at 1,000 and the newest 20 hits fetched — for this query mix:

- rare: a word about 1 in 100,000 segments holds;   - common: one of the 5 most frequent;
- phrase: two words as they stand in a segment;       - prefix: ``wor*`` of a mid-rank word;
- near: two mid-rank words within 5;                  - speaker: a common word, customer only;
- dates: a common word within one month;              - not: a common word without another.

Prints one JSON line per backend and query kind (p50, p95, max in ms) and one overall p95.

    .venv/bin/python bench/qa_search.py [--segments 1000000] [--backend sqlite|postgres|both]
        [--sqlite-file F] [--pg-db NAME] [--reuse]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's hub, not the venv's

from hub.db import make_engine, make_sessionmaker, migrate
from hub.qa.search import SearchFilters, search

VOCAB = 20_000
PER_CALL = 20
START = datetime(2026, 1, 1, tzinfo=UTC)
RUNS = 15


def words() -> list[str]:
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out: set[str] = set()
    while len(out) < VOCAB:
        out.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))))
    return sorted(out, key=lambda w: (len(w), w))


def corpus(n: int, vocab: list[str], per_year: int | None = None):
    """``n`` segments; ``per_year`` of them a year (all ``n`` in one year by default). With
    ``per_year`` < ``n`` the dates run on past the first year at the same rate: a corpus grown
    from 1,000,000 to 3,000,000 this way is three years of the same traffic, and its first
    ``per_year`` rows are exactly the one-year corpus of that size."""
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
        batch.append(
            {
                "interaction_id": i // PER_CALL + 1,
                "source": "segment",
                "source_id": i + 1,
                "speaker": "customer" if i % 2 else "agent",
                "at": at,
                "start_ms": (i % PER_CALL) * 4000,
                "text": text,
            }
        )
        if len(batch) == 20_000:
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
    analysed, yield (size, seconds since the start); the caller times the queries there."""
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
    insert = sa.text(
        "INSERT INTO qadoc (interaction_id, source, source_id, speaker, at, start_ms, text) "
        "VALUES (:interaction_id, :source, :source_id, :speaker, :at, :start_ms, :text)"
    ).bindparams(sa.bindparam("at", type_=sa.DateTime(timezone=True)))
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
        while done < size:
            batch = next(batches)
            async with engine.begin() as conn:
                await conn.execute(insert, batch)
            done += len(batch)
        await engine.dispose()
        await analyse(url)
        yield size, time.perf_counter() - t0


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
    common, other = vocab[2], vocab[4]
    mid_a, mid_b = vocab[300], vocab[301]
    rng = random.Random(3)
    probe = next(corpus(1000, vocab))[rng.randint(0, 999)]["text"].split()
    month_from = date(2026, 6, 1)
    return {
        "rare": (rare, SearchFilters()),
        "common": (common, SearchFilters()),
        "phrase": (f'"{probe[0]} {probe[1]}"', SearchFilters()),
        "prefix": (vocab[500][:3] + "*", SearchFilters()),
        "near": (f"{mid_a} NEAR/5 {mid_b}", SearchFilters()),
        "speaker": (common, SearchFilters(speaker="customer")),
        "dates": (common, SearchFilters(date_from=month_from, date_to=date(2026, 6, 30))),
        "not": (f"{common} -{other}", SearchFilters()),
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
                result = await search(db, text, filters, limit=20, cap=1000)
                elapsed = (time.perf_counter() - t0) * 1000
            if i:  # the first run warms the cache
                times.append(elapsed)
            hits = result.total
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
