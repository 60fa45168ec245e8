"""The hub's long-lived services, built once per process at start-up.

Handlers reach them through ``request.app.state.services``; background tasks get them
passed in. Each channel adapter the settings enable is started by ``hub.channel_runtime``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar.channels import ChannelsPlugin
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.attachments import AttachmentStore
from hub.db import make_engine, make_sessionmaker
from hub.events import EventBus
from hub.ingest import IngestService
from hub.outbound import Outbox
from hub.presence import PresenceService
from hub.routing.service import RoutingService
from hub.settings import Settings


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    bus: EventBus
    attachments: AttachmentStore
    ingest: IngestService
    outbox: Outbox
    extras: dict[str, Any] = field(default_factory=dict)  # channel adapters and runners
    routing: RoutingService = field(init=False)
    presence: PresenceService = field(init=False)

    def __post_init__(self) -> None:
        self.routing = RoutingService(self)
        self.presence = PresenceService(self)

    @classmethod
    def build(cls, settings: Settings, channels: ChannelsPlugin) -> Services:
        engine = make_engine(settings.resolved_database_url)
        sessionmaker = make_sessionmaker(engine)
        bus = EventBus(channels)
        attachments = AttachmentStore(settings.var_dir / "attachments")
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            bus=bus,
            attachments=attachments,
            ingest=IngestService(sessionmaker, bus, attachments),
            outbox=Outbox(sessionmaker, bus, attachments),
        )

    async def start(self) -> None:
        """Start background work (dispatchers, timers) once the app's event loop runs."""
        await self.outbox.resend_pending()
        await self.routing.start()
        if self.settings.transcribe_voice_notes:
            from hub.voice_notes import VoiceNoteTranscriber

            self.extras["voice_notes"] = transcriber = VoiceNoteTranscriber(self)
            await transcriber.start()

    async def close(self) -> None:
        if "voice_notes" in self.extras:
            await self.extras["voice_notes"].stop()
        await self.routing.stop()
        await self.outbox.close()
        await self.ingest.close()
        await self.engine.dispose()
