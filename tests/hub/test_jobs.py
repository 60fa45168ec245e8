"""The job runner: jobs live and die with their transaction, are retried, survive a dead
process, and run once however many processes share them. On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import Session, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import TransactionRunner, make_engine, make_sessionmaker
from hub.jobs import ClaimedJob, JobRunner, PermanentJobError, enqueue
from hub.services import Services
from models import Contact, Job, JobState, utcnow

ROOT = Path(__file__).parents[2]


@dataclass
class Database:
    engine: AsyncEngine
    transactions: TransactionRunner
    sessionmaker: async_sessionmaker[AsyncSession]
    url: str

    def runner(self, **options: Any) -> JobRunner:
        """A runner with the short timers tests use (production reads HUB_JOBS_*)."""
        settings = {"poll_seconds": 0.05, "lease_seconds": 30.0, "retry_seconds": 0.01}
        return JobRunner(self.engine, self.transactions, **(settings | options))

    async def jobs(self) -> list[Job]:
        async with self.sessionmaker() as db:
            return list((await db.exec(select(Job).order_by(col(Job.id)))).all())


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    engine = make_engine(database_url)
    transactions = TransactionRunner(engine)
    try:
        yield Database(engine, transactions, make_sessionmaker(engine), database_url)
    finally:
        transactions.dispose()
        await engine.dispose()


@contextlib.asynccontextmanager
async def running(runner: JobRunner) -> AsyncIterator[JobRunner]:
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def until(check: Callable[[], Awaitable[bool]], what: str, *, tries: int = 600) -> None:
    """Wait for ``check`` (bounded: the test fails, never hangs)."""
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def all_finished(database: Database, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        jobs = await database.jobs()
        return len(jobs) == count and all(j.state in (JobState.DONE, JobState.FAILED) for j in jobs)

    return check


async def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(database: Database):
    ran: list[str] = []

    async def note(job: ClaimedJob) -> None:
        ran.append(job.payload["what"])

    runner = database.runner()
    runner.register("test.note", note)
    async with running(runner):
        async with database.sessionmaker() as db:  # committed: the contact and its job
            db.add(Contact(name="Kept"))
            enqueue(db, "test.note", {"what": "kept"})
            await db.commit()
        async with database.sessionmaker() as db:  # written, then rolled back
            db.add(Contact(name="Dropped"))
            enqueue(db, "test.note", {"what": "rolled back"})
            await db.flush()
            await db.rollback()

        def fails_after_enqueue(db: Session) -> None:
            db.add(Contact(name="Also dropped"))
            enqueue(db, "test.note", {"what": "raised"})
            db.flush()
            raise RuntimeError("the work failed after writing its job")

        with pytest.raises(RuntimeError):  # the hub's one-hop write transactions
            await database.transactions.run(fails_after_enqueue)
        async with database.sessionmaker() as db:  # a last job, committed after the others
            enqueue(db, "test.note", {"what": "last"})
            await db.commit()
        await until(all_finished(database, 2), "the two committed jobs ran")
    assert sorted(ran) == ["kept", "last"]
    jobs = await database.jobs()
    assert [(j.payload["what"], j.state, j.attempts) for j in jobs] == [
        ("kept", JobState.DONE, 1),
        ("last", JobState.DONE, 1),
    ]
    async with database.sessionmaker() as db:
        names = (await db.exec(select(Contact.name))).all()
    assert names == ["Kept"]


async def test_a_failing_job_is_retried_then_failed_with_its_error(database: Database):
    seen: list[tuple[str, int]] = []

    async def flaky(job: ClaimedJob) -> None:
        name = job.payload["name"]
        seen.append((name, job.attempts))
        if name == "refused":
            raise PermanentJobError("the account does not exist")
        if name == "broken" or job.attempts < 2:
            raise RuntimeError(f"{name} broke on attempt {job.attempts}")

    runner = database.runner()
    runner.register("test.flaky", flaky)
    async with running(runner):
        async with database.sessionmaker() as db:
            enqueue(db, "test.flaky", {"name": "broken"}, max_attempts=3)
            enqueue(db, "test.flaky", {"name": "recovers"}, max_attempts=3)
            enqueue(db, "test.flaky", {"name": "refused"}, max_attempts=3)
            await db.commit()
        await until(all_finished(database, 3), "every job finished")
    broken, recovers, refused = await database.jobs()
    assert sorted(seen) == [
        ("broken", 1),
        ("broken", 2),
        ("broken", 3),
        ("recovers", 1),
        ("recovers", 2),
        ("refused", 1),
    ]
    assert (broken.state, broken.attempts) == (JobState.FAILED, 3)
    assert broken.last_error == "attempt 3: RuntimeError: broken broke on attempt 3"
    assert broken.finished_at is not None and broken.locked_by is None
    assert (recovers.state, recovers.attempts) == (JobState.DONE, 2)
    assert recovers.last_error == "attempt 1: RuntimeError: recovers broke on attempt 1"
    assert (refused.state, refused.attempts) == (JobState.FAILED, 1)
    assert refused.last_error is not None and "the account does not exist" in refused.last_error


async def test_a_failed_attempt_waits_for_its_backoff(database: Database):
    calls: list[int] = []

    async def failing(job: ClaimedJob) -> None:
        calls.append(job.attempts)
        raise RuntimeError("the mail server is down")

    runner = database.runner(retry_seconds=600.0)
    runner.register("test.mail", failing)
    async with running(runner):
        async with database.sessionmaker() as db:
            enqueue(db, "test.mail", {})
            await db.commit()

        async def retry_scheduled() -> bool:
            jobs = await database.jobs()
            return jobs[0].attempts == 1 and jobs[0].state == JobState.PENDING

        await until(retry_scheduled, "the first attempt failed")
        for _ in range(10):  # polls that find nothing due
            runner.wake()
            await asyncio.sleep(0.06)
    (job,) = await database.jobs()
    assert calls == [1]
    assert job.state == JobState.PENDING and job.locked_by is None
    assert job.last_error == "attempt 1: RuntimeError: the mail server is down"
    run_at = job.run_at if job.run_at.tzinfo else job.run_at.replace(tzinfo=utcnow().tzinfo)
    assert run_at - utcnow() > timedelta(seconds=500)  # 600 s after the failure


async def test_a_commit_wakes_the_runner_without_waiting_for_a_poll(database: Database):
    ran: list[int] = []

    async def note(job: ClaimedJob) -> None:
        ran.append(job.payload["n"])

    runner = database.runner(poll_seconds=3600.0)  # only a wake-up can start a job in time
    runner.register("test.note", note)
    async with running(runner):
        async with database.sessionmaker() as db:
            enqueue(db, "test.note", {"n": 1})
            await db.commit()
        await until(all_finished(database, 1), "the first job ran")  # now it sleeps an hour

        def write(db: Session) -> None:  # on SQLite: committed on a worker thread
            enqueue(db, "test.note", {"n": 2})

        await database.transactions.run(write)
        await until(all_finished(database, 2), "the job committed on the writer ran")
        async with database.sessionmaker() as db:
            enqueue(db, "test.note", {"n": 3})
            await db.commit()
        await until(all_finished(database, 3), "the job committed on a session ran")
    assert ran == [1, 2, 3]


async def test_jobs_of_a_kind_nobody_handles_wait_for_a_runner_that_does(database: Database):
    ran: list[str] = []

    async def note(job: ClaimedJob) -> None:
        ran.append(job.kind)

    first = database.runner()
    first.register("test.note", note)
    async with database.sessionmaker() as db:
        enqueue(db, "test.other", {})
        enqueue(db, "test.note", {})
        await db.commit()
    async with running(first):
        await until(lambda: _state_of(database, 1, JobState.DONE), "the handled kind ran")
    other, _handled = await database.jobs()
    assert (other.state, other.attempts) == (JobState.PENDING, 0)  # left for another runner
    second = database.runner()
    second.register("test.other", note)
    async with running(second):
        await until(lambda: _state_of(database, 0, JobState.DONE), "the other kind ran")
    assert ran == ["test.note", "test.other"]


async def _state_of(database: Database, index: int, state: JobState) -> bool:
    return (await database.jobs())[index].state == state


async def test_a_job_running_past_its_lease_keeps_it_while_its_process_lives(
    database: Database,
):
    """The runner renews the leases of the jobs it runs, so a long job (a long recording's
    transcription) is not taken over by another process as if its own had died."""
    release = asyncio.Event()
    ran: list[str] = []

    async def long_job(job: ClaimedJob) -> None:
        ran.append("first")
        await release.wait()

    async def other(job: ClaimedJob) -> None:
        ran.append("second")

    # Renewed every lease/3: a busy machine may stall the loop or the SQLite writer for a
    # few hundred ms, which a 0.3 s lease did not survive (seen: the job changed hands).
    lease = 1.5
    first = database.runner(lease_seconds=lease)
    first.register("test.long", long_job)
    second = database.runner(lease_seconds=lease)
    second.register("test.long", other)
    async with database.sessionmaker() as db:
        enqueue(db, "test.long", {})
        await db.commit()
    async with running(first):
        await until(lambda: _state_of(database, 0, JobState.RUNNING), "the first runner took it")
        (claimed,) = await database.jobs()
        assert claimed.locked_until is not None
        async with running(second):

            async def renewed_past_first_lease() -> bool:
                (job,) = await database.jobs()
                assert job.locked_by == claimed.locked_by, f"the job changed hands: {ran}"
                # locked_until = renewal time + lease: beyond this, the first lease has passed
                return job.locked_until > claimed.locked_until + timedelta(seconds=2 * lease)  # type: ignore[operator]

            await until(renewed_past_first_lease, "the lease was renewed")
            release.set()
            await until(all_finished(database, 1), "the long job finished")
    (job,) = await database.jobs()
    assert ran == ["first"]
    assert (job.state, job.attempts) == (JobState.DONE, 1)


async def test_the_hub_runs_jobs_between_start_and_close(services: Services):
    """``Services.start`` starts the runner with the hub; a kind registered by any part of
    the hub (here, after start) runs, and ``close`` stops it."""
    ran: list[int] = []

    async def note(job: ClaimedJob) -> None:
        ran.append(job.payload["n"])

    await services.start()
    assert services.jobs.poll_seconds == services.settings.jobs_poll_seconds
    services.jobs.register("test.note", note)
    async with services.sessionmaker() as db:
        job = enqueue(db, "test.note", {"n": 7})
        await db.commit()
        job_id = job.id

    async def done() -> bool:  # the hub schedules jobs of its own at start (reports, retention)
        async with services.sessionmaker() as db:
            row = await db.get(Job, job_id)
            return row is not None and row.state == JobState.DONE

    await until(done, "the hub ran the job")
    assert ran == [7]


# ---------------------------------------------------------------- other processes


async def start_worker(url: str, mode: str, *options: str) -> asyncio.subprocess.Process:
    """A runner in its own process (``tests.hub.job_worker``), started and ready."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.hub.job_worker",
        url,
        mode,
        *options,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert await read_line(process) == "ready"
    return process


