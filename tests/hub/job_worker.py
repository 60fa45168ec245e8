"""A job runner in a process of its own, as a second hub process runs it.

``python -m tests.hub.job_worker URL MODE [--lease S] [--poll S] [--concurrency N]``

- ``record``: runs ``test.record`` jobs by inserting a row into ``job_execution`` (created
  by the test), so the test can count how often each job ran and in which process;
- ``hang``: claims ``test.hang`` jobs, prints ``claimed <id>`` and never finishes them, so
  the test can kill the process with the jobs in hand.

It prints ``ready`` once its runner has started and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from sqlalchemy import text
from sqlmodel import Session

from hub.db import TransactionRunner, make_engine
from hub.jobs import ClaimedJob, JobRunner


async def main(url: str, mode: str, lease: float, poll: float, concurrency: int) -> None:
    engine = make_engine(url)
    transactions = TransactionRunner(engine)
    runner = JobRunner(
        engine,
        transactions,
        poll_seconds=poll,
        lease_seconds=lease,
        concurrency=concurrency,
        retry_seconds=0.05,
        name=f"worker-{os.getpid()}",
    )
    worker = f"pid-{os.getpid()}"

    def insert(db: Session, job_id: int) -> None:
        db.connection().execute(
            text("INSERT INTO job_execution (job_id, worker) VALUES (:job, :worker)"),
            {"job": job_id, "worker": worker},
        )

    async def record(job: ClaimedJob) -> None:
        await asyncio.sleep(0.005)  # a little work, so both processes hold jobs at once
        await transactions.run(insert, job.id)

    async def hang(job: ClaimedJob) -> None:
        print(f"claimed {job.id}", flush=True)
        await asyncio.Event().wait()

    if mode == "record":
        runner.register("test.record", record)
    else:
        runner.register("test.hang", hang)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await runner.start()
    print("ready", flush=True)
    await stop.wait()
    await runner.stop()
    transactions.dispose()
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("mode", choices=["record", "hang"])
    parser.add_argument("--lease", type=float, default=300.0)
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.mode, args.lease, args.poll, args.concurrency))
