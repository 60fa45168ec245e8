"""Erasing one contact's data on request, and the retention periods of QA data.

``erase_contact`` removes what the contact said and wrote, and what was judged about it:
recordings (rows and files, a kept original too), transcripts and their segments, messages
(with attachments no other message shares), the search index's rows, category tags and
evaluations. The interactions stay as empty shells (channel, queue, times), so reports keep
their counts, and the contact stays as a nameless row without identities. The audit entry
says who erased which contact and how many rows of each kind went, never what they said.

Retention: transcripts (with their index rows) and evaluations older than
``HUB_QA_TRANSCRIPT_RETENTION_DAYS`` / ``HUB_QA_EVALUATION_RETENTION_DAYS`` are deleted by a
daily job of the job runner (0 keeps them for ever).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.attachments import AttachmentStore
from hub.jobs import ClaimedJob, enqueue
from models import (
    Contact,
    ContactIdentity,
    DocSource,
    Evaluation,
    Interaction,
    InteractionCategory,
    Job,
    JobState,
    Message,
    MessagePart,
    QaDoc,
    Recording,
    Transcript,
    TranscriptSegment,
)

log = logging.getLogger(__name__)
RETENTION_JOB = "qa.retention"
RETENTION_EVERY = timedelta(days=1)


async def erase_contact(
    db: AsyncSession,
    contact_id: int,
    *,
    user_id: int,
    var_dir: Path,
    attachments: AttachmentStore,
) -> Erasure:
    """Erase in the caller's transaction; the files go after it commits (``delete_files``)."""
    contact = await db.get(Contact, contact_id)
    if contact is None:
        raise LookupError(f"Contact {contact_id} does not exist.")
    ids = list(
        (await db.exec(select(Interaction.id).where(Interaction.contact_id == contact_id))).all()
    )
    counts: dict[str, int] = {"interactions": len(ids)}
    files: list[Path] = []

    async def gone(model: Any, *where: Any) -> int:
        result = await db.exec(delete(model).where(*where))  # type: ignore[call-overload]
        return int(result.rowcount or 0)

    if ids:
        in_ids = col(Interaction.id).in_(ids)
        recordings = (
            await db.exec(select(Recording).where(col(Recording.interaction_id).in_(ids)))
        ).all()
        for r in recordings:
            for rel in (r.path, getattr(r, "original_path", None)):
                if rel:
                    files.append(var_dir / rel)
        messages = (
            await db.exec(select(Message).where(col(Message.interaction_id).in_(ids)))
        ).all()
        shas = {a.get("sha256") for m in messages for a in m.attachments if a.get("sha256")}
        message_ids = [m.id for m in messages]
        counts["index_rows"] = await gone(QaDoc, col(QaDoc.interaction_id).in_(ids))
        counts["category_tags"] = await gone(
            InteractionCategory, col(InteractionCategory.interaction_id).in_(ids)
        )
        counts["evaluations"] = await gone(Evaluation, col(Evaluation.interaction_id).in_(ids))
        counts["transcript_segments"] = await gone(
            TranscriptSegment, col(TranscriptSegment.interaction_id).in_(ids)
        )
        counts["transcripts"] = await gone(Transcript, col(Transcript.interaction_id).in_(ids))
        counts["recordings"] = await gone(Recording, col(Recording.interaction_id).in_(ids))
        if message_ids:
            await gone(MessagePart, col(MessagePart.message_id).in_(message_ids))
        counts["messages"] = await gone(Message, col(Message.interaction_id).in_(ids))
        for sha in shas:
            shared = (
                await db.exec(
                    select(Message.id).where(
                        sa.cast(Message.attachments, sa.Text).contains(sha)  # type: ignore[arg-type]
                    )
                )
            ).first()
            if shared is None:
                files.append(attachments.path_for(sha))
        counts["attachment_files"] = len(shas)
        for interaction in (await db.exec(select(Interaction).where(in_ids))).all():
            interaction.subject = None
            interaction.data = {}
            interaction.wrapup_notes = ""
            db.add(interaction)
    counts["identities"] = await gone(ContactIdentity, ContactIdentity.contact_id == contact_id)
    contact.name = ""
    contact.notes = ""
    contact.blocked_reason = ""
    db.add(contact)
    audit.record(
        db,
        user_id=user_id,
        action="contact.erase",
        entity="contact",
        entity_id=contact_id,
        after={"erased": counts},
    )
    return Erasure(counts, files)


@dataclass
class Erasure:
    counts: dict[str, int]
    files: list[Path]  # to delete once the transaction has committed


def delete_files(files: list[Path]) -> int:
    """Delete an erasure's files (after its commit); returns how many existed."""
    removed = 0
    for path in files:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


# --- retention --------------------------------------------------------------------------


async def apply_retention(
    db: AsyncSession, *, transcript_days: int, evaluation_days: int, now: datetime | None = None
) -> dict[str, int]:
    now = now or datetime.now(UTC)
    counts = {"transcripts": 0, "evaluations": 0}
    if transcript_days > 0:
        cutoff = now - timedelta(days=transcript_days)
        old = list(
            (await db.exec(select(Transcript.id).where(col(Transcript.created_at) < cutoff))).all()
        )
        if old:
            segment_ids = list(
                (
                    await db.exec(
                        select(TranscriptSegment.id).where(
                            col(TranscriptSegment.transcript_id).in_(old)
                        )
                    )
                ).all()
            )
            if segment_ids:
                await db.exec(
                    delete(QaDoc).where(  # type: ignore[call-overload]
                        QaDoc.source == DocSource.SEGMENT.value,
                        col(QaDoc.source_id).in_(segment_ids),
                    )
                )
            await db.exec(
                delete(TranscriptSegment).where(col(TranscriptSegment.transcript_id).in_(old))  # type: ignore[call-overload]
            )
            await db.exec(delete(Transcript).where(col(Transcript.id).in_(old)))  # type: ignore[call-overload]
            counts["transcripts"] = len(old)
    if evaluation_days > 0:
        cutoff = now - timedelta(days=evaluation_days)
        result = await db.exec(
            delete(Evaluation).where(col(Evaluation.created_at) < cutoff)  # type: ignore[call-overload]
        )
        counts["evaluations"] = int(result.rowcount or 0)
    return counts


async def schedule_retention(db: AsyncSession) -> None:
    """One pending retention job at a time, whoever starts first."""
    pending = (
        await db.exec(
            select(Job.id).where(
                Job.kind == RETENTION_JOB,
                col(Job.state).in_([JobState.PENDING.value, JobState.RUNNING.value]),
            )
        )
    ).first()
    if pending is None:
        enqueue(db, RETENTION_JOB, {})


def retention_handler(services: Any):
    async def run(_job: ClaimedJob) -> None:
        settings = services.settings
        async with services.sessionmaker() as db:
            counts = await apply_retention(
                db,
                transcript_days=settings.qa_transcript_retention_days,
                evaluation_days=settings.qa_evaluation_retention_days,
            )
            enqueue(db, RETENTION_JOB, {}, run_at=datetime.now(UTC) + RETENTION_EVERY)
            await db.commit()
        if any(counts.values()):
            log.info("QA retention removed %s", counts)

    return run
