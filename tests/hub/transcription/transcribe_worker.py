"""A hub process's call transcriber on its own, as a second (or restarted) hub runs it.

``python -m tests.hub.transcription.transcribe_worker URL VAR_DIR [--lease S]``

It runs the real ``qa.transcribe`` handler (``CallTranscriber``, with its niced worker
pool) in the hub's job runner, and prints ``start <job> <attempt>`` as it takes a job and
``ran <job>`` when the job's handler returned, so the test can count how often each job
ran and in which process. It prints ``ready`` once its runner has started and stops
cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from hub.events import make_backend, make_channels_plugin
from hub.jobs import ClaimedJob
from hub.services import Services
from hub.settings import Settings
from hub.transcription.queueing import TRANSCRIBE_JOB
from hub.transcription.service import CallTranscriber


async def main(url: str, var_dir: Path, lease: float) -> None:
    settings = Settings(
        var_dir=var_dir,
        database_url=url,
        jobs_lease_seconds=lease,
        jobs_poll_seconds=0.05,
        jobs_retry_seconds=0.1,
        qa_transcribe_idle=False,  # a shared, busy test machine would starve SCHED_IDLE
        qa_transcribe_nice=5,
    )
    plugin = make_channels_plugin(make_backend(""))
    await plugin._on_startup()
    services = Services.build(settings, plugin)
    transcriber = CallTranscriber(services)

    async def run_job(job: ClaimedJob) -> None:
        print(f"start {job.id} {job.attempts}", flush=True)
        await transcriber.run_job(job)
        print(f"ran {job.id}", flush=True)

    services.jobs.register(TRANSCRIBE_JOB, run_job)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await services.jobs.start()
    print("ready", flush=True)
    await stop.wait()
    await services.jobs.stop()
    await transcriber.close()
    await services.close()
    await plugin._on_shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("var_dir", type=Path)
    parser.add_argument("--lease", type=float, default=300.0)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.var_dir, args.lease))
