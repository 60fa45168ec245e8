"""Email fixtures: the hub's services (SQLite + PostgreSQL), our SMTP listener on a free
port, and a real aiosmtpd "relay" sink that receives what the hub sends."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.runtime import EmailRuntime, start_email
from channels.email.settings import EmailSettings
from hub.channel_runtime import stop_channels
from hub.services import Services
from tests.hub.conftest import channels_plugin, database_url, services  # noqa: F401


@dataclass
class Sink:
    """A real SMTP server that keeps every message; ``replies`` scripts its DATA answers."""

    port: int = 0
    received: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # consumed first, then "250 OK"
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.replies:
            return self.replies.pop(0)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append((envelope, parsed))  # type: ignore[arg-type]
        self.arrived.set()
        return "250 OK"

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        async def enough() -> None:
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), timeout)
        return [m for _, m in self.received]


@contextlib.asynccontextmanager
async def serving(**smtp_options: Any) -> AsyncIterator[Sink]:
    """A ``Sink`` listening on a free port; ``smtp_options`` go to aiosmtpd's ``SMTP``."""
    box = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(box, hostname="relay.test", loop=loop, **smtp_options), "127.0.0.1", 0
    )
    box.port = server.sockets[0].getsockname()[1]
    try:
        yield box
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with serving() as box:
        yield box


def email_settings(sink_port: int, **overrides: object) -> EmailSettings:
    values: dict[str, object] = {
        "listen": True,
        "port": 0,
        "hostname": "hub.test",
        "domains": ("example.com",),
        "routes": {"support": "Support email", "fax": "Fax"},
        "relay_host": "127.0.0.1",
        "relay_port": sink_port,
        "backoff_seconds": 0.01,
        "max_message_bytes": 200_000,
        "max_attachment_bytes": 50_000,
    }
    values.update(overrides)
    return EmailSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def email_runtime(
    services: Services,  # noqa: F811
    sink: Sink,
) -> AsyncIterator[EmailRuntime]:
    runtime = await start_email(services, email_settings(sink.port))
    try:
        yield runtime
    finally:
        await services.outbox.close()
        await stop_channels(services)
