"""The ``qa.transcribe`` job: one recording in, one stored transcript out.

The handler gathers what the worker needs (the file, the legs' windows, the IVR's prompts,
the inbox's policy), hands it to the ``TranscriptionPool`` (another, lower-priority process)
and stores the result in one transaction: the segments (redacted text; the original text only
where the inbox keeps originals), the metrics, the status, and the recording's redacted copy.
A job that runs again (its process died) finds the transcript done and stores nothing twice;
one that was cut short before storing starts over, replacing any earlier attempt's segments
inside the same transaction. Only after that commit is the original audio deleted, so a crash
in between leaves it for the next attempt to delete, never a recording without audio.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete
from sqlmodel import col, select

from hub.events import interaction_topic
from hub.jobs import PermanentJobError
from hub.transcription.queueing import TRANSCRIBE_JOB
from hub.transcription.speakers import LegWindow, ivr_prompts
from hub.transcription.worker import Request, TranscriptionPool
from models import (
    Agent,
    CallLeg,
    CallLegKind,
    Inbox,
    Interaction,
    Recording,
    Transcript,
    TranscriptSegment,
    TranscriptStatus,
    User,
    utcnow,
)

if TYPE_CHECKING:
    from hub.jobs import ClaimedJob, JobRunner
    from hub.services import Services

log = logging.getLogger(__name__)
TRANSCRIPT_EVENT = "transcript-status"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def redacted_name(path: str) -> str:
    """``recordings/12-3.wav`` → ``recordings/12-3.redacted.wav``."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}.redacted{p.suffix or '.wav'}"))


