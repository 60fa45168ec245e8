"""SMS fixtures: the hub's Services (SQLite and PostgreSQL) and a real SMSC (smpp34's server)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import smpp34
from sqlmodel import select

from hub.services import Services
from models import Inbox
from tests.channels.sms.hub_db import database_url  # noqa: F401
from tests.e2e.hub_process import free_port
from tests.hub.conftest import channels_plugin, services  # noqa: F401


@pytest.fixture
async def sms_inbox(services: Services) -> Inbox:  # noqa: F811
    async with services.sessionmaker() as db:
        return (await db.exec(select(Inbox).where(Inbox.kind == "sms"))).one()


@dataclass
class Smsc:
    """smpp34's SMSC, with its event stream sorted into queues for the test to read.

    Every submit_sm is accepted with a fresh message id ("smsc-1", "smsc-2"…) and kept.
    """

    server: smpp34.Server
    port: int
    binds: asyncio.Queue[smpp34.Esme] = field(default_factory=asyncio.Queue)
    submits: asyncio.Queue[tuple[str, smpp34.SubmitSmEvent]] = field(default_factory=asyncio.Queue)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    reject_with: int | None = None

    async def pump(self) -> None:
        while True:
            event = await self.server.next()
            if isinstance(event, smpp34.Esme):
                await self.binds.put(event)
            elif isinstance(event, smpp34.SubmitSmEvent):
                if self.reject_with is not None:
                    event.reject(self.reject_with)
                    continue
                message_id = f"smsc-{next(self.ids)}"
                event.accept(message_id)
                await self.submits.put((message_id, event))

    async def esme(self) -> smpp34.Esme:
        return await asyncio.wait_for(self.binds.get(), 10)

    async def submitted(self) -> tuple[str, smpp34.SubmitSmEvent]:
        return await asyncio.wait_for(self.submits.get(), 10)


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    port = free_port()
    server = smpp34.Server(host="127.0.0.1", port=port, system_id="TESTSMSC")
    await server.start()
    peer = Smsc(server, port)
    pump = asyncio.create_task(peer.pump())
    try:
        yield peer
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        # smpp34 has been seen hanging at shutdown: bound it.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.stop(), 5)
