"""A database fixture for channel tests: SQLite migrated and seeded once per session and
copied per test (argon2 makes seeding slow on purpose), PostgreSQL fresh per test."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from hub.db import make_engine, make_sessionmaker, migrate
from hub.seed import seed_demo


async def _seed(url: str) -> None:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        await seed_demo(db, password_for=lambda username: f"{username}-pass")
    await engine.dispose()


@pytest.fixture(scope="session")
def seeded_hub_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seeded-hub") / "hub.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    migrate(url)
    asyncio.run(_seed(url))
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests on embedded SQLite and on PostgreSQL (seeded by ``services``)."""
    if request.param == "sqlite":
        target = tmp_path / "hub.sqlite3"
        shutil.copyfile(request.getfixturevalue("seeded_hub_sqlite"), target)
        return f"sqlite+aiosqlite:///{target}"
    url = request.getfixturevalue("postgres_url")
    migrate(url)
    return url
