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

from hub.app import create_app
from hub.services import Services
from hub.settings import Settings

BASE_URL = "http://testserver.local"


@pytest.fixture(params=["sqlite", "postgres"])
def web_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database holding the demo organisation (passwords ``<user>-pass``)."""
    if request.param == "sqlite":
        target = tmp_path / "hub.sqlite3"
        shutil.copyfile(request.getfixturevalue("seeded_sqlite"), target)
        return f"sqlite+aiosqlite:///{target}"
    return request.getfixturevalue("seeded_postgres_url")


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
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client; the app's lifespan runs in the test's own event loop, so
    tests may also use ``app.state.services`` (its DB pool and bus) directly."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        # Entered and left in one task: the lifespan's anyio scopes require it.
        async with app.lifespan():
            started.set()
            await stop.wait()

    lifespan = asyncio.create_task(run_lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({lifespan, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if lifespan.done():
        waiter.cancel()
        lifespan.result()  # start-up failed: raise its error here
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=20
        ) as test_client:
            yield test_client
    finally:
        stop.set()
        await lifespan


@pytest.fixture
def services(app: Litestar, client: httpx.AsyncClient) -> Services:
    return app.state.services


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
async def browser(app: Litestar, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser (its own cookies) against the same running app."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=20
    ) as other:
        yield other
