"""Ingest: every channel's inbound message becomes a committed Message on an Interaction.

The contract (``channels.base.Ingestor``): ``ingest`` returns only after commit, so the
adapter may then acknowledge to its peer. A redelivery (same inbox and ``source_id``) is
stored once and reported as a duplicate. Events are published after the commit.
"""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import (
    ChannelKind,
    DeliveryStatus,
    DeliveryUpdate,
    InboundMessage,
    IngestResult,
)
from hub.attachments import AttachmentStore
from hub.contacts import resolve_contact
from hub.events import ROUTING_TOPIC, SUPERVISOR_TOPIC, EventBus, agent_topic, interaction_topic
from hub.interactions import change_state
from models import (
    Contact,
    Direction,
    Inbox,
    Interaction,
    InteractionState,
    Message,
    SenderKind,
)

# Channels where a customer's next message continues the open conversation.
CONVERSATIONAL = frozenset(
    {ChannelKind.WEBCHAT, ChannelKind.SMS, ChannelKind.TELEGRAM, ChannelKind.FAX}
)
SUBJECT_TAG = re.compile(r"\[#(\d{1,12})\]")
_OPEN_FOR_APPEND = tuple(
    s.value
    for s in (
        InteractionState.NEW,
        InteractionState.SELF_SERVICE,
        InteractionState.QUEUED,
        InteractionState.OFFERED,
        InteractionState.ACTIVE,
        InteractionState.WRAP_UP,
        InteractionState.VOICEMAIL,
    )
)
# Delivery status only moves forward (a late "sent" must not undo "delivered").
_STATUS_RANK = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.FAILED: 3,
}


class UnknownInbox(LookupError):
    pass


