"""Database engine, sessions and migrations, the same for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.tasks import cancel_and_wait

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the one writer; busy_timeout waits instead of failing.

    No automatic checkpoints: SQLite would run one inside whichever commit crosses the
    threshold, fsync included, stalling that writer (and every writer queued behind it)
    for 100–500 ms. ``WalCheckpointer`` does that work on its own connection instead.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)


def make_sync_sqlite_engine(url: str | URL) -> Engine:
    """A plain pysqlite engine on the same file, for batch writers that run in a thread."""
    sync_url = make_url(url).set(drivername="sqlite")
    engine = create_engine(sync_url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


_WRITERS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def writer_lock(engine: Engine) -> asyncio.Lock:
    """The in-process queue for SQLite's one write lock (keyed by the async engine's sync
    engine). Writers of one process wait here rather than in SQLite's busy handler, which
    sleeps in steps of up to 100 ms."""
    return _WRITERS.setdefault(engine, asyncio.Lock())


class TransactionRunner:
    """Runs a synchronous unit of work in one write transaction, committed before it returns.

    On SQLite the work crosses to a thread once, on a plain pysqlite connection, holding
    the write lock from the start (``BEGIN IMMEDIATE``): aiosqlite would cross threads for
    every cursor call. On PostgreSQL it runs through the async session (``run_sync``).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessionmaker = make_sessionmaker(engine)
        self._sqlite = (
            make_sync_sqlite_engine(engine.url) if engine.dialect.name == "sqlite" else None
        )
        # SQLite's one writer gets a thread of its own: in the loop's default executor it
        # queued behind speech work and WAL checkpoints while holding the writer lock, and
        # every other writer of the process waited for it.
        self._writer: ThreadPoolExecutor | None = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
            if self._sqlite is not None
            else None
        )

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        if self._sqlite is not None:
            async with writer_lock(self._engine.sync_engine):
                context = contextvars.copy_context()  # as asyncio.to_thread does
                return await asyncio.get_running_loop().run_in_executor(
                    self._writer, context.run, self._run_sqlite, work, args
                )
        async with self._sessionmaker() as db:
            result = await db.run_sync(work, *args)
            await db.commit()
            return result

    def _run_sqlite(self, work: Callable[..., T], args: tuple[Any, ...]) -> T:
        assert self._sqlite is not None
        with Session(self._sqlite, expire_on_commit=False) as db:
            db.connection().exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, up front
            result = work(db, *args)
            db.commit()
            return result

    def dispose(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        if self._sqlite is not None:
            self._sqlite.dispose()


class WalCheckpointer:
    """Copies the SQLite write-ahead log back into the database file in the background.

    A ``PASSIVE`` checkpoint never waits for readers or writers, and runs on a thread with
    its own connection, so no commit waits for its fsync (a write that overlaps one still
    runs 2-3x slower, measured in bench/README.md); SQLite restarts the log from the
    beginning once a checkpoint has caught up, which keeps the file bounded. On close, a
    ``TRUNCATE`` checkpoint leaves the log empty.
    """

    def __init__(self, url: str | URL, *, interval: float = 1.0) -> None:
        self._path = make_url(url).database or ""
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._running: asyncio.Future[tuple[int, int, int]] | None = None

    def start(self) -> None:
        if self._task is None and self._path not in ("", ":memory:"):
            self._task = asyncio.create_task(self._run(), name="wal-checkpoint")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            # Shielded: cancelling the task must not orphan a checkpoint that is still
            # running on its thread; stop() waits for it (see there).
            self._running = asyncio.ensure_future(asyncio.to_thread(self.checkpoint, "PASSIVE"))
            try:
                await asyncio.shield(self._running)
            except sqlite3.Error as exc:  # busy or locked: the next round catches up
                log.debug("WAL checkpoint skipped: %s", exc)

    def checkpoint(self, mode: str, *, timeout: float = 30.0) -> tuple[int, int, int]:
        """(busy, frames in the log, frames checkpointed), as SQLite reports them."""
        with contextlib.closing(sqlite3.connect(self._path, timeout=timeout)) as connection:
            return connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()

    async def stop(self) -> None:
        """Stop, then empty the log if that can be done at once.

        Only one checkpoint runs at a time: one started while another is still copying
        pages returns busy at once and leaves the log as it was, so the final ``TRUNCATE``
        first waits for the last ``PASSIVE``. ``TRUNCATE`` also waits for readers that
        still hold a snapshot (a connection something else has not closed yet); that wait
        is kept short, since a log left behind loses nothing: the next start's
        checkpoints copy it.
        """
        if self._task is None:
            return
        await cancel_and_wait(self._task)
        self._task = None
        if self._running is not None:
            with contextlib.suppress(sqlite3.Error):
                await self._running
            self._running = None
        for _ in range(5):
            try:
                busy, _, _ = await asyncio.to_thread(self.checkpoint, "TRUNCATE", timeout=0.5)
            except sqlite3.Error as exc:
                log.warning("final WAL checkpoint failed: %s", exc)
                return
            if not busy:
                return
            await asyncio.sleep(0.1)
        log.warning("final WAL checkpoint stayed busy; the next start copies the log")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Run Alembic migrations (blocking; call before the app starts, or in a thread)."""
    command.upgrade(alembic_config(url), revision)
