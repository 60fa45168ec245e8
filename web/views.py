"""Read models for the pages and the SSE partials: plain queries, one DB session each.

The same loaders serve the first page render and every live update, so a partial always
looks the same whichever way it reached the browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.routing.decision import free_slots
from hub.routing.work import ROUTABLE_PRESENCE, agent_loads
from hub.text_collab import joined_interaction_ids, joined_segments
from models import (
    Agent,
    Contact,
    ContactIdentity,
    Direction,
    Disposition,
    Interaction,
    InteractionEvent,
    InteractionSegment,
    InteractionState,
    Message,
    NotReadyReason,
    Offer,
    OfferOutcome,
    Queue,
    Recording,
    Transcript,
    TranscriptSegment,
    User,
)

WORKING_STATES = (InteractionState.ACTIVE.value, InteractionState.WRAP_UP.value)


@dataclass
class OfferView:
    offer: Offer
    interaction: Interaction
    contact: Contact
    queue_name: str
    preview: str


@dataclass
class ConversationView:
    interaction: Interaction
    contact: Contact
    identities: list[ContactIdentity]
    messages: list[Message]
    history: list[Interaction]
    queue_name: str
    agent_names: dict[int, str] = field(default_factory=dict)
    merged_contacts: list[Contact] = field(default_factory=list)
    recordings: list[Recording] = field(default_factory=list)  # a call's, to play back
    transcripts: dict[int, TranscriptView] = field(default_factory=dict)  # by recording id
    joined: list[InteractionSegment] = field(default_factory=list)  # consult/conference


@dataclass
class TranscriptView:
    """A recording's transcript as the console shows it: its status (queued, running, done,
    failed with the reason) and, once done, the redacted segments per speaker."""

    transcript: Transcript
    segments: list[TranscriptSegment]
    agent_names: dict[int, str]

    def speaker_label(self, segment: TranscriptSegment) -> str:
        if segment.speaker == "agent" and segment.agent_id is not None:
            return f"Agent {self.agent_names.get(segment.agent_id, '')}".strip()
        return {"ivr": "IVR", "customer": "Customer"}.get(
            segment.speaker, segment.speaker.capitalize()
        )


async def transcript_view(
    db: AsyncSession, recording_id: int, names: dict[int, str] | None = None
) -> TranscriptView | None:
    transcript = (
        await db.exec(select(Transcript).where(Transcript.recording_id == recording_id))
    ).first()
    if transcript is None:
        return None
    segments = list(
        (
            await db.exec(
                select(TranscriptSegment)
                .where(TranscriptSegment.transcript_id == transcript.id)
                .order_by(col(TranscriptSegment.start_ms), col(TranscriptSegment.id))
            )
        ).all()
    )
    if names is None:
        names = await agent_names(db)
    return TranscriptView(transcript, segments, names)


async def agent_names(db: AsyncSession) -> dict[int, str]:
    rows = (await db.exec(select(Agent.id, User.display_name).join(User))).all()
    return {agent_id: name for agent_id, name in rows if agent_id is not None}


async def queue_names(db: AsyncSession) -> dict[int, str]:
    return {q.id: q.name for q in (await db.exec(select(Queue))).all() if q.id is not None}


async def pending_offers(db: AsyncSession, agent_id: int) -> list[OfferView]:
    rows = (
        await db.exec(
            select(Offer, Interaction, Contact)
            .join(Interaction, col(Interaction.id) == Offer.interaction_id)
            .join(Contact, col(Contact.id) == Interaction.contact_id)
            .where(Offer.agent_id == agent_id, Offer.outcome == OfferOutcome.PENDING.value)
            .order_by(col(Offer.id))
        )
    ).all()
    names = await queue_names(db)
    views = []
    for offer, interaction, contact in rows:
        # The customer's own last words: not an auto-reply, a note or another agent's text.
        last_inbound = (
            await db.exec(
                select(Message.body)
                .where(
                    Message.interaction_id == interaction.id,
                    Message.direction == Direction.INBOUND,
                    col(Message.private).is_(False),
                )
                .order_by(col(Message.id).desc())
            )
        ).first()
        views.append(
            OfferView(
                offer=offer,
                interaction=interaction,
                contact=contact,
                queue_name=names.get(offer.queue_id or interaction.queue_id or 0, ""),
                preview=(last_inbound or "")[:140],
            )
        )
    return views


async def my_conversations(db: AsyncSession, agent_id: int) -> list[tuple[Interaction, Contact]]:
    """The agent's own conversations, and the text conversations they are consulted on or
    conferenced into (``hub.text_collab``)."""
    joined = await joined_interaction_ids(db, agent_id)
    rows = (
        await db.exec(
            select(Interaction, Contact)
            .join(Contact, col(Contact.id) == Interaction.contact_id)
            .where(
                or_(
                    and_(
                        Interaction.agent_id == agent_id,
                        col(Interaction.state).in_(WORKING_STATES),
                    ),
                    col(Interaction.id).in_(joined),
                )
            )
            .order_by(col(Interaction.id))
        )
    ).all()
    return [(i, c) for i, c in rows]


async def conversation(db: AsyncSession, interaction_id: int) -> ConversationView | None:
    interaction = await db.get(Interaction, interaction_id)
    if interaction is None:
        return None
    contact = await db.get(Contact, interaction.contact_id)
    assert contact is not None
    identities = list(
        (
            await db.exec(
                select(ContactIdentity)
                .where(ContactIdentity.contact_id == contact.id)
                .order_by(col(ContactIdentity.id))
            )
        ).all()
    )
    messages = list(
        (
            await db.exec(
                select(Message)
                .where(Message.interaction_id == interaction_id)
                .order_by(col(Message.created_at), col(Message.id))
            )
        ).all()
    )
    history = list(
        (
            await db.exec(
                select(Interaction)
                .where(Interaction.contact_id == contact.id, Interaction.id != interaction_id)
                .order_by(col(Interaction.id).desc())
                .limit(20)
            )
        ).all()
    )
    names = await queue_names(db)
    agents = await agent_names(db)
    recordings = list(
        (
            await db.exec(
                select(Recording)
                .where(Recording.interaction_id == interaction_id)
                .order_by(col(Recording.id))
            )
        ).all()
    )
    transcripts = {}
    for recording in recordings:
        found = await transcript_view(db, recording.id, agents)  # type: ignore[arg-type]
        if found is not None:
            transcripts[recording.id] = found
    return ConversationView(
        interaction=interaction,
        contact=contact,
        identities=identities,
        messages=messages,
        history=history,
        queue_name=names.get(interaction.queue_id or 0, ""),
        agent_names=agents,
        recordings=recordings,
        transcripts=transcripts,  # type: ignore[arg-type]
        joined=await joined_segments(db, interaction_id) if interaction.channel != "voice" else [],
    )


async def not_ready_reasons(db: AsyncSession) -> list[NotReadyReason]:
    return list(
        (
            await db.exec(
                select(NotReadyReason)
                .where(col(NotReadyReason.active).is_(True))
                .order_by(col(NotReadyReason.label))
            )
        ).all()
    )


async def dispositions(db: AsyncSession) -> list[Disposition]:
    return list(
        (
            await db.exec(
                select(Disposition)
                .where(col(Disposition.active).is_(True))
                .order_by(col(Disposition.label))
            )
        ).all()
    )


async def transfer_targets(db: AsyncSession, interaction: Interaction) -> dict[str, Any]:
    """Where an interaction can go now: any active queue, and the agents who could take it
    this moment (taking work, with a free slot on its channel, not its holder), by name."""
    queues = list(
        (await db.exec(select(Queue).where(col(Queue.active).is_(True)).order_by(Queue.name))).all()
    )
    rows = (
        await db.exec(
            select(Agent, User)
            .join(User)
            .where(col(User.active).is_(True), col(Agent.presence).in_(ROUTABLE_PRESENCE))
            .order_by(User.display_name)
        )
    ).all()
    loads = await db.run_sync(agent_loads, [a.id for a, _ in rows])
    return {
        "queues": queues,
        "agents": [
            (a, u)
            for a, u in rows
            if a.id != interaction.agent_id
            and free_slots(a.capacity or {}, loads.get(a.id, {}), interaction.channel) > 0  # type: ignore[arg-type]
        ],
    }


async def state_history(db: AsyncSession, interaction_id: int) -> list[InteractionEvent]:
    return list(
        (
            await db.exec(
                select(InteractionEvent)
                .where(InteractionEvent.interaction_id == interaction_id)
                .order_by(col(InteractionEvent.at), col(InteractionEvent.id))
            )
        ).all()
    )


async def left_messages(
    db: AsyncSession, limit: int = 20
) -> list[tuple[Interaction, Contact, str]]:
    """Messages customers left (no agent, or closed): any agent may pick one up."""
    rows = (
        await db.exec(
            select(Interaction, Contact)
            .join(Contact, col(Contact.id) == Interaction.contact_id)
            .where(Interaction.state == InteractionState.VOICEMAIL.value)
            .order_by(col(Interaction.id))
            .limit(limit)
        )
    ).all()
    out = []
    for interaction, contact in rows:
        last = (
            await db.exec(
                select(Message.body)
                .where(Message.interaction_id == interaction.id, col(Message.private).is_(False))
                .order_by(col(Message.id).desc())
            )
        ).first()
        out.append((interaction, contact, (last or "")[:140]))
    return out
