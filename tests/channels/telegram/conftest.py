"""Telegram fixtures: the hub's Services and a local Bot API server (real wire format)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from hub.services import Services
from models import Inbox
from tests.channels.sms.hub_db import database_url  # noqa: F401
from tests.channels.telegram.botapi import LocalBotApi
from tests.hub.conftest import channels_plugin, services  # noqa: F401

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def bot_api() -> Iterator[LocalBotApi]:
    api = LocalBotApi(TOKEN).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
async def telegram_inbox(services: Services) -> Inbox:  # noqa: F811
    async with services.sessionmaker() as db:
        return (await db.exec(select(Inbox).where(Inbox.kind == "telegram"))).one()
