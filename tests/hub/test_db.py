"""The SQLite write-ahead log is checkpointed in the background, never inside a commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import models  # noqa: F401  (every table on SQLModel.metadata)
from hub.db import WalCheckpointer, make_engine
from hub.qa.search import is_search_index_object


async def test_commits_leave_the_log_to_the_background_checkpointer(tmp_path: Path):
    path = tmp_path / "wal.sqlite3"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    wal = Path(f"{path}-wal")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        for _ in range(400):  # ~1,200 pages: past SQLite's default auto-checkpoint of 1,000
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "x" * 4000})
        checkpointer = WalCheckpointer(engine.url, interval=0.05)
        busy, frames, done = checkpointer.checkpoint("PASSIVE")  # what the task runs
        # No commit checkpointed on its own: every frame was still waiting in the log.
        assert busy == 0 and frames > 1000 and done == frames
        size_before = wal.stat().st_size
        checkpointer.start()
        for _ in range(20):  # the log restarts from its beginning once caught up
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "y"})
            await asyncio.sleep(0.01)
        await checkpointer.stop()  # ends with TRUNCATE
        assert wal.stat().st_size == 0 < size_before
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 420
    finally:
        await engine.dispose()


async def test_stopping_mid_checkpoint_still_empties_the_log(tmp_path: Path):
    """A checkpoint still copying pages on its thread would make the final TRUNCATE return
    busy at once; stop() waits for it instead (this failed in CI before)."""
    path = tmp_path / "busy.sqlite3"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    wal = Path(f"{path}-wal")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            for _ in range(3000):  # a log big enough that copying it takes a while
                await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "x" * 4000})
        checkpointer = WalCheckpointer(engine.url, interval=0)
        checkpointer.start()
        while checkpointer._running is None:
            await asyncio.sleep(0)
        assert not checkpointer._running.done()  # stopping while it copies
        await checkpointer.stop()
        assert wal.stat().st_size == 0
    finally:
        await engine.dispose()


async def test_the_migrations_build_exactly_the_models_tables(database_url: str):
    """What Alembic made (on SQLite and PostgreSQL) is what the models declare: a model
    changed without its migration fails here."""
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(
                        sync,
                        opts={
                            "compare_type": True,
                            # the QA full-text index is no model table (hub.qa.search)
                            "include_name": lambda name, _type, _parents: (
                                not is_search_index_object(name)
                            ),
                        },
                    ),
                    SQLModel.metadata,
                )
            )
        assert diff == []
    finally:
        await engine.dispose()
