"""Background jobs: rows in the hub's own database, run by one runner for every kind.

Whatever creates work writes the job in its own transaction (``enqueue`` only adds a row to
the caller's session), so a rollback takes the job with it and a commit makes it durable:
no job is lost to a crash between "saved" and "queued", and none runs for work that never
happened.

The runner claims due jobs of the kinds it has handlers for and runs them, a few at a time:

- **Claiming.** One ``UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING`` marks the
  jobs running with this runner's token and a lease (``locked_until``). On PostgreSQL the
  inner select is ``FOR UPDATE SKIP LOCKED``, so several hub processes share the work and
  never claim one job twice; on SQLite the statement runs in a write transaction, which
  SQLite grants to one writer at a time.
- **Leases.** The runner renews the leases of the jobs it is running. A job whose lease
  ran out belongs to a process that died: it is claimed again, as a further attempt.
- **Attempts.** A handler that raises is retried after ``retry_seconds * 2**(attempt-1)``
  (capped), until ``max_attempts``; then the job is failed, its last error kept.
  ``PermanentJobError`` fails it at once.
- **Waking.** The runner looks for due jobs every ``poll_seconds`` (``HUB_JOBS_POLL_SECONDS``),
  and at once when a job is committed in this process or one of its jobs finishes.

Delivery is at least once: a handler whose process dies mid-run runs again, so handlers
must be idempotent (check whether the work is already done).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import traceback
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import TransactionRunner
from hub.tasks import cancel_and_wait
from models import Job, JobState, utcnow

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 5
_job = Job.__table__  # type: ignore[attr-defined]  # core statements: no ORM bookkeeping
_ENQUEUED = "hub.jobs.enqueued"  # Session.info flag: this transaction added jobs


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help: the job fails at once."""


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """What a handler gets: the job as claimed, ``attempts`` counting this one."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int

    @property
    def last_attempt(self) -> bool:
        """True when a failure now fails the job for good (no retry follows)."""
        return self.attempts >= self.max_attempts


JobHandler = Callable[[ClaimedJob], Awaitable[None]]


def enqueue(
    db: Session | AsyncSession,
    kind: str,
    payload: Mapping[str, Any],
    run_at: datetime | None = None,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Job:
    """Add a job to the caller's transaction; it exists once, and only if, that commits.

    Nothing is flushed or committed here. Runners in this process wake after the commit.
    """
    if max_attempts < 1:
        raise ValueError("a job needs at least one attempt")
    job = Job(
        kind=kind,
        payload=dict(payload),
        run_at=run_at or utcnow(),
        max_attempts=max_attempts,
    )
    db.add(job)
    sync = db.sync_session if isinstance(db, AsyncSession) else db
    sync.info[_ENQUEUED] = True
    return job


# Every started runner of this process; a commit that added jobs wakes them all (waking a
# runner of another database only costs it one look at its table). Commits happen on
# worker threads too (SQLite's writer), hence the lock.
_RUNNERS: weakref.WeakSet[JobRunner] = weakref.WeakSet()
_RUNNERS_LOCK = threading.Lock()


@event.listens_for(OrmSession, "after_commit")
def _wake_runners(session: OrmSession) -> None:
    if session.info.pop(_ENQUEUED, False):
        with _RUNNERS_LOCK:
            runners = list(_RUNNERS)
        for runner in runners:
            runner.wake()


@event.listens_for(OrmSession, "after_rollback")
def _forget_enqueued(session: OrmSession) -> None:
    session.info.pop(_ENQUEUED, None)


def _aware(value: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; the hub stores UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class JobRunner:
    """Claims and runs due jobs for the kinds registered with ``register``."""

    def __init__(
        self,
        engine: AsyncEngine,
        transactions: TransactionRunner,
        *,
        poll_seconds: float = 1.0,
        lease_seconds: float = 300.0,
        concurrency: int = 4,
        retry_seconds: float = 10.0,
        max_retry_seconds: float = 3600.0,
        stop_timeout: float = 5.0,
        name: str = "hub",
    ) -> None:
        self._engine = engine
        self._transactions = transactions
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.concurrency = max(1, concurrency)
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.stop_timeout = stop_timeout
        self.token = f"{name[:48]}-{secrets.token_hex(6)}"  # fits Job.locked_by
        self._handlers: dict[str, JobHandler] = {}
        self._running: dict[int, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._renewed_at = 0.0

    def register(self, kind: str, handler: JobHandler) -> None:
        """Run jobs of ``kind`` with ``handler`` (an async function of a ``ClaimedJob``)."""
        if len(kind) > 64:
            raise ValueError(f"job kind {kind!r} is longer than 64 characters")
        self._handlers[kind] = handler
        self.wake()

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    async def start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="job-runner")
        with _RUNNERS_LOCK:
            _RUNNERS.add(self)

    async def stop(self) -> None:
        """Stop claiming; give running jobs ``stop_timeout`` to finish, then hand the rest
        back as pending (the interrupted attempt does not count)."""
        if self._task is None:
            return
        with _RUNNERS_LOCK:
            _RUNNERS.discard(self)
        await cancel_and_wait(self._task)
        self._task = None
        running = list(self._running.values())
        if running:
            await asyncio.wait(running, timeout=self.stop_timeout)
            await cancel_and_wait(*running)
        try:
            await self._transactions.run(self._release)
        except Exception:  # the database is gone: the leases run out instead
            log.exception("could not hand back the jobs this runner held")

    def wake(self) -> None:
        """Look for due jobs now. Safe from any thread (SQLite commits on a worker thread)."""
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            loop.call_soon_threadsafe(wakeup.set)

    async def run_due(self) -> int:
        """Claim what is due now, up to the free slots, and start it; returns how many."""
        free = self.concurrency - len(self._running)
        if free <= 0 or not self._handlers:
            return 0
        claimed = await self._transactions.run(self._claim, self.kinds, free)
        if claimed and not self._running:
            self._renewed_at = asyncio.get_running_loop().time()  # leases fresh from the claim
        for job in claimed:
            task = asyncio.create_task(self._execute(job), name=f"job-{job.id}-{job.kind}")
            self._running[job.id] = task
        return len(claimed)

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            self._wakeup.clear()
            wait = self.poll_seconds
            try:
                await self._renew_leases(loop.time())
                if self._handlers and len(self._running) < self.concurrency:
                    due_in = await self._next_due_in()
                    if due_in is not None and due_in <= 0:
                        if await self.run_due():
                            continue  # more may be due; a full runner waits for a finish
                        # due but not ours to take (another process is claiming it): poll
                    elif due_in is not None:
                        wait = min(wait, due_in)
                if self._running:
                    wait = min(wait, self.lease_seconds / 3)
            except Exception:  # the database is unreachable: try again at the next poll
                log.exception("job runner: looking for due jobs failed")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # lands as the wake-up does (a job finishing while stop() cancels), and the loop
            # then never ends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()

    async def _next_due_in(self) -> float | None:
        """Seconds until the next job of ours is due (<= 0: now), None when there is none.

        A read, so an idle hub takes no write lock when it polls.
        """
        due = sa.case((_job.c.state == JobState.PENDING, _job.c.run_at), else_=_job.c.locked_until)
        query = sa.select(sa.func.min(due)).where(
            _job.c.kind.in_(self.kinds),
            _job.c.state.in_([JobState.PENDING, JobState.RUNNING]),
            _job.c.locked_by.is_distinct_from(self.token),
        )
        async with self._engine.connect() as conn:
            next_at = (await conn.execute(query)).scalar()
        if next_at is None:
            return None
        if isinstance(next_at, str):  # SQLite: CASE loses the column's type
            next_at = datetime.fromisoformat(next_at)
        return (_aware(next_at) - utcnow()).total_seconds()

    async def _renew_leases(self, now: float) -> None:
        if not self._running or now - self._renewed_at < self.lease_seconds / 3:
            return
        self._renewed_at = now
        await self._transactions.run(self._renew)

    async def _execute(self, job: ClaimedJob) -> None:
        try:
            handler = self._handlers[job.kind]
            await handler(job)
        except asyncio.CancelledError:
            raise  # stop(): the job is handed back
        except Exception as exc:
            log.warning("job %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempts, exc)
            await self._record(job, exc)
        else:
            await self._record(job, None)
        finally:
            self._running.pop(job.id, None)
            self.wake()  # a slot is free

    async def _record(self, job: ClaimedJob, error: Exception | None) -> None:
        try:
            kept = await self._transactions.run(self._finish, job, error)
        except Exception:  # the lease runs out and the job runs again
            log.exception("could not record the outcome of job %s", job.id)
            return
        if not kept:
            log.warning("job %s finished after its lease passed to another runner", job.id)

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: doubling from ``retry_seconds``."""
        return min(self.retry_seconds * 2 ** max(0, attempts - 1), self.max_retry_seconds)

    # ------------------------------------------------------------------ statements

    def _claim(self, db: Session, kinds: list[str], limit: int) -> list[ClaimedJob]:
        """Claim up to ``limit`` due jobs (in one write transaction, see the module doc)."""
        now = utcnow()
        conn = db.connection()
        expired = sa.and_(_job.c.state == JobState.RUNNING, _job.c.locked_until < now)
        # A job whose process died on its last attempt has none left: fail it. (SKIP LOCKED
        # here too: two processes sweeping the same rows must not wait on each other.)
        exhausted = (
            sa.select(_job.c.id)
            .where(_job.c.kind.in_(kinds), expired, _job.c.attempts >= _job.c.max_attempts)
            .with_for_update(skip_locked=True)
        )
        conn.execute(
            _job.update()
            .where(_job.c.id.in_(exhausted.scalar_subquery()))
            .values(
                state=JobState.FAILED,
                finished_at=now,
                locked_by=None,
                locked_until=None,
                last_error="the process running its last attempt stopped before it finished",
            )
        )
        due = (
            sa.select(_job.c.id)
            .where(
                _job.c.kind.in_(kinds),
                sa.or_(sa.and_(_job.c.state == JobState.PENDING, _job.c.run_at <= now), expired),
                _job.c.attempts < _job.c.max_attempts,
            )
            .order_by(_job.c.run_at, _job.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer anyway
        )
        rows = conn.execute(
            _job.update()
            .where(_job.c.id.in_(due.scalar_subquery()))
            .values(
                state=JobState.RUNNING,
                locked_by=self.token,
                locked_until=now + timedelta(seconds=self.lease_seconds),
                attempts=_job.c.attempts + 1,
            )
            .returning(_job.c.id, _job.c.kind, _job.c.payload, _job.c.attempts, _job.c.max_attempts)
        ).all()
        return sorted((ClaimedJob(*row) for row in rows), key=lambda job: job.id)

    def _renew(self, db: Session) -> None:
        db.connection().execute(
            _job.update()
            .where(_job.c.locked_by == self.token, _job.c.state == JobState.RUNNING)
            .values(locked_until=utcnow() + timedelta(seconds=self.lease_seconds))
        )

    def _finish(self, db: Session, job: ClaimedJob, error: Exception | None) -> bool:
        """Record the attempt's outcome, if this runner still holds the job."""
        now = utcnow()
        values: dict[str, Any] = {"locked_by": None, "locked_until": None}
        if error is None:
            values |= {"state": JobState.DONE, "finished_at": now}
        else:
            text = "".join(traceback.format_exception_only(error)).strip()
            values["last_error"] = f"attempt {job.attempts}: {text}"[:4000]
            if job.last_attempt or isinstance(error, PermanentJobError):
                values |= {"state": JobState.FAILED, "finished_at": now}
            else:
                delay = timedelta(seconds=self.backoff(job.attempts))
                values |= {"state": JobState.PENDING, "run_at": now + delay}
        result = db.connection().execute(
            _job.update()
            .where(
                _job.c.id == job.id,
                _job.c.locked_by == self.token,
                _job.c.state == JobState.RUNNING,
            )
            .values(**values)
        )
        return result.rowcount == 1

    def _release(self, db: Session) -> None:
        """Hand back the jobs this runner still holds, as if never claimed."""
        db.connection().execute(
            _job.update()
            .where(_job.c.locked_by == self.token, _job.c.state == JobState.RUNNING)
            .values(
                state=JobState.PENDING,
                locked_by=None,
                locked_until=None,
                attempts=_job.c.attempts - 1,
            )
        )