class IngestService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: EventBus,
        attachments: AttachmentStore,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._attachments = attachments

    async def ingest(self, message: InboundMessage) -> IngestResult:
        async with self._sessionmaker() as db:
            duplicate = await self._find_duplicate(db, message)
            if duplicate is not None:
                return duplicate
            inbox = await db.get(Inbox, message.inbox_id)
            if inbox is None or not inbox.active:
                raise UnknownInbox(f"inbox {message.inbox_id} does not exist or is disabled")
            contact = await resolve_contact(db, message.sender)
            interaction, created = await self._thread(db, inbox, contact, message)
            stored = Message(
                interaction_id=interaction.id,  # type: ignore[arg-type]
                inbox_id=inbox.id,  # type: ignore[arg-type]
                direction=Direction.INBOUND,
                sender_kind=SenderKind.CONTACT,
                content_type=message.content_type,
                body=message.body,
                html=message.html,
                subject=message.subject,
                attachments=[
                    self._attachments.describe(a.filename, a.content_type, a.data)
                    for a in message.attachments
                ],
                delivery_status=DeliveryStatus.RECEIVED,
                source_id=message.source_id,
                meta={**message.meta, "problems": list(message.problems)}
                if message.problems
                else dict(message.meta),
                created_at=message.received_at,
            )
            db.add(stored)
            try:
                await db.commit()
            except IntegrityError:
                # Lost a race with a concurrent redelivery of the same source_id.
                await db.rollback()
                duplicate = await self._find_duplicate(db, message)
                if duplicate is None:
                    raise
                return duplicate
            result = IngestResult(
                message_id=stored.id,  # type: ignore[arg-type]
                interaction_id=interaction.id,  # type: ignore[arg-type]
                contact_id=contact.id,  # type: ignore[arg-type]
                duplicate=False,
            )
            state, agent_id = interaction.state, interaction.agent_id
        await self._publish(result, state, agent_id, created)
        return result

    async def update_delivery(self, update: DeliveryUpdate) -> bool:
        """Apply a DLR/bounce/status callback; False when no outbound message matches."""
        async with self._sessionmaker() as db:
            message = (
                await db.exec(
                    select(Message).where(
                        Message.inbox_id == update.inbox_id,
                        Message.source_id == update.provider_id,
                        Message.direction == Direction.OUTBOUND,
                    )
                )
            ).first()
            if message is None:
                return False
            current = _STATUS_RANK.get(DeliveryStatus(message.delivery_status), 0)
            if _STATUS_RANK[update.status] >= current:
                message.delivery_status = update.status
                message.status_detail = update.detail
                db.add(message)
                await db.commit()
            interaction_id, message_id = message.interaction_id, message.id
        await self._bus.publish(
            interaction_topic(interaction_id), "message-status", message_id=message_id
        )
        return True

    async def _find_duplicate(
        self, db: AsyncSession, message: InboundMessage
    ) -> IngestResult | None:
        if not message.source_id:
            return None
        row = (
            await db.exec(
                select(Message, Interaction)
                .join(Interaction, col(Interaction.id) == Message.interaction_id)
                .where(Message.inbox_id == message.inbox_id, Message.source_id == message.source_id)
            )
        ).first()
        if row is None:
            return None
        stored, interaction = row
        return IngestResult(
            message_id=stored.id,  # type: ignore[arg-type]
            interaction_id=interaction.id,  # type: ignore[arg-type]
            contact_id=interaction.contact_id,
            duplicate=True,
        )

    async def _thread(
        self, db: AsyncSession, inbox: Inbox, contact: Contact, message: InboundMessage
    ) -> tuple[Interaction, bool]:
        """Find the interaction this message continues, or open a new one."""
        interaction = await self._by_reference(db, inbox, contact, message)
        if interaction is None and ChannelKind(message.channel) in CONVERSATIONAL:
            interaction = (
                await db.exec(
                    select(Interaction)
                    .where(
                        Interaction.inbox_id == inbox.id,
                        Interaction.contact_id == contact.id,
                        col(Interaction.state).in_(_OPEN_FOR_APPEND),
                    )
                    .order_by(col(Interaction.id).desc())
                )
            ).first()
        if interaction is not None:
            if interaction.state in (InteractionState.CLOSED, InteractionState.ABANDONED):
                change_state(
                    db, interaction, InteractionState.QUEUED, reason="customer wrote again"
                )
            return interaction, False
        interaction = Interaction(
            inbox_id=inbox.id,  # type: ignore[arg-type]
            contact_id=contact.id,  # type: ignore[arg-type]
            channel=message.channel,
            subject=(message.subject or None) and message.subject[:300],
            queue_id=inbox.default_queue_id,
            priority=contact.vip_level,
        )
        db.add(interaction)
        await db.flush()
        if contact.blocked:
            change_state(db, interaction, InteractionState.CLOSED, reason="contact is blocked")
        else:
            change_state(db, interaction, InteractionState.QUEUED, reason="new contact")
        return interaction, True

    async def _by_reference(
        self, db: AsyncSession, inbox: Inbox, contact: Contact, message: InboundMessage
    ) -> Interaction | None:
        if message.thread_refs:
            row = (
                await db.exec(
                    select(Interaction)
                    .join(Message, col(Message.interaction_id) == Interaction.id)
                    .where(
                        Message.inbox_id == inbox.id,
                        col(Message.source_id).in_(list(message.thread_refs)),
                    )
                    .order_by(col(Message.id).desc())
                )
            ).first()
            if row is not None:
                return row
        match = SUBJECT_TAG.search(message.subject or "")
        if match:
            tagged = await db.get(Interaction, int(match.group(1)))
            # Only the same customer may continue a thread by its tag: a guessed number
            # must not let a stranger write into someone else's conversation.
            if tagged is not None and tagged.contact_id == contact.id:
                return tagged
        return None

    async def _publish(
        self, result: IngestResult, state: str, agent_id: int | None, created: bool
    ) -> None:
        await self._bus.publish(
            interaction_topic(result.interaction_id), "message", message_id=result.message_id
        )
        if agent_id is not None and state in (InteractionState.ACTIVE, InteractionState.WRAP_UP):
            await self._bus.publish(
                agent_topic(agent_id),
                "conversation",
                interaction_id=result.interaction_id,
                message_id=result.message_id,
            )
        if state == InteractionState.QUEUED:
            await self._bus.publish(ROUTING_TOPIC, "wake", interaction_id=result.interaction_id)
            await self._bus.publish(
                SUPERVISOR_TOPIC, "queue", interaction_id=result.interaction_id, created=created
            )