async def read_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()


async def stop_worker(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 60)


async def test_a_job_whose_lease_expired_is_run_again(database: Database):
    """A process dies holding two jobs: the one with attempts left runs again elsewhere; the
    one that was on its last attempt is failed, saying why."""
    async with database.sessionmaker() as db:
        again = enqueue(db, "test.hang", {"name": "again"}, max_attempts=3)
        last = enqueue(db, "test.hang", {"name": "last"}, max_attempts=1)
        await db.commit()
        ids = {again.id, last.id}
    worker = await start_worker(database.url, "hang", "--lease", "0.5")
    try:
        claimed = {await read_line(worker), await read_line(worker)}
        assert claimed == {f"claimed {i}" for i in ids}
        worker.kill()  # SIGKILL: no clean-up, the leases just stop being renewed
        await worker.wait()
        held = await database.jobs()
        assert {j.state for j in held} == {JobState.RUNNING}
        dead_token = held[0].locked_by
        ran: list[tuple[str, int]] = []

        async def finish(job: ClaimedJob) -> None:
            ran.append((job.payload["name"], job.attempts))

        runner = database.runner()
        runner.register("test.hang", finish)
        async with running(runner):
            await until(all_finished(database, 2), "the dead process's jobs were taken over")
    finally:
        await stop_worker(worker)
    assert ran == [("again", 2)]
    again_row, last_row = await database.jobs()
    assert (again_row.state, again_row.attempts) == (JobState.DONE, 2)
    assert (last_row.state, last_row.attempts) == (JobState.FAILED, 1)
    assert last_row.last_error == "the process running its last attempt stopped before it finished"
    assert dead_token is not None and dead_token.startswith("worker-")


async def test_two_processes_share_200_jobs_and_run_each_once(database: Database):
    """Several hub processes on one database: SKIP LOCKED on PostgreSQL, the one writer on
    SQLite. Every execution is a row, so a job run twice would show."""
    async with database.engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE job_execution (job_id INTEGER NOT NULL, worker VARCHAR(32))")
        )
    workers = [await start_worker(database.url, "record") for _ in range(2)]
    try:
        async with database.sessionmaker() as db:
            for n in range(200):
                enqueue(db, "test.record", {"n": n})
            await db.commit()
        await until(all_finished(database, 200), "all 200 jobs ran", tries=2400)
    finally:
        codes = [await stop_worker(w) for w in workers]
    assert codes == [0, 0]
    jobs = await database.jobs()
    assert {(j.state, j.attempts) for j in jobs} == {(JobState.DONE, 1)}
    async with database.engine.connect() as conn:
        runs = (await conn.execute(text("SELECT job_id, worker FROM job_execution"))).all()
    assert sorted(job_id for job_id, _ in runs) == sorted(j.id for j in jobs)  # once each
    per_worker = {worker: sum(1 for _, w in runs if w == worker) for _, worker in runs}
    assert len(per_worker) == 2, per_worker  # both processes took part
