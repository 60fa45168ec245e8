"""Voice notes become text: agents read them, and search finds what the customer said.

Any channel may flag an inbound message with ``meta["transcribe"]`` (Telegram does for voice
notes). Ingest announces it on the ``transcribe`` topic after the commit; this worker decodes
the audio attachment, runs it through the speech layer's bounded recognizer pool (off the
event loop), and stores ``meta["transcript"]`` on the message. Audio that cannot be decoded
gets ``meta["transcript_error"]`` instead, so the agent sees why. Nothing is lost to a crash:
at start-up the worker picks up flagged notes that have neither.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlmodel import col, select

from hub.events import TRANSCRIBE_TOPIC, interaction_topic
from hub.tasks import cancel_and_wait
from models import Message
from speech.audio import AudioError, decode_compressed

if TYPE_CHECKING:
    from hub.services import Services
    from speech.pool import RecognizerPool

log = logging.getLogger(__name__)


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
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

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

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="voice-note-transcriber")
        await self._ready.wait()  # subscribed: no announcement can slip past

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        if self._pool is not None:
            await self._pool.close()

    async def _run(self) -> None:
        async with self._services.bus.subscribe([TRANSCRIBE_TOPIC]) as events:
            self._ready.set()
            for message_id in await self._left_over():
                await self._transcribe_logged(message_id)
            async for event in events:
                await self._transcribe_logged(int(event.data["message_id"]))

    async def _left_over(self, limit: int = 500) -> list[int]:
        async with self._services.sessionmaker() as db:
            recent = (
                await db.exec(
                    select(Message)
                    .where(Message.content_type == "audio", Message.direction == "in")
                    .order_by(col(Message.id).desc())
                    .limit(limit)
                )
            ).all()
        return [m.id for m in reversed(recent) if needs_transcript(m)]  # type: ignore[misc]

    async def _transcribe_logged(self, message_id: int) -> None:
        try:
            await self.transcribe(message_id)
        except Exception:  # one bad note must not stop the worker
            log.exception("transcribing message %s failed", message_id)

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
        result: dict[str, str]
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
        async with services.sessionmaker() as db:
            stored = await db.get(Message, message_id)
            assert stored is not None
            stored.meta = {**stored.meta, **result}
            if result.get("transcript") and not stored.body.strip():
                stored.body = result["transcript"]
            db.add(stored)
            await db.commit()
        await services.bus.publish(
            interaction_topic(message.interaction_id), "message-status", message_id=message_id
        )
        return result.get("transcript")
