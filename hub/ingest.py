"""Ingest: every channel's inbound message becomes a committed Message on an Interaction.

The contract (``channels.base.Ingestor``): ``ingest`` returns only after commit, so the
adapter may then acknowledge to its peer. A redelivery (same inbox and ``source_id``) is
stored once and reported as a duplicate. Events are published after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Session, col, select
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
from hub.db import make_sync_sqlite_engine
from hub.events import (
    ROUTING_TOPIC,
    SUPERVISOR_TOPIC,
    TRANSCRIBE_TOPIC,
    EventBus,
    agent_topic,
    interaction_topic,
)
from hub.interactions import change_state
from hub.routing.work import writer_lock
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


@dataclass(slots=True)
class _Job:
    message: InboundMessage
    future: asyncio.Future[IngestResult]
    result: IngestResult | None = None
    error: BaseException | None = None
    state: str = ""
    agent_id: int | None = None
    created: bool = False


class IngestService:
    """Stores inbound messages with group commit.

    Concurrent ``ingest`` calls (eight SMTP sessions, an SMSC's window of ``deliver_sm``)
    are taken by one writer task and stored in one transaction, each message inside its own
    savepoint, so one bad message fails alone and a redelivery racing its twin rolls back
    only itself. Every caller still gets its answer only after the commit that holds its
    message. On SQLite the batch holds the single write lock for its whole transaction.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: EventBus,
        attachments: AttachmentStore,
        *,
        max_batch: int = 64,
    ) -> None:
        self._sessionmaker = sessionmaker
        bind = sessionmaker.kw["bind"]
        self._sqlite: Engine | None = (
            make_sync_sqlite_engine(bind.url) if bind.dialect.name == "sqlite" else None
        )
        self._bus = bus
        self._attachments = attachments
        self._max_batch = max_batch
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def ingest(self, message: InboundMessage) -> IngestResult:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches(), name="ingest-writer")
        job = _Job(message, asyncio.get_running_loop().create_future())
        self._jobs.put_nowait(job)
        # A caller that gives up (a dropped SMTP session) must not cancel the stored job.
        return await asyncio.shield(job.future)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._sqlite is not None:
            self._sqlite.dispose()

    async def _write_batches(self) -> None:
        while True:
            batch = [await self._jobs.get()]
            while len(batch) < self._max_batch and not self._jobs.empty():
                batch.append(self._jobs.get_nowait())
            try:
                await self._commit(batch)
            except Exception as exc:  # the database refused the whole batch: tell every caller
                for job in batch:
                    job.result, job.error = None, exc
            for job in batch:
                if job.future.done():
                    continue
                if job.error is not None:
                    job.future.set_exception(job.error)
                else:
                    job.future.set_result(job.result)  # type: ignore[arg-type]
            for job in batch:
                if job.result is not None and not job.result.duplicate:
                    await self._publish(job.result, job.state, job.agent_id, job.created)
                    if job.message.meta.get("transcribe"):
                        await self._bus.publish(
                            TRANSCRIBE_TOPIC, "voice-note", message_id=job.result.message_id
                        )

    async def _commit(self, batch: list[_Job]) -> None:
        if self._sqlite is not None:
            # aiosqlite would cross threads for every cursor call (~20 per message); the
            # whole batch crosses once instead, on a plain pysqlite connection.
            async with writer_lock(self._sessionmaker.kw["bind"].sync_engine):
                await asyncio.to_thread(self._commit_sqlite, batch)
            return
        async with self._sessionmaker() as db:
            await db.run_sync(self._store_batch, batch)
            await db.commit()

    def _commit_sqlite(self, batch: list[_Job]) -> None:
        assert self._sqlite is not None
        with Session(self._sqlite) as db:
            db.connection().exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, up front
            self._store_batch(db, batch)
            db.commit()

    def _store_batch(self, db: Session, batch: list[_Job]) -> None:
        inboxes: dict[int, Inbox | None] = {}
        for job in batch:
            try:
                with db.begin_nested():
                    self._store(db, job, inboxes)
            except IntegrityError as exc:
                # A redelivery raced its twin (in this batch or another process).
                job.result = self._find_duplicate(db, job.message)
                if job.result is None:
                    job.error = exc
            except Exception as exc:  # bad address, unknown inbox: this message only
                job.error = exc

    def _store(self, db: Session, job: _Job, inboxes: dict[int, Inbox | None]) -> None:
        message = job.message
        if message.inbox_id not in inboxes:
            inboxes[message.inbox_id] = db.get(Inbox, message.inbox_id)
        inbox = inboxes[message.inbox_id]
        if inbox is None or not inbox.active:
            raise UnknownInbox(f"inbox {message.inbox_id} does not exist or is disabled")
        contact = resolve_contact(db, message.sender)
        interaction, created = self._thread(db, inbox, contact, message)
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
        db.flush()
        job.result = IngestResult(
            message_id=stored.id,  # type: ignore[arg-type]
            interaction_id=interaction.id,  # type: ignore[arg-type]
            contact_id=contact.id,  # type: ignore[arg-type]
            duplicate=False,
        )
        job.state, job.agent_id, job.created = interaction.state, interaction.agent_id, created

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

    def _find_duplicate(self, db: Session, message: InboundMessage) -> IngestResult | None:
        if not message.source_id:
            return None
        row = (
            db.exec(
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

    def _thread(
        self, db: Session, inbox: Inbox, contact: Contact, message: InboundMessage
    ) -> tuple[Interaction, bool]:
        """Find the interaction this message continues, or open a new one."""
        interaction = self._by_reference(db, inbox, contact, message)
        if interaction is None and ChannelKind(message.channel) in CONVERSATIONAL:
            interaction = (
                db.exec(
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
        db.flush()
        if contact.blocked:
            change_state(db, interaction, InteractionState.CLOSED, reason="contact is blocked")
        else:
            change_state(db, interaction, InteractionState.QUEUED, reason="new contact")
        return interaction, True

    def _by_reference(
        self, db: Session, inbox: Inbox, contact: Contact, message: InboundMessage
    ) -> Interaction | None:
        if message.thread_refs:
            row = (
                db.exec(
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
            tagged = db.get(Interaction, int(match.group(1)))
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
