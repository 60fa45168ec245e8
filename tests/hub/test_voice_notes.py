"""Voice notes are transcribed by the speech layer and the text lands on the message.

The transcription is a job of the hub's job runner, written with the message.
"""

from __future__ import annotations

import asyncio
import io

import av
import pytest
from sqlmodel import col, select

from channels.base import Address, AddressKind, ChannelKind, InboundAttachment, InboundMessage
from hub.services import Services
from hub.voice_notes import VoiceNoteTranscriber
from models import Inbox, Job, JobState, Message
from speech.audio import resample
from speech.tts import Synthesizer


@pytest.fixture(scope="module")
def voice_note() -> bytes:
    """What Telegram sends: OGG/Opus at 48 kHz, here spoken by the Piper voice."""
    spoken = Synthesizer().synthesize("Please call me back about my invoice.")
    pcm = resample(spoken.samples, spoken.sample_rate, 48000)
    out = io.BytesIO()
    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


async def telegram_inbox(services: Services) -> int:
    async with services.sessionmaker() as db:
        inbox = (await db.exec(select(Inbox).where(Inbox.kind == "telegram"))).one()
        return inbox.id  # type: ignore[return-value]


def note(inbox: int, data: bytes, source_id: str) -> InboundMessage:
    return InboundMessage(
        inbox_id=inbox,
        channel=ChannelKind.TELEGRAM,
        sender=Address(AddressKind.TELEGRAM, "424242", display_name="Dana"),
        body="",
        source_id=source_id,
        content_type="audio",
        attachments=(InboundAttachment("voice.ogg", "audio/ogg", data),),
        meta={"transcribe": True},
    )


async def start_transcriber(services: Services) -> VoiceNoteTranscriber:
    """What ``Services.start`` does when voice notes are transcribed."""
    transcriber = VoiceNoteTranscriber(services)
    transcriber.register(services.jobs)
    await services.jobs.start()
    return transcriber


async def stop_transcriber(services: Services, transcriber: VoiceNoteTranscriber) -> None:
    await services.jobs.stop()
    await transcriber.close()


async def stored_meta(services: Services, message_id: int, key: str) -> Message:
    """Poll until the worker has written ``key`` (bounded: the test fails, never hangs)."""
    for _ in range(600):
        async with services.sessionmaker() as db:
            message = await db.get(Message, message_id)
        assert message is not None
        if key in message.meta:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"message {message_id} never got {key}")


async def test_a_voice_note_is_transcribed_onto_the_message(services: Services, voice_note: bytes):
    transcriber = await start_transcriber(services)
    try:
        inbox = await telegram_inbox(services)
        result = await services.ingest.ingest(note(inbox, voice_note, "424242:1"))
        message = await stored_meta(services, result.message_id, "transcript")
    finally:
        await stop_transcriber(services, transcriber)
    words = message.meta["transcript"].lower()
    assert "call me back" in words and "invoice" in words
    assert message.body == message.meta["transcript"]  # searchable like any text
    assert message.attachments[0]["content_type"] == "audio/ogg"  # still playable


async def test_audio_that_cannot_be_decoded_gets_a_visible_reason(services: Services):
    transcriber = await start_transcriber(services)
    try:
        inbox = await telegram_inbox(services)
        result = await services.ingest.ingest(note(inbox, b"OggS not really", "424242:2"))
        message = await stored_meta(services, result.message_id, "transcript_error")
    finally:
        await stop_transcriber(services, transcriber)
    assert "cannot decode audio" in message.meta["transcript_error"]
    assert "transcript" not in message.meta


async def test_notes_left_untranscribed_by_a_crash_are_picked_up_at_start(
    services: Services, voice_note: bytes
):
    """The job is written with the message, so a note stored while no runner ran (a crash,
    a restart) is transcribed once one starts; a redelivered note adds no second job."""
    inbox = await telegram_inbox(services)
    result = await services.ingest.ingest(note(inbox, voice_note, "424242:3"))  # no runner yet
    again = await services.ingest.ingest(note(inbox, voice_note, "424242:3"))
    assert again.duplicate and again.message_id == result.message_id
    transcriber = await start_transcriber(services)
    try:
        message = await stored_meta(services, result.message_id, "transcript")
    finally:
        await stop_transcriber(services, transcriber)
    assert "invoice" in message.meta["transcript"].lower()
    async with services.sessionmaker() as db:
        jobs = (await db.exec(select(Job).order_by(col(Job.id)))).all()
    assert [(j.kind, j.payload, j.state) for j in jobs] == [
        ("voice_note.transcribe", {"message_id": result.message_id}, JobState.DONE)
    ]


async def test_a_note_that_fails_every_attempt_says_so_on_the_message(
    services: Services, voice_note: bytes
):
    """The audio went missing from the attachment store: each attempt fails, the job is
    retried, and after the last one the agent sees why there is no transcript."""
    services.jobs.retry_seconds = 0.01  # HUB_JOBS_RETRY_SECONDS, shortened
    inbox = await telegram_inbox(services)
    result = await services.ingest.ingest(note(inbox, voice_note, "424242:4"))
    async with services.sessionmaker() as db:
        stored = await db.get(Message, result.message_id)
    assert stored is not None
    services.attachments.path_for(stored.attachments[0]["sha256"]).unlink()
    transcriber = await start_transcriber(services)
    try:
        message = await stored_meta(services, result.message_id, "transcript_error")
    finally:
        await stop_transcriber(services, transcriber)
    assert message.meta["transcript_error"].startswith("transcription failed after 5 attempts: ")
    assert "No such file" in message.meta["transcript_error"]
    async with services.sessionmaker() as db:
        (job,) = (await db.exec(select(Job))).all()
    assert (job.state, job.attempts) == (JobState.FAILED, 5)
    assert job.last_error is not None and "FileNotFoundError" in job.last_error
