"""A recorded call is transcribed after hang-up, per speaker, redacted in text and audio.

The recording is Piper speech for both sides through 8 kHz μ-law, written by the hub's
stereo recorder; the call's database steps are the call service's own; the job runs in the
hub's job runner and its heavy part in a niced worker process.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import wave
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import col, select

from hub.services import Services
from hub.transcription.metrics import conversation_metrics
from hub.transcription.service import CallTranscriber
from hub.transcription.worker import TranscriptionPool, priority
from models import Job, JobState, Recording, Transcript, TranscriptSegment, TranscriptStatus
from tests.hub.transcription.call_audio import Placed
from tests.hub.transcription.recorded import agent_named, recorded_call

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def transcribed(services: Services, recording_id: int) -> Transcript:
    """Poll until the transcript settles (bounded: the test fails, never hangs)."""
    for _ in range(2400):
        async with services.sessionmaker() as db:
            t = (
                await db.exec(select(Transcript).where(Transcript.recording_id == recording_id))
            ).one()
        if t.status in (TranscriptStatus.DONE, TranscriptStatus.FAILED):
            return t
        await asyncio.sleep(0.1)
    raise AssertionError(f"recording {recording_id} was never transcribed")


def read_pcm(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        data = np.frombuffer(w.readframes(params.nframes), dtype="<i2")
    return data.reshape(-1, params.nchannels), params.framerate


def rms(pcm: np.ndarray, rate: int, channel: int, start: float, end: float) -> float:
    part = pcm[int(start * rate) : int(end * rate), channel].astype(np.float64)
    return float(np.sqrt(np.mean(part**2))) if len(part) else 0.0


def line(placed: list[Placed], words: str) -> Placed:
    return next(p for p in placed if words in p.text)


async def run_transcriber(services: Services, pool: TranscriptionPool) -> CallTranscriber:
    transcriber = CallTranscriber(services, pool)
    transcriber.register(services.jobs)
    await services.jobs.start()
    return transcriber


@sqlite_only
async def test_a_recorded_call_is_transcribed_per_speaker_and_redacted(
    services: Services,
    spoken_call: tuple[Path, list[Placed]],
    transcription_pool: TranscriptionPool,
) -> None:
    wav, placed = spoken_call
    agent_id, _agent_name = await agent_named(services, "alice")
    recording_id = await recorded_call(services, wav, placed, agent_id=agent_id)
    async with services.sessionmaker() as db:  # queued with the recording's completion
        queued = (
            await db.exec(select(Transcript).where(Transcript.recording_id == recording_id))
        ).one()
        assert queued.status == TranscriptStatus.QUEUED
        recording = await db.get(Recording, recording_id)
        assert recording is not None
        original = services.settings.var_dir / recording.path
    await run_transcriber(services, transcription_pool)
    try:
        transcript = await transcribed(services, recording_id)
    finally:
        await services.jobs.stop()
    assert transcript.status == TranscriptStatus.DONE, transcript.error
    async with services.sessionmaker() as db:
        segments = (
            await db.exec(
                select(TranscriptSegment)
                .where(TranscriptSegment.transcript_id == transcript.id)
                .order_by(col(TranscriptSegment.start_ms))
            )
        ).all()
        recording = await db.get(Recording, recording_id)
        assert recording is not None

    # per speaker, in order: the IVR's prompt, then agent and customer taking turns. A turn
    # may come as two segments (Piper's voice differs a little from run to run, and so
    # does where Whisper splits), so the checks read turns: one speaker's segments in a row.
    turns = [
        (speaker, " ".join(s.text for s in run))
        for speaker, run in itertools.groupby(segments, key=lambda s: s.speaker)
    ]
    assert [t[0] for t in turns] == [p.speaker for p in placed], turns
    assert all(s.agent_id == agent_id for s in segments if s.speaker == "agent")
    assert all(s.agent_id is None for s in segments if s.speaker != "agent")
    said_in = [text for _speaker, text in turns]
    assert "hold for the next agent" in said_in[0].lower()  # the IVR, not the agent
    assert "wonderful day" in said_in[-2].lower()
    assert "update my card" in said_in[2].lower()

    # each PII item redacted in the text (and in the word list), nothing original kept
    text = " ".join(s.text for s in segments)
    words = " ".join(w["w"] for s in segments for w in s.words)
    for said in (text, words):
        assert not re.search(r"smith", said, re.I)
        assert not re.search(r"\d", said), said
    assert "[NAME]" in said_in[2]
    assert re.search(r"\[(CARD|DIGITS|PHONE)\]", said_in[4]), said_in[4]
    assert "[PHONE]" in said_in[6]
    assert "[EMAIL]" in said_in[8]
    assert all(s.original_text is None for s in segments)

    # audio: the default policy keeps only the redacted copy
    assert recording.redacted and recording.original_path is None
    assert not original.exists()
    redacted_pcm, rate = read_pcm(services.settings.var_dir / recording.path)
    source_pcm, _ = read_pcm(wav)
    assert redacted_pcm.shape == source_pcm.shape
    # silence over each PII item, where the customer spoke it…
    for words_of, skip in (("four one one one", 0.7), ("two one two", 1.2), ("john dot", 0.6)):
        said = line(placed, words_of)
        assert rms(source_pcm, rate, 0, said.start + skip, said.end - 0.2) > 300
        assert rms(redacted_pcm, rate, 0, said.start + skip, said.end - 0.2) == 0.0
    # …and over every span the transcript says it silenced, which had speech before
    silenced = transcript.metrics["redaction"]["silenced"]
    assert {s["channel"] for s in silenced} >= {0}
    for span in silenced:
        start, end = span["start_ms"] / 1000, span["end_ms"] / 1000
        assert rms(redacted_pcm, rate, span["channel"], start, end) == 0.0
    # speech elsewhere is untouched: the agent's side, and the customer's non-PII words
    for said in placed:
        if said.speaker != "customer":
            assert rms(redacted_pcm, rate, 1, said.start, said.end) > 300
    for words_of in ("update my card", "Thanks, bye"):
        said = line(placed, words_of)
        end = said.end - 0.2
        start = end - 0.8
        assert rms(redacted_pcm, rate, 0, start, end) > 300

    # metrics: talk share of each side, the 3.6 s pause, pace, sentiment start → end
    m = transcript.metrics
    assert set(m["talk_share"]) == {"customer", "agent", "ivr"}
    assert abs(sum(m["talk_share"].values()) - 1.0) < 0.01
    pause_start, pause_end = line(placed, "two one two").end, line(placed, "email address").start
    assert any(
        s["start_ms"] <= pause_start * 1000 + 500 and s["end_ms"] >= pause_end * 1000 - 500
        for s in m["silences"]
    ), m["silences"]
    assert m["words_per_minute"]["agent"] > 60
    assert m["longest_monologue"]["speaker"] in ("customer", "agent", "ivr")
    assert m["sentiment"]["covered"] and m["sentiment"]["agent"]["end"] > 0.3  # "wonderful"
    async with services.sessionmaker() as db:
        job = (await db.exec(select(Job).where(Job.kind == "qa.transcribe"))).one()
    assert job.state == JobState.DONE and job.attempts == 1


@sqlite_only
async def test_keep_originals_policy_keeps_the_original_text_and_audio(
    services: Services,
    short_call: tuple[Path, list[Placed]],
    transcription_pool: TranscriptionPool,
) -> None:
    wav, placed = short_call
    agent_id, _ = await agent_named(services, "bob")
    recording_id = await recorded_call(
        services, wav, placed, agent_id=agent_id, keep_original_role="qa", name="kept"
    )
    await run_transcriber(services, transcription_pool)
    try:
        transcript = await transcribed(services, recording_id)
    finally:
        await services.jobs.stop()
    assert transcript.status == TranscriptStatus.DONE, transcript.error
    async with services.sessionmaker() as db:
        recording = await db.get(Recording, recording_id)
        segments = (
            await db.exec(
                select(TranscriptSegment).where(TranscriptSegment.transcript_id == transcript.id)
            )
        ).all()
    assert recording is not None and recording.original_path is not None
    assert (services.settings.var_dir / recording.original_path).is_file()
    assert (services.settings.var_dir / recording.path).is_file()
    assert [s.speaker for s in segments] == ["agent", "customer"]
    assert all(s.original_text for s in segments)


@sqlite_only
async def test_a_missing_audio_file_fails_the_transcript_with_the_reason(
    services: Services,
    short_call: tuple[Path, list[Placed]],
    transcription_pool: TranscriptionPool,
) -> None:
    wav, placed = short_call
    agent_id, _ = await agent_named(services, "bob")
    recording_id = await recorded_call(services, wav, placed, agent_id=agent_id, name="lost")
    async with services.sessionmaker() as db:
        recording = await db.get(Recording, recording_id)
        assert recording is not None
    (services.settings.var_dir / recording.path).unlink()
    await run_transcriber(services, transcription_pool)
    try:
        transcript = await transcribed(services, recording_id)
    finally:
        await services.jobs.stop()
    assert transcript.status == TranscriptStatus.FAILED
    assert transcript.error is not None and "audio file is missing" in transcript.error


async def test_workers_run_at_a_lower_priority() -> None:
    pool = TranscriptionPool(workers=1, nice=7, idle=True)
    try:
        seen = await pool.call(priority)
    finally:
        await pool.close()
    assert seen["pid"] != os.getpid()  # another process, not a thread of the hub's
    assert seen["nice"] >= os.getpriority(os.PRIO_PROCESS, 0) + 7 or seen["nice"] == 19
    assert seen["idle"]


def test_metrics_overtalk_and_monologue() -> None:
    def seg(speaker: str, start: int, end: int, text: str = "yes") -> dict:
        return {
            "speaker": speaker,
            "start_ms": start,
            "end_ms": end,
            "text": text,
            "words": [{"w": text, "start_ms": start, "end_ms": end}],
            "sentiment": 0.0,
        }

    m = conversation_metrics(
        [
            seg("agent", 0, 4000),
            seg("customer", 3000, 5000),  # starts while the agent talks: overtalk
            seg("agent", 9000, 10000),  # after a 4 s silence
            seg("agent", 10500, 15000),
        ],
        15.0,
    )
    assert m["overtalk_count"] == 1 and m["overtalk_seconds"] == 1.0
    assert m["silence_count"] == 1 and m["silences"][0] == {"start_ms": 5000, "end_ms": 9000}
    assert m["longest_monologue"] == {"speaker": "agent", "seconds": 6.0, "start_ms": 9000}
    assert m["talk_share"] == {"agent": 0.826, "customer": 0.174}
