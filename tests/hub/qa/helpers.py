"""Building real conversations for the QA tests: a call with a transcript, a chat, an email."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import (
    Agent,
    Contact,
    Inbox,
    Interaction,
    InteractionState,
    Message,
    Queue,
    Transcript,
    TranscriptSegment,
    TranscriptStatus,
    User,
)


async def agent_id(db: AsyncSession, username: str) -> int:
    row = (await db.exec(select(Agent.id).join(User).where(User.username == username))).first()
    assert row is not None
    return row


async def queue_id(db: AsyncSession, name: str) -> int:
    row = (await db.exec(select(Queue.id).where(Queue.name == name))).first()
    assert row is not None
    return row


async def inbox(db: AsyncSession, kind: str) -> Inbox:
    row = (await db.exec(select(Inbox).where(Inbox.kind == kind))).first()
    assert row is not None, kind
    return row


async def make_call(
    db: AsyncSession,
    *,
    agent: int | None,
    queue: int | None,
    segments: list[tuple[str, int, str]],  # (speaker, start_ms, redacted text)
    at: datetime | None = None,
    metrics: dict | None = None,
) -> Interaction:
    """A closed voice interaction with a finished transcript."""
    contact = Contact(name="Caller")
    db.add(contact)
    await db.flush()
    box = await inbox(db, "voice")
    created = at or datetime.now(UTC)
    interaction = Interaction(
        inbox_id=box.id,  # type: ignore[arg-type]
        contact_id=contact.id,  # type: ignore[arg-type]
        channel="voice",
        state=InteractionState.CLOSED,
        queue_id=queue,
        agent_id=agent,
        created_at=created,
        answered_at=created,
    )
    db.add(interaction)
    await db.flush()
    transcript = Transcript(
        interaction_id=interaction.id,  # type: ignore[arg-type]
        status=TranscriptStatus.DONE,
        metrics=metrics or {},
    )
    db.add(transcript)
    await db.flush()
    for speaker, start, text in segments:
        db.add(
            TranscriptSegment(
                transcript_id=transcript.id,  # type: ignore[arg-type]
                interaction_id=interaction.id,  # type: ignore[arg-type]
                speaker=speaker,
                agent_id=agent if speaker == "agent" else None,
                start_ms=start,
                end_ms=start + 2500,
                text=text,
            )
        )
    await db.commit()
    return interaction


async def make_text(
    db: AsyncSession,
    *,
    channel: str,
    agent: int | None,
    messages: list[tuple[str, str]],  # (contact|agent, body as the customer wrote it)
    at: datetime | None = None,
) -> Interaction:
    contact = Contact(name="Writer")
    db.add(contact)
    await db.flush()
    box = await inbox(db, channel)
    created = at or datetime.now(UTC)
    interaction = Interaction(
        inbox_id=box.id,  # type: ignore[arg-type]
        contact_id=contact.id,  # type: ignore[arg-type]
        channel=channel,
        state=InteractionState.CLOSED,
        agent_id=agent,
        created_at=created,
    )
    db.add(interaction)
    await db.flush()
    for n, (sender, body) in enumerate(messages):
        db.add(
            Message(
                interaction_id=interaction.id,  # type: ignore[arg-type]
                inbox_id=box.id,  # type: ignore[arg-type]
                direction="in" if sender == "contact" else "out",
                sender_kind=sender,
                agent_id=agent if sender == "agent" else None,
                body=body,
                created_at=created + timedelta(seconds=10 * n),
            )
        )
    await db.commit()
    return interaction
