"""Voicemail: the caller leaves a message, a job transcribes it, an agent is offered it.

``VoicemailTaker.take`` runs on a live call that ``hub.nobody_answers`` diverted (out of
hours, the queue's maximum wait, or the dialog's ``voicemail``):

1. the interaction becomes VOICEMAIL (``RoutingService.leave_message``: a ringing offer is
   withdrawn);
2. the caller hears the inbox's greeting (``config["voicemail_greeting"]``, else
   ``HUB_VOICEMAIL_GREETING``; Piper through the IVR's prompt cache) and a tone;
3. the message is recorded (mono, 8 kHz, under ``<var>/voicemail/``) until a key, silence
   once the caller has spoken (``HUB_VOICEMAIL_SILENCE_SECONDS``), the length limit
   (``HUB_VOICEMAIL_MAX_SECONDS``) or the hang-up;
4. its ``Recording``, ``Voicemail`` and a queued ``Transcript`` are stored with a
   ``voicemail.transcribe`` job, in one transaction.

The job transcribes the message with faster-whisper (the recognizer pool the IVR loaded
once for this process) into ``TranscriptSegment`` rows (speaker ``customer``), then queues
the interaction (VOICEMAIL → QUEUED, ``data["kind"] = "voicemail"``) so routing offers it to
an agent, who plays it in the console beside its transcript and calls back with one click.
A message that could not be transcribed is queued all the same, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from channels.voice.call import Call, CallError, CallState
from hub.events import SUPERVISOR_TOPIC
from hub.interactions import change_state
from hub.jobs import enqueue
from hub.routing.work import AfterCommit, lock_interaction, write_lock
from models import (
    Inbox,
    Interaction,
    InteractionState,
    Recording,
    Speaker,
    Transcript,
    TranscriptSegment,
    TranscriptStatus,
    Voicemail,
    utcnow,
)

if TYPE_CHECKING:
    from channels.voice.ivr_port import IvrSpeech
    from hub.calls import LiveCall
    from hub.jobs import ClaimedJob, JobRunner
    from hub.services import Services

S = InteractionState
log = logging.getLogger(__name__)
VOICEMAIL_JOB = "voicemail.transcribe"  # payload: {"voicemail_id": int}
GOODBYE = "Thank you. Your message was recorded. Goodbye."
FRAME_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class Message:
    path: Path
    seconds: float
    ended_by: str  # key, silence, max_length, hangup
    spoke: bool


def tone(seconds: float = 0.4, hz: float = 1000.0) -> np.ndarray:
    """The beep before the message (8 kHz)."""
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16)


async def record_message(
    call: Call,
    path: Path,
    *,
    max_seconds: float,
    silence_seconds: float,
    silence_rms: float,
    no_speech_seconds: float,
) -> Message:
    """Record the caller (mono WAV at ``path``) until a key, silence after speech, the
    length limit or the hang-up; ``no_speech_seconds`` of silence before any speech also
    ends it (a caller who says nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    call.flush_dtmf()
    frames = 0
    quiet = 0
    spoke = False
    ended_by = "hangup"
    max_frames = int(max_seconds / FRAME_SECONDS)
    quiet_limit = max(1, int(silence_seconds / FRAME_SECONDS))
    mute_limit = max(1, int(no_speech_seconds / FRAME_SECONDS))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        keys = asyncio.ensure_future(call.collect_dtmf(1, timeout=max_seconds + 5, terminator=None))
        stream = call.audio_stream()
        try:
            while True:
                frame_task = asyncio.ensure_future(anext(stream))
                await asyncio.wait({frame_task, keys}, return_when=asyncio.FIRST_COMPLETED)
                if keys.done():
                    frame_task.cancel()
                    with contextlib.suppress(BaseException):
                        await frame_task
                    ended_by = "key" if keys.result().digits else "hangup"
                    break
                try:
                    frame = frame_task.result()
                except StopAsyncIteration:
                    ended_by = "hangup"
                    break
                out.writeframes(frame.astype("<i2").tobytes())
                frames += 1
                rms = float(np.sqrt(np.mean(frame.astype(np.float32) ** 2)))
                if rms >= silence_rms:
                    spoke, quiet = True, 0
                else:
                    quiet += 1
                if frames >= max_frames:
                    ended_by = "max_length"
                    break
                if quiet >= (quiet_limit if spoke else mute_limit):
                    ended_by = "silence"
                    break
        finally:
            keys.cancel()
            with contextlib.suppress(BaseException):
                await keys
            with contextlib.suppress(BaseException):
                await stream.aclose()
    return Message(path, frames * FRAME_SECONDS, ended_by, spoke)


class VoicemailTaker:
    """Takes messages on live calls and runs the ``voicemail.transcribe`` jobs."""

    def __init__(self, services: Services, speech: Callable[[], Awaitable[IvrSpeech]]) -> None:
        self.services = services
        self.speech = speech

    def register(self, runner: JobRunner) -> None:
        runner.register(VOICEMAIL_JOB, self.run_job)

    async def prerender(self, texts: list[str]) -> None:
        """Render the fixed prompts ahead of the first caller (in the background)."""
        speech = await self.speech()
        for text in texts:
            with contextlib.suppress(Exception):
                await speech.prompts.render(text)

    async def say(self, call: Call, text: str) -> None:
        """A prompt through the IVR's cache (Piper renders it once)."""
        if call.state is CallState.ENDED or not text.strip():
            return
        speech = await self.speech()
        pcm = await speech.prompts.render(text)
        with contextlib.suppress(CallError):
            await call.play(pcm, interrupt_on_dtmf=False)

    async def take(self, live: LiveCall, *, reason: str, queue_id: int | None) -> bool:
        """The whole voicemail on the call; True when a message was stored."""
        settings = self.services.settings
        call = live.customer
        await self.services.routing.leave_message(live.interaction_id)
        greeting = str((live.inbox.config or {}).get("voicemail_greeting") or "")
        await self.say(call, greeting or settings.voicemail_greeting)
        if call.state is CallState.ENDED:
            await self._nothing_left(live.interaction_id)
            return False
        with contextlib.suppress(CallError):
            await call.play(tone(), interrupt_on_dtmf=False)
        count = len(list((settings.var_dir / "voicemail").glob(f"{live.interaction_id}-*.wav")))
        relative = Path("voicemail") / f"{live.interaction_id}-{count + 1}.wav"
        started = datetime.now(UTC)
        message = await record_message(
            call,
            settings.var_dir / relative,
            max_seconds=settings.voicemail_max_seconds,
            silence_seconds=settings.voicemail_silence_seconds,
            silence_rms=settings.voicemail_silence_rms,
            no_speech_seconds=settings.voicemail_no_speech_seconds,
        )
        if call.state is not CallState.ENDED:
            await self.say(call, GOODBYE)
            with contextlib.suppress(CallError):
                await call.hangup()
        if not message.spoke:
            with contextlib.suppress(OSError):
                message.path.unlink()
            await self._nothing_left(live.interaction_id)
            return False
        await self._store(live, message, str(relative), started, reason, queue_id)
        return True

    async def _nothing_left(self, interaction_id: int) -> None:
        """The caller left no message: closed, so nobody is offered silence."""
        after = AfterCommit()
        async with self.services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, interaction_id)
            if interaction is None or interaction.state != S.VOICEMAIL:
                return
            interaction.data = {**interaction.data, "voicemail": {"left": False}}
            change_state(db, interaction, S.CLOSED, reason="no message left")
            from hub.routing.service import RoutingService

            RoutingService._announce_work(after, interaction, None)
            await db.commit()
        await after.publish(self.services.bus)

    async def _store(
        self,
        live: LiveCall,
        message: Message,
        relative: str,
        started: datetime,
        reason: str,
        queue_id: int | None,
    ) -> None:
        async with self.services.sessionmaker() as db:
            recording = Recording(
                interaction_id=live.interaction_id,
                path=relative,
                duration_seconds=round(message.seconds, 2),
                legs=[live.leg_id],
                started_at=started,
                ended_at=datetime.now(UTC),
                complete=True,
            )
            db.add(recording)
            await db.flush()
            voicemail = Voicemail(
                interaction_id=live.interaction_id,
                recording_id=recording.id,
                inbox_id=live.inbox.id,  # type: ignore[arg-type]
                queue_id=queue_id,
                reason=reason,
                ended_by=message.ended_by,
                duration_seconds=round(message.seconds, 2),
            )
            db.add(voicemail)
            db.add(Transcript(interaction_id=live.interaction_id, recording_id=recording.id))
            interaction = await db.get(Interaction, live.interaction_id)
            assert interaction is not None
            interaction.data = {
                **interaction.data,
                "kind": "voicemail",
                "voicemail": {"reason": reason, "seconds": round(message.seconds, 1)},
            }
            if queue_id is not None:
                interaction.queue_id = queue_id
            db.add(interaction)
            await db.flush()
            enqueue(db, VOICEMAIL_JOB, {"voicemail_id": voicemail.id})
            await db.commit()
        log.info("voicemail %s left on interaction %s", voicemail.id, live.interaction_id)

    # -- the job -----------------------------------------------------------------------------

    async def run_job(self, job: ClaimedJob) -> None:
        voicemail_id = int(job.payload["voicemail_id"])
        try:
            await self.transcribe(voicemail_id)
        except Exception as exc:
            if not job.last_attempt:
                raise
            await self._failed(voicemail_id, f"transcription failed: {exc}"[:500])
            raise

    async def transcribe(self, voicemail_id: int) -> None:
        services = self.services
        async with services.sessionmaker() as db:
            voicemail = await db.get(Voicemail, voicemail_id)
            recording = await db.get(Recording, voicemail.recording_id) if voicemail else None
        if voicemail is None or recording is None:
            return
        transcript = await self._transcript(recording.id)  # type: ignore[arg-type]
        if transcript is not None and transcript.status == TranscriptStatus.DONE:
            await self._queue(voicemail)  # done before a crash: make sure it is queued
            return
        from speech.audio import read_wav

        audio = await asyncio.to_thread(read_wav, services.settings.var_dir / recording.path)
        speech = await self.speech()
        result = await speech.recognizer.transcribe(audio, word_timestamps=True)
        segments = [_words_of(segment) for segment in result.segments]
        await asyncio.to_thread(_redact, segments)  # only redacted text is stored (QA)
        async with services.sessionmaker() as db:
            await write_lock(db)
            row = await self._transcript(recording.id, db)  # type: ignore[arg-type]
            if row is None:
                row = Transcript(interaction_id=voicemail.interaction_id, recording_id=recording.id)
                db.add(row)
                await db.flush()
            if row.status != TranscriptStatus.DONE:
                for segment, redacted in zip(result.segments, segments, strict=True):
                    db.add(
                        TranscriptSegment(
                            transcript_id=row.id,  # type: ignore[arg-type]
                            interaction_id=voicemail.interaction_id,
                            speaker=Speaker.CUSTOMER.value,
                            start_ms=int(segment.start * 1000),
                            end_ms=int(segment.end * 1000),
                            text=redacted["text"],
                            words=redacted["words"],
                        )
                    )
                row.status = TranscriptStatus.DONE
                row.language = result.language[:16]
                row.finished_at = utcnow()
                db.add(row)
            await db.commit()
        await self._queue(voicemail)

    async def _transcript(self, recording_id: int, db: Any = None) -> Transcript | None:
        from sqlmodel import select

        query = select(Transcript).where(Transcript.recording_id == recording_id)
        if db is None:
            async with self.services.sessionmaker() as own:
                return (await own.exec(query)).first()
        return (await db.exec(query)).first()

    async def _failed(self, voicemail_id: int, error: str) -> None:
        async with self.services.sessionmaker() as db:
            voicemail = await db.get(Voicemail, voicemail_id)
            if voicemail is None:
                return
            row = await self._transcript(voicemail.recording_id or 0, db)
            if row is not None and row.status != TranscriptStatus.DONE:
                row.status, row.error, row.finished_at = TranscriptStatus.FAILED, error, utcnow()
                db.add(row)
                await db.commit()
        await self._queue(voicemail)

    async def _queue(self, voicemail: Voicemail) -> None:
        """VOICEMAIL → QUEUED: routing offers the message to an agent."""
        after = AfterCommit()
        async with self.services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, voicemail.interaction_id)
            if interaction is None or interaction.state != S.VOICEMAIL:
                return
            if interaction.queue_id is None:
                inbox = await db.get(Inbox, interaction.inbox_id)
                interaction.queue_id = inbox.default_queue_id if inbox else None
            change_state(db, interaction, S.QUEUED, reason="voicemail to call back")
            from hub.routing.service import RoutingService

            RoutingService._announce_work(after, interaction, None)
            after.add(SUPERVISOR_TOPIC, "queue", queue_id=interaction.queue_id)
            await db.commit()
        await after.publish(self.services.bus)
        self.services.routing.wake()


def _words_of(segment: Any) -> dict[str, Any]:
    """A recognized segment as the QA pipeline stores it: its words, and the text they make."""
    words = [
        {"w": w.text.strip(), "start_ms": int(w.start * 1000), "end_ms": int(w.end * 1000)}
        for w in segment.words
        if w.text.strip()
    ]
    return {"text": " ".join(w["w"] for w in words) or segment.text.strip(), "words": words}


def _redact(segments: list[dict[str, Any]]) -> None:
    """The message's personal data as ``[CARD]``, ``[PHONE]``…, in its text and its words,
    analysed as one batch (a number may run across segments)."""
    from hub.qa.redaction import redact_batch
    from hub.transcription.worker import redact_words

    for segment, result in zip(segments, redact_batch([s["text"] for s in segments]), strict=True):
        segment["text"] = result.text
        redact_words(segment, result.spans)
