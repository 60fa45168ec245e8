"""Voice notes become text: agents read them, and search finds what the customer said.

Any channel may flag an inbound message with ``meta["transcribe"]`` (Telegram does for voice
notes). Ingest writes a ``voice_note.transcribe`` job in the transaction that stores the
message; this handler decodes the audio attachment, runs it through the speech layer's
bounded recognizer pool (off the event loop), and stores ``meta["transcript"]`` on the
message. Audio that cannot be decoded gets ``meta["transcript_error"]`` instead, so the agent
sees why, and so does a note whose transcription failed on every attempt. The job runner
(``hub.jobs``) makes it survive a crash and run in exactly one of several hub processes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hub.events import interaction_topic
from models import Message
from speech.audio import AudioError, decode_compressed

if TYPE_CHECKING:
    from hub.jobs import ClaimedJob, JobRunner
    from hub.services import Services
    from speech.pool import RecognizerPool

VOICE_NOTE_JOB = "voice_note.transcribe"  # payload: {"message_id": int}


def needs_transcript(message: Message) -> bool:
    meta = message.meta or {}
    return (
        bool(meta.get("transcribe"))
        and "transcript" not in meta
        and ("transcript_error" not in meta)
    )


class VoiceNoteTranscriber:
    def __init__(self, services: Services, pool: RecognizerPool | None = None) -> None:
        self._services = services
        self._pool = pool

    def _recognizers(self) -> RecognizerPool:
        """The Whisper pool, built on first use: a hub without voice notes never loads it."""
        if self._pool is None:
            from speech.asr import WhisperRecognizer
            from speech.pool import RecognizerPool
            from speech.settings import SpeechSettings

            settings = SpeechSettings.from_env()
            self._pool = RecognizerPool.from_settings(
                WhisperRecognizer(settings=settings), settings
            )
        return self._pool

    def register(self, runner: JobRunner) -> None:
        """Take the ``voice_note.transcribe`` jobs of ``runner``."""
        runner.register(VOICE_NOTE_JOB, self.run_job)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def run_job(self, job: ClaimedJob) -> None:
        message_id = int(job.payload["message_id"])
        try:
            await self.transcribe(message_id)
        except Exception as exc:
            if job.last_attempt:  # no retry follows: say so on the message
                reason = f"transcription failed after {job.attempts} attempts: {exc}"
                await self._store(message_id, {"transcript_error": reason})
            raise

    async def transcribe(self, message_id: int) -> str | None:
        """Transcribe one flagged message; returns the text (None when nothing to do)."""
        services = self._services
        async with services.sessionmaker() as db:
            message = await db.get(Message, message_id)
        if message is None or not needs_transcript(message):
            return None
        audio_file = next(
            (a for a in message.attachments if str(a.get("content_type", "")).startswith("audio/")),
            None,
        )
        result: dict[str, Any]
        if audio_file is None:
            result = {"transcript_error": "the voice note's audio was not downloaded"}
        else:
            try:
                data = services.attachments.get(audio_file["sha256"])
                audio = await asyncio.to_thread(decode_compressed, data, 16000)
                transcript = await self._recognizers().transcribe(audio, word_timestamps=False)
                result = {"transcript": transcript.text.strip()}
            except AudioError as exc:
                result = {"transcript_error": str(exc)}
        await self._store(message_id, result)
        return result.get("transcript")

    async def _store(self, message_id: int, result: dict[str, Any]) -> None:
        """Merge ``result`` into the message's meta (and body), then tell its viewers."""
        services = self._services
        async with services.sessionmaker() as db:
            stored = await db.get(Message, message_id)
            assert stored is not None
            stored.meta = {**stored.meta, **result}
            if result.get("transcript") and not stored.body.strip():
                stored.body = result["transcript"]
            db.add(stored)
            await db.commit()
        await services.bus.publish(
            interaction_topic(stored.interaction_id), "message-status", message_id=message_id
        )
