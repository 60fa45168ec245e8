"""Web fixtures: a seeded hub app (SQLite, and PostgreSQL when available) behind
Litestar's test client, with known passwords (``<username>-pass``)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from hub.app import create_app
from hub.db import make_engine, make_sessionmaker, migrate
from hub.seed import seed_demo
from hub.services import Services
from hub.settings import Settings


async def _seed(url: str) -> None:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        await seed_demo(db, password_for=lambda username: f"{username}-pass")
    await engine.dispose()


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate and seed once (argon2 hashing is slow on purpose); each test gets a copy."""
    path = tmp_path_factory.mktemp("seeded") / "hub.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    migrate(url)
    asyncio.run(_seed(url))
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def web_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database holding the demo organisation (passwords ``<user>-pass``)."""
    if request.param == "sqlite":
        target = tmp_path / "hub.sqlite3"
        shutil.copyfile(request.getfixturevalue("seeded_sqlite"), target)
        return f"sqlite+aiosqlite:///{target}"
    url = request.getfixturevalue("postgres_url")
    migrate(url)
    asyncio.run(_seed(url))
    return url


@pytest.fixture
async def app(web_database_url: str, tmp_path: Path) -> Litestar:
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=web_database_url,
        secret_key="test-secret-key-for-web-tests",
        chat_rate_per_minute=8,
        chat_max_attachment_bytes=64 * 1024,
        sse_heartbeat_seconds=0.2,
    )
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app, timeout=20) as test_client:
        yield test_client


@pytest.fixture
def services(client: AsyncTestClient) -> Services:
    return client.app.state.services


async def login(client: httpx.AsyncClient, username: str, password: str | None = None) -> None:
    await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "username": username,
            "password": password or f"{username}-pass",
            "_csrf_token": client.cookies.get("csrftoken", ""),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def hx(client: httpx.AsyncClient) -> dict[str, str]:
    """Headers an htmx request from our pages carries (CSRF token from the cookie)."""
    return {"x-csrftoken": client.cookies.get("csrftoken", ""), "hx-request": "true"}


@pytest.fixture
async def browser(client: AsyncTestClient) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser (its own cookies) against the same running app."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=client.app), base_url=str(client.base_url), timeout=20
    ) as other:
        yield other
