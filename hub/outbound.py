"""Outbound replies: commit the message first, then hand it to the channel's sender.

A reply is stored as ``pending`` before any channel sees it, so a crash between the two
loses nothing: ``resend_pending`` picks it up again at start-up. Senders are registered per
channel kind by the adapters the app starts.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    ChannelSender,
    DeliveryStatus,
    InboundAttachment,
    OutboundMessage,
    SendResult,
)
from hub.attachments import AttachmentStore
from hub.delivery import parts_of
from hub.events import EventBus, interaction_topic
from models import (
    ContactIdentity,
    Direction,
    Interaction,
    Message,
    SenderKind,
    utcnow,
)

log = logging.getLogger(__name__)

_ADDRESS_KIND = {
    ChannelKind.EMAIL: AddressKind.EMAIL,
    ChannelKind.SMS: AddressKind.PHONE,
    ChannelKind.FAX: AddressKind.PHONE,
    ChannelKind.VOICE: AddressKind.PHONE,
    ChannelKind.TELEGRAM: AddressKind.TELEGRAM,
    ChannelKind.WEBCHAT: AddressKind.WEBCHAT,
}


class NoSender(LookupError):
    pass


class Outbox:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: EventBus,
        attachments: AttachmentStore,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._attachments = attachments
        self._senders: dict[ChannelKind, ChannelSender] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def register(self, kind: ChannelKind, sender: ChannelSender) -> None:
        self._senders[kind] = sender

    def has_sender(self, kind: ChannelKind | str) -> bool:
        return ChannelKind(kind) in self._senders

    async def reply(
        self,
        interaction_id: int,
        *,
        body: str,
        agent_id: int | None,
        subject: str | None = None,
        attachments: list[dict] | None = None,
        sender_kind: SenderKind = SenderKind.AGENT,
        meta: dict | None = None,
    ) -> Message:
        """Commit a pending outbound message and start its delivery in the background."""
        async with self._sessionmaker() as db:
            interaction = await db.get(Interaction, interaction_id)
            if interaction is None:
                raise LookupError(f"interaction {interaction_id} does not exist")
            message = Message(
                interaction_id=interaction_id,
                inbox_id=interaction.inbox_id,
                direction=Direction.OUTBOUND,
                sender_kind=sender_kind,
                agent_id=agent_id,
                body=body,
                subject=subject,
                attachments=attachments or [],
                delivery_status=DeliveryStatus.PENDING,
                meta=meta or {},
            )
            db.add(message)
            await db.commit()
        await self._bus.publish(interaction_topic(interaction_id), "message", message_id=message.id)
        self._spawn(message.id)  # type: ignore[arg-type]
        return message

    def _spawn(self, message_id: int) -> None:
        task = asyncio.create_task(self.deliver(message_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver(self, message_id: int) -> SendResult:
        """Send one pending message through its channel and store the outcome."""
        async with self._sessionmaker() as db:
            message = await db.get(Message, message_id)
            if message is None:
                raise LookupError(f"message {message_id} does not exist")
            interaction = await db.get(Interaction, message.interaction_id)
            assert interaction is not None
            outbound = await self._build(db, interaction, message)
        kind = ChannelKind(interaction.channel)
        sender = self._senders.get(kind)
        if sender is None:
            result = SendResult(DeliveryStatus.FAILED, detail=f"no {kind.value} sender is running")
        else:
            try:
                result = await sender.send(outbound)
            except Exception as exc:  # a channel failure must not lose the message's status
                log.exception("sending message %s failed", message_id)
                result = SendResult(DeliveryStatus.FAILED, detail=f"{type(exc).__name__}: {exc}")
        if result.status == DeliveryStatus.PENDING:
            # handed on to the hub process that holds the channel's connection (an SMPP
            # bind under a lease): that process delivers it and stores the outcome
            return result
        async with self._sessionmaker() as db:
            message = await db.get(Message, message_id)
            assert message is not None
            message.delivery_status = result.status
            message.status_detail = result.detail
            if result.provider_id:
                message.source_id = result.provider_id
            db.add(message)
            db.add_all(parts_of(message, result.part_ids))
            await db.commit()
        await self._bus.publish(
            interaction_topic(interaction.id),  # type: ignore[arg-type]
            "message-status",
            message_id=message_id,
        )
        return result

    async def _build(
        self, db: AsyncSession, interaction: Interaction, message: Message
    ) -> OutboundMessage:
        kind = ChannelKind(interaction.channel)
        address_kind = _ADDRESS_KIND[kind]
        identity = (
            await db.exec(
                select(ContactIdentity)
                .where(
                    ContactIdentity.contact_id == interaction.contact_id,
                    ContactIdentity.kind == address_kind.value,
                )
                .order_by(col(ContactIdentity.id))
            )
        ).first()
        to = Address(address_kind, identity.address if identity else "")
        earlier = (
            await db.exec(
                select(Message.source_id)
                .where(
                    Message.interaction_id == interaction.id,
                    col(Message.source_id).is_not(None),
                    Message.id != message.id,
                    col(Message.private).is_(False),
                )
                .order_by(col(Message.id))
            )
        ).all()
        refs = tuple(s for s in earlier if s)
        files = tuple(
            InboundAttachment(a["filename"], a["content_type"], self._attachments.get(a["sha256"]))
            for a in message.attachments
        )
        return OutboundMessage(
            message_id=message.id,  # type: ignore[arg-type]
            interaction_id=interaction.id,  # type: ignore[arg-type]
            inbox_id=interaction.inbox_id,
            channel=kind,
            to=to,
            body=message.body,
            subject=message.subject or interaction.subject,
            attachments=files,
            in_reply_to=refs[-1] if refs else None,
            references=refs,
            meta=dict(message.meta),
        )

    async def resend_pending(self, older_than: timedelta = timedelta(seconds=30)) -> int:
        """Re-deliver replies left pending by a crash (run at start-up)."""
        cutoff = utcnow() - older_than
        async with self._sessionmaker() as db:
            ids = (
                await db.exec(
                    select(Message.id).where(
                        Message.direction == Direction.OUTBOUND,
                        Message.delivery_status == DeliveryStatus.PENDING,
                        col(Message.private).is_(False),
                        Message.created_at < cutoff,
                    )
                )
            ).all()
        for message_id in ids:
            self._spawn(message_id)  # type: ignore[arg-type]
        return len(ids)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
