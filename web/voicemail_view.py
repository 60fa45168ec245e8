"""What the console shows for a voicemail: its player, its transcript, and "Call back"."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import (
    CallbackAttempt,
    CallbackRequest,
    Interaction,
    Recording,
    Transcript,
    TranscriptSegment,
    Voicemail,
)


@dataclass
class VoicemailView:
    voicemail: Voicemail
    recording: Recording | None
    transcript: Transcript | None
    segments: list[TranscriptSegment] = field(default_factory=list)


@dataclass
class CallbackView:
    request: CallbackRequest
    attempts: list[CallbackAttempt]


async def voicemail_view(db: AsyncSession, interaction: Interaction) -> VoicemailView | None:
    """The interaction's latest message, if it has one."""
    voicemail = (
        await db.exec(
            select(Voicemail)
            .where(Voicemail.interaction_id == interaction.id)
            .order_by(col(Voicemail.id).desc())
        )
    ).first()
    if voicemail is None:
        return None
    recording = await db.get(Recording, voicemail.recording_id) if voicemail.recording_id else None
    transcript = None
    segments: list[TranscriptSegment] = []
    if recording is not None:
        transcript = (
            await db.exec(select(Transcript).where(Transcript.recording_id == recording.id))
        ).first()
    if transcript is not None:
        segments = list(
            (
                await db.exec(
                    select(TranscriptSegment)
                    .where(TranscriptSegment.transcript_id == transcript.id)
                    .order_by(col(TranscriptSegment.start_ms))
                )
            ).all()
        )
    return VoicemailView(voicemail, recording, transcript, segments)


async def callback_view(db: AsyncSession, interaction: Interaction) -> CallbackView | None:
    request = (
        await db.exec(
            select(CallbackRequest).where(CallbackRequest.interaction_id == interaction.id)
        )
    ).first()
    if request is None:
        return None
    attempts = (
        await db.exec(
            select(CallbackAttempt)
            .where(CallbackAttempt.request_id == request.id)
            .order_by(col(CallbackAttempt.id))
        )
    ).all()
    return CallbackView(request, list(attempts))