class CallTranscriber:
    """Runs ``qa.transcribe`` jobs through a pool of niced worker processes."""

    def __init__(self, services: Services, pool: TranscriptionPool | None = None) -> None:
        self.services = services
        settings = services.settings
        self.pool = pool or TranscriptionPool(
            workers=settings.qa_transcribe_workers,
            nice=settings.qa_transcribe_nice,
            idle=settings.qa_transcribe_idle,
        )

    def register(self, runner: JobRunner) -> None:
        runner.register(TRANSCRIBE_JOB, self.run_job)

    async def close(self) -> None:
        await self.pool.close()

    async def run_job(self, job: ClaimedJob) -> None:
        recording_id = int(job.payload["recording_id"])
        try:
            await self.transcribe(recording_id)
        except Exception as exc:
            final = job.last_attempt or isinstance(exc, PermanentJobError)
            reason = str(exc) or type(exc).__name__
            if final:
                reason = f"failed after {job.attempts} attempt(s): {reason}"
            else:
                reason = f"attempt {job.attempts} failed, retrying: {reason}"
            status = TranscriptStatus.FAILED if final else TranscriptStatus.QUEUED
            await self._set_status(recording_id, status, reason[:500])
            raise

    async def _set_status(self, recording_id: int, status: str, error: str | None) -> None:
        async with self.services.sessionmaker() as db:
            transcript = (
                await db.exec(select(Transcript).where(Transcript.recording_id == recording_id))
            ).first()
            if transcript is None or transcript.status == TranscriptStatus.DONE:
                return
            transcript.status = status
            transcript.error = error
            if status == TranscriptStatus.FAILED:
                transcript.finished_at = utcnow()
            db.add(transcript)
            await db.commit()
            interaction_id = transcript.interaction_id
        await self._publish(interaction_id, status)

    async def _publish(self, interaction_id: int, status: str) -> None:
        await self.services.bus.publish(
            interaction_topic(interaction_id), TRANSCRIPT_EVENT, status=str(status)
        )

    async def transcribe(self, recording_id: int) -> bool:
        """Transcribe one recording; False when there was nothing (left) to do."""
        var_dir = self.services.settings.var_dir
        async with self.services.sessionmaker() as db:
            recording = await db.get(Recording, recording_id)
            if recording is None:
                raise PermanentJobError(f"recording {recording_id} does not exist")
            transcript = (
                await db.exec(select(Transcript).where(Transcript.recording_id == recording_id))
            ).first()
            if transcript is None:
                transcript = Transcript(
                    interaction_id=recording.interaction_id, recording_id=recording_id
                )
            interaction = await db.get(Interaction, recording.interaction_id)
            assert interaction is not None
            inbox = await db.get(Inbox, interaction.inbox_id)
            keep = bool(inbox and inbox.keep_original_audio)
            if transcript.status == TranscriptStatus.DONE:
                self._drop_original(var_dir, recording)  # a crash right after storing
                return False
            transcript.status = TranscriptStatus.RUNNING
            transcript.error = None
            db.add(transcript)
            await db.commit()
            windows = await self._windows(db, recording)
        await self._publish(recording.interaction_id, TranscriptStatus.RUNNING)

        source = recording.original_path if recording.redacted else recording.path
        if not source or not (var_dir / source).is_file():
            raise PermanentJobError("the recording's audio file is missing")
        target = redacted_name(source)
        request = Request(
            path=str(var_dir / source),
            redacted_path=str(var_dir / target),
            windows=windows,
            prompts=ivr_prompts(interaction.data),
            margin_ms=self.services.settings.qa_redaction_margin_ms,
            silence_seconds=self.services.settings.qa_silence_seconds,
            region=self.services.settings.default_region,
        )
        result = await self.pool.analyse(request)
        await self._store(recording_id, result, source, target, keep)
        async with self.services.sessionmaker() as db:
            stored = await db.get(Recording, recording_id)
            assert stored is not None
            self._drop_original(var_dir, stored)
        await self._publish(recording.interaction_id, TranscriptStatus.DONE)
        return True

    async def _windows(self, db: Any, recording: Recording) -> list[LegWindow]:
        """The non-customer legs heard on the recording, in seconds from its start."""
        legs = (
            await db.exec(
                select(CallLeg).where(
                    CallLeg.interaction_id == recording.interaction_id,
                    CallLeg.kind != CallLegKind.CUSTOMER,
                    col(CallLeg.answered_at).is_not(None),
                )
            )
        ).all()
        started = _aware(recording.started_at)
        windows = []
        for leg in legs:
            name = ""
            if leg.agent_id is not None:
                agent = await db.get(Agent, leg.agent_id)
                user = await db.get(User, agent.user_id) if agent else None
                name = user.display_name if user else ""
            end = (
                (_aware(leg.ended_at) - started).total_seconds()
                if leg.ended_at is not None
                else float("inf")
            )
            windows.append(
                LegWindow(
                    kind=leg.kind,
                    start=(_aware(leg.answered_at) - started).total_seconds(),
                    end=end,
                    agent_id=leg.agent_id,
                    name=name,
                )
            )
        return windows

    async def _store(
        self, recording_id: int, result: dict[str, Any], source: str, target: str, keep: bool
    ) -> None:
        """Segments, metrics, status and the recording's redacted copy, in one transaction."""
        async with self.services.sessionmaker() as db:
            recording = await db.get(Recording, recording_id)
            transcript = (
                await db.exec(select(Transcript).where(Transcript.recording_id == recording_id))
            ).first()
            assert recording is not None
            if transcript is None:
                transcript = Transcript(
                    interaction_id=recording.interaction_id, recording_id=recording_id
                )
                db.add(transcript)
                await db.flush()
            if transcript.status == TranscriptStatus.DONE:
                return  # another attempt stored it first
            await db.exec(
                delete(TranscriptSegment).where(
                    col(TranscriptSegment.transcript_id) == transcript.id
                )
            )
            for seg in result["segments"]:
                db.add(
                    TranscriptSegment(
                        transcript_id=transcript.id,  # type: ignore[arg-type]
                        interaction_id=recording.interaction_id,
                        speaker=seg["speaker"],
                        agent_id=seg.get("agent_id"),
                        start_ms=seg["start_ms"],
                        end_ms=seg["end_ms"],
                        text=seg["text"],
                        original_text=seg["original_text"] if keep else None,
                        words=seg["words"],
                        sentiment=seg.get("sentiment"),
                    )
                )
            transcript.status = TranscriptStatus.DONE
            transcript.error = None
            transcript.language = result.get("language") or "en"
            transcript.metrics = result["metrics"]
            transcript.finished_at = utcnow()
            db.add(transcript)
            recording.path = target
            recording.redacted = True
            recording.original_path = source if keep else None
            db.add(recording)
            await db.commit()

    @staticmethod
    def _drop_original(var_dir: Path, recording: Recording) -> None:
        """Under the default policy the original audio goes once the redacted copy is stored."""
        if not recording.redacted or recording.original_path is not None:
            return
        original = Path(recording.path).with_name(
            Path(recording.path).name.replace(".redacted", "", 1)
        )
        path = var_dir / original
        if original != Path(recording.path) and path.is_file():
            path.unlink()
            log.info("recording %s: original audio deleted after redaction", recording.id)
