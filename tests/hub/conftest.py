"""Hub fixtures: a migrated database (SQLite, and PostgreSQL when available) and Services."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.channels import ChannelsPlugin

from hub.events import make_backend, make_channels_plugin
from hub.seed import seed_demo
from hub.services import Services
from hub.settings import Settings
from tests.support import cached_hash, demo_password


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests run on embedded SQLite and on PostgreSQL: a migrated database, copied
    from the session's template (tests/conftest.py)."""
    if request.param == "sqlite":
        target = tmp_path / "hub.sqlite3"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), target)
        return f"sqlite+aiosqlite:///{target}"
    return request.getfixturevalue("migrated_postgres_url")


@pytest.fixture
async def channels_plugin() -> AsyncIterator[ChannelsPlugin]:
    plugin = make_channels_plugin(make_backend(""))
    await plugin._on_startup()
    try:
        yield plugin
    finally:
        await plugin._on_shutdown()


@pytest.fixture
async def services(
    database_url: str, tmp_path: Path, channels_plugin: ChannelsPlugin
) -> AsyncIterator[Services]:
    settings = Settings(var_dir=tmp_path / "var", database_url=database_url)
    settings.ensure_dirs()
    built = Services.build(settings, channels_plugin)
    async with built.sessionmaker() as db:
        await seed_demo(db, password_for=demo_password, hasher=cached_hash)
    try:
        yield built
    finally:
        await built.close()
