"""Queue a recording's transcription in the transaction that completes the recording.

The ``qa.transcribe`` job and the ``Transcript`` row (status ``queued``, which the console
shows) are added to the caller's session: they exist once, and only if, that commits.
"""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.jobs import enqueue
from models import Recording, Transcript, TranscriptStatus

TRANSCRIBE_JOB = "qa.transcribe"  # payload: {"recording_id": int}
TRANSCRIBE_ATTEMPTS = 3


async def queue_transcription(db: AsyncSession, recording: Recording) -> None:
    """Add the job and the queued transcript for ``recording`` (once per recording)."""
    assert recording.id is not None
    existing = await db.exec(select(Transcript.id).where(Transcript.recording_id == recording.id))
    if existing.first() is not None:
        return
    db.add(
        Transcript(
            interaction_id=recording.interaction_id,
            recording_id=recording.id,
            status=TranscriptStatus.QUEUED,
        )
    )
    enqueue(db, TRANSCRIBE_JOB, {"recording_id": recording.id}, max_attempts=TRANSCRIBE_ATTEMPTS)
