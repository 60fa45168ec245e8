"""The hub's long-lived services, built once per process at start-up.

Handlers reach them through ``request.app.state.services``; background tasks get them
passed in. Each channel adapter the settings enable is started by ``hub.channel_runtime``.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any

from litestar.channels import ChannelsPlugin
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.attachments import AttachmentStore
from hub.db import TransactionRunner, WalCheckpointer, make_engine, make_sessionmaker
from hub.events import EventBus
from hub.ingest import IngestService
from hub.jobs import JobRunner
from hub.login_throttle import AddressThrottle
from hub.outbound import Outbox
from hub.presence import PresenceService
from hub.routing.service import RoutingService
from hub.settings import Settings

_frozen = False


# Collect the youngest generation every 50,000 net allocations instead of 700, and the
# oldest a tenth as often as the one below it (the default is 10, 10). Each full collection
# walks every live object: with 500 SSE streams open it held the event loop for 40-90 ms
# every few seconds. Cyclic garbage still goes at the first two generations.
GC_THRESHOLDS = (50_000, 20, 100)


def freeze_startup_objects() -> None:
    """Once per process: move what start-up allocated (modules, mappers, templates) out of
    the collector's reach, and collect less often (``GC_THRESHOLDS``). A full collection
    over start-up objects stalled the event loop for ~85 ms: a tail that every routing and
    SSE latency showed."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    bus: EventBus
    attachments: AttachmentStore
    transactions: TransactionRunner  # one-hop write transactions (ingest, dispatcher)
    ingest: IngestService
    outbox: Outbox
    extras: dict[str, Any] = field(default_factory=dict)  # channel adapters and runners
    routing: RoutingService = field(init=False)
    presence: PresenceService = field(init=False)
    login_addresses: AddressThrottle = field(init=False)  # wrong passwords per client address
    jobs: JobRunner = field(init=False)  # register handlers by kind before or after start

    def __post_init__(self) -> None:
        self.routing = RoutingService(self)
        self.presence = PresenceService(self)
        self.login_addresses = AddressThrottle(self.settings.login_policy)
        settings = self.settings
        self.jobs = JobRunner(
            self.engine,
            self.transactions,
            poll_seconds=settings.jobs_poll_seconds,
            lease_seconds=settings.jobs_lease_seconds,
            concurrency=settings.jobs_concurrency,
            retry_seconds=settings.jobs_retry_seconds,
            name=settings.node_name,
        )

    @classmethod
    def build(cls, settings: Settings, channels: ChannelsPlugin) -> Services:
        engine = make_engine(settings.resolved_database_url)
        sessionmaker = make_sessionmaker(engine)
        bus = EventBus(channels)
        attachments = AttachmentStore(settings.var_dir / "attachments")
        transactions = TransactionRunner(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            bus=bus,
            attachments=attachments,
            transactions=transactions,
            ingest=IngestService(sessionmaker, transactions, bus, attachments),
            outbox=Outbox(sessionmaker, bus, attachments),
        )

    async def start(self) -> None:
        """Start background work (dispatchers, timers) once the app's event loop runs."""
        if self.settings.tune_gc:
            freeze_startup_objects()
        if self.engine.dialect.name == "sqlite":
            self.extras["wal_checkpoint"] = checkpointer = WalCheckpointer(self.engine.url)
            checkpointer.start()
        await self.outbox.resend_pending()
        await self.routing.start()
        await self.presence.start()
        if self.settings.transcribe_voice_notes:
            from hub.voice_notes import VoiceNoteTranscriber

            self.extras["voice_notes"] = transcriber = VoiceNoteTranscriber(self)
            transcriber.register(self.jobs)
        from hub.text_dialogs import TextDialogs

        self.extras["text_dialogs"] = text_dialogs = TextDialogs(self)
        text_dialogs.register(self.jobs)
        if self.settings.qa_transcribe_calls:
            from hub.transcription.service import CallTranscriber

            self.extras["call_transcriber"] = calls = CallTranscriber(self)
            calls.register(self.jobs)
        from hub.retention import Retention  # old recordings and voicemail deleted

        retention = Retention(self)
        retention.register(self.jobs)
        await retention.schedule()
        from hub.reports.delivery import ReportMailer
        from hub.reports.rollups import RollupJob

        self.extras["report_rollups"] = rollups = RollupJob(self)
        rollups.register()
        await rollups.ensure_started()
        ReportMailer(self).register()
        from hub.qa.categories import RERUN_JOB, rerun_handler
        from hub.qa.erasure import RETENTION_JOB, retention_handler, schedule_retention

        self.jobs.register(RERUN_JOB, rerun_handler(self.sessionmaker))
        self.jobs.register(RETENTION_JOB, retention_handler(self))
        if self.settings.qa_transcript_retention_days or self.settings.qa_evaluation_retention_days:
            async with self.sessionmaker() as db:
                await schedule_retention(db)
                await db.commit()
        await self.jobs.start()
        if self.settings.qa_index_enabled:
            from hub.qa.indexer import QaIndexer

            self.extras["qa_indexer"] = indexer = QaIndexer(self)
            await indexer.start()

    async def close(self) -> None:
        if "qa_indexer" in self.extras:
            await self.extras.pop("qa_indexer").stop()
        await self.jobs.stop()  # first: handlers use everything below
        if "voice_notes" in self.extras:
            await self.extras["voice_notes"].close()
        if "text_dialogs" in self.extras:
            await self.extras["text_dialogs"].close()
        if "call_transcriber" in self.extras:
            await self.extras["call_transcriber"].close()
        await self.presence.stop()
        await self.routing.stop()
        await self.outbox.close()
        await self.ingest.close()
        self.transactions.dispose()
        await self.engine.dispose()
        if "wal_checkpoint" in self.extras:
            await self.extras.pop("wal_checkpoint").stop()
