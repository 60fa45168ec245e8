"""Ingest: every channel's inbound message becomes a committed Message on an Interaction.

The contract (``channels.base.Ingestor``): ``ingest`` returns only after commit, so the
adapter may then acknowledge to its peer. A redelivery (same inbox and ``source_id``) is
stored once and reported as a duplicate. Events are published after the commit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import DeliveryUpdate, InboundMessage, IngestResult
from hub.attachments import AttachmentStore
from hub.db import TransactionRunner
from hub.delivery import apply_receipt
from hub.events import (
    ROUTING_TOPIC,
    SUPERVISOR_TOPIC,
    EventBus,
    agent_topic,
    interaction_topic,
)
from hub.ingest_batch import UnknownInbox as UnknownInbox
from hub.ingest_batch import store_batch
from hub.jobs import enqueue
from hub.tasks import cancel_and_wait
from hub.text_dialogs import TEXT_DIALOG_JOB
from hub.voice_notes import VOICE_NOTE_JOB
from models import InteractionState


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
    are taken by one writer task and stored in one transaction by ``hub.ingest_batch``:
    set-based statements for the whole batch, and a savepoint per message only when the
    batch as a whole fails, so one bad message fails alone and a redelivery racing its twin
    rolls back only itself. Every caller still gets its answer only after the commit that
    holds its message. On SQLite the batch holds the single write lock for its whole
    transaction.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        writer: TransactionRunner,
        bus: EventBus,
        attachments: AttachmentStore,
        *,
        max_batch: int = 64,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._transactions = writer
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
        await cancel_and_wait(self._writer)

    async def _write_batches(self) -> None:
        while True:
            batch = [await self._jobs.get()]
            while len(batch) < self._max_batch and not self._jobs.empty():
                batch.append(self._jobs.get_nowait())
            try:
                # One transaction (one thread hop on SQLite) for the whole batch.
                await self._transactions.run(self._store_batch, batch)
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

    def _store_batch(self, db: Session, batch: list[_Job]) -> None:
        outcomes = store_batch(db.connection(), [job.message for job in batch], self._attachments)
        for job, outcome in zip(batch, outcomes, strict=True):
            job.result, job.error = outcome.result, outcome.error
            job.state, job.agent_id, job.created = outcome.state, outcome.agent_id, outcome.created
            if (
                job.result is not None
                and not job.result.duplicate
                and job.message.meta.get("transcribe")
            ):  # in the same transaction as the message: a stored note is transcribed
                enqueue(db, VOICE_NOTE_JOB, {"message_id": job.result.message_id})
            if (
                job.result is not None
                and not job.result.duplicate
                and job.state == InteractionState.SELF_SERVICE
            ):  # the conversation is with its dialog: the next step answers this message
                enqueue(db, TEXT_DIALOG_JOB, {"interaction_id": job.result.interaction_id})

    async def update_delivery(self, update: DeliveryUpdate) -> bool:
        """Apply a DLR/bounce/status callback; False when no outbound message matches."""
        applied = await self._transactions.run(apply_receipt, update)
        if applied is None:
            return False
        topic = interaction_topic(applied.interaction_id)
        await self._bus.publish(topic, "message-status", message_id=applied.message_id)
        return True

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
            await self._bus.publish(
                ROUTING_TOPIC, "interaction", interaction_id=result.interaction_id
            )
            await self._bus.publish(
                SUPERVISOR_TOPIC, "queue", interaction_id=result.interaction_id, created=created
            )
