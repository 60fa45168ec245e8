"""Transcription jobs across processes: a hub killed mid-transcription resumes the job after
restart and stores the transcript once; two hub processes on PostgreSQL never run one
recording's job twice."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from pathlib import Path

import pytest
from sqlmodel import func, select

from hub.services import Services
from models import Job, JobState, Transcript, TranscriptSegment, TranscriptStatus
from tests.hub.transcription.call_audio import Placed
from tests.hub.transcription.recorded import agent_named, recorded_call

ROOT = Path(__file__).resolve().parents[3]


async def start_worker(url: str, var_dir: Path, *options: str) -> asyncio.subprocess.Process:
    """A transcriber in its own process group (so its pool's worker dies with it)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.hub.transcription.transcribe_worker",
        url,
        str(var_dir),
        *options,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert await read_line(process) == "ready"
    return process


async def read_line(process: asyncio.subprocess.Process, timeout: float = 120) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), timeout)).decode().strip()


async def stop_worker(process: asyncio.subprocess.Process) -> list[str]:
    """Stop it cleanly; returns what it printed after the lines already read."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    return out.decode().split()


async def until_status(services: Services, recording_id: int, *wanted: str) -> Transcript:
    for _ in range(3000):
        async with services.sessionmaker() as db:
            t = (
                await db.exec(select(Transcript).where(Transcript.recording_id == recording_id))
            ).one()
        if t.status in wanted:
            return t
        await asyncio.sleep(0.05)
    raise AssertionError(f"recording {recording_id} never reached {wanted}")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_hub_killed_mid_transcription_resumes_and_stores_the_transcript_once(
    services: Services, short_call: tuple[Path, list[Placed]], database_url: str
) -> None:
    wav, placed = short_call
    agent_id, _ = await agent_named(services, "carol")
    recording_id = await recorded_call(services, wav, placed, agent_id=agent_id)
    var_dir = services.settings.var_dir
    first = await start_worker(database_url, var_dir, "--lease", "2")
    try:
        assert (await read_line(first)).startswith("start ")
        await until_status(services, recording_id, TranscriptStatus.RUNNING)
        await asyncio.sleep(0.5)  # into the worker process's transcription
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the hub and its transcription worker
        await first.wait()
    async with services.sessionmaker() as db:
        job = (await db.exec(select(Job).where(Job.kind == "qa.transcribe"))).one()
        assert job.state == JobState.RUNNING and job.attempts == 1  # held by the dead one
    second = await start_worker(database_url, var_dir, "--lease", "2")
    try:
        transcript = await until_status(
            services, recording_id, TranscriptStatus.DONE, TranscriptStatus.FAILED
        )
    finally:
        printed = await stop_worker(second)
    assert transcript.status == TranscriptStatus.DONE, transcript.error
    assert printed.count("ran") == 1
    async with services.sessionmaker() as db:
        transcripts = (await db.exec(select(func.count()).select_from(Transcript))).one()
        segments = (
            await db.exec(
                select(TranscriptSegment.speaker)
                .where(TranscriptSegment.transcript_id == transcript.id)
                .order_by(TranscriptSegment.start_ms)
            )
        ).all()
        job = (await db.exec(select(Job).where(Job.kind == "qa.transcribe"))).one()
    assert transcripts == 1
    assert list(segments) == ["agent", "customer"]  # stored once, not once per attempt
    assert job.state == JobState.DONE and job.attempts == 2


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_hub_processes_never_transcribe_one_recording_twice(
    services: Services, short_call: tuple[Path, list[Placed]], database_url: str
) -> None:
    wav, placed = short_call
    var_dir = services.settings.var_dir
    workers = [await start_worker(database_url, var_dir) for _ in range(2)]
    agent_id, _ = await agent_named(services, "dave")
    try:
        recordings = [
            await recorded_call(services, wav, placed, agent_id=agent_id, name=f"pg{i}")
            for i in range(3)
        ]
        for recording_id in recordings:
            transcript = await until_status(
                services, recording_id, TranscriptStatus.DONE, TranscriptStatus.FAILED
            )
            assert transcript.status == TranscriptStatus.DONE, transcript.error
    finally:
        printed = [await stop_worker(w) for w in workers]
    ran = [word for out in printed for word in out]
    async with services.sessionmaker() as db:
        jobs = (await db.exec(select(Job).where(Job.kind == "qa.transcribe"))).all()
    assert len(jobs) == 3
    for job in jobs:
        assert job.state == JobState.DONE and job.attempts == 1
        runs = sum(
            1
            for out in printed
            for a, b in itertools.pairwise(out)
            if (a, b) == ("ran", str(job.id))
        )
        assert runs == 1, ran
