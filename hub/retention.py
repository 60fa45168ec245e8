"""Retention: recordings and voicemail audio older than ``HUB_RETENTION_DAYS`` are deleted.

A ``retention.sweep`` job of the job runner does it, then schedules the next sweep
``HUB_RETENTION_INTERVAL_SECONDS`` later in the same transaction, so exactly one sweep is
pending however many hub processes run. Each deleted file is audited (``hub.audit``,
action ``recording.deleted``) with what it was; the ``Recording`` row stays, marked
``deleted_at``, so transcripts and reports keep their references and the player says the
audio was deleted (410). ``HUB_RETENTION_DAYS=0`` (the default) keeps everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import col, select

from hub import audit
from hub.jobs import enqueue
from hub.routing.work import write_lock
from models import Job, JobState, Recording, Voicemail, utcnow

if TYPE_CHECKING:
    from hub.jobs import ClaimedJob, JobRunner
    from hub.services import Services

log = logging.getLogger(__name__)
SWEEP_JOB = "retention.sweep"
BATCH = 200


class Retention:
    def __init__(self, services: Services) -> None:
        self.services = services

    @property
    def enabled(self) -> bool:
        return self.services.settings.retention_days > 0

    def register(self, runner: JobRunner) -> None:
        runner.register(SWEEP_JOB, self.run_job)

    async def schedule(self) -> None:
        """At start: make sure one sweep is pending (or running)."""
        if not self.enabled:
            return
        async with self.services.sessionmaker() as db:
            await write_lock(db)
            if not await self._pending(db, None):
                enqueue(db, SWEEP_JOB, {})
                await db.commit()

    @staticmethod
    async def _pending(db: object, but: int | None) -> bool:
        query = select(Job.id).where(
            Job.kind == SWEEP_JOB, col(Job.state).in_([JobState.PENDING, JobState.RUNNING])
        )
        if but is not None:
            query = query.where(Job.id != but)
        return (await db.exec(query)).first() is not None  # type: ignore[attr-defined]

    async def run_job(self, job: ClaimedJob) -> None:
        await self.sweep()
        settings = self.services.settings
        async with self.services.sessionmaker() as db:
            await write_lock(db)
            if self.enabled and not await self._pending(db, job.id):
                later = utcnow() + timedelta(seconds=settings.retention_interval_seconds)
                enqueue(db, SWEEP_JOB, {}, later)
                await db.commit()

    async def sweep(self) -> int:
        """Delete the audio of every recording older than the retention; returns how many."""
        if not self.enabled:
            return 0
        settings = self.services.settings
        cutoff = utcnow() - timedelta(days=settings.retention_days)
        var_dir = settings.var_dir.resolve()
        deleted = 0
        while True:
            async with self.services.sessionmaker() as db:
                rows = (
                    await db.exec(
                        select(Recording)
                        .where(
                            col(Recording.deleted_at).is_(None),
                            col(Recording.complete).is_(True),
                            Recording.started_at < cutoff,
                        )
                        .limit(BATCH)
                    )
                ).all()
                if not rows:
                    return deleted
                voicemail_ids = set(
                    (
                        await db.exec(
                            select(Voicemail.recording_id).where(
                                col(Voicemail.recording_id).in_([r.id for r in rows])
                            )
                        )
                    ).all()
                )
                for recording in rows:
                    # the played copy, and the unredacted original if the inbox kept it
                    for relative in filter(None, (recording.path, recording.original_path)):
                        path = (var_dir / relative).resolve()
                        if path.is_relative_to(var_dir):
                            with contextlib.suppress(FileNotFoundError):
                                await asyncio.to_thread(Path.unlink, path)
                    before = audit.snapshot(recording)
                    recording.deleted_at = utcnow()
                    db.add(recording)
                    audit.record(
                        db,
                        user_id=None,
                        action="recording.deleted",
                        entity="recording",
                        entity_id=recording.id,
                        before=before,
                        after={
                            "reason": f"retention: older than {settings.retention_days:g} days",
                            "voicemail": recording.id in voicemail_ids,
                            "interaction_id": recording.interaction_id,
                        },
                    )
                    deleted += 1
                await db.commit()
            log.info("retention deleted %d recordings", deleted)
