"""Login throttling through the real app: an account is delayed, then locked (audited);
a guessing address is only slowed, so others behind it still sign in; an admin unlocks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from sqlmodel import col, select

from hub.app import create_app
from hub.login_throttle import ThrottlePolicy, account_wait, client_address
from hub.services import Services
from hub.settings import Settings
from models import AuditEntry, User
from models.base import utcnow
from tests.web.conftest import hx, login

GUESSER = "203.0.113.7"
OFFICE = "198.51.100.9"


@pytest.fixture
async def app(web_database_url: str, tmp_path: Path) -> Litestar:
    return create_app(
        Settings(
            var_dir=tmp_path / "var",
            database_url=web_database_url,
            secret_key="test-secret-key-for-web-tests",
            login_free_attempts=2,
            login_lock_after=4,
            login_first_delay_seconds=30,
            login_lock_seconds=3600,
            login_address_free_failures=3,
            login_address_max_delay_seconds=0.2,
            trusted_proxies="127.0.0.1",  # the test client's address: it names the client
        )
    )


async def attempt(client: httpx.AsyncClient, username: str, password: str, address: str):
    client.cookies.clear()
    await client.get("/login")
    return await client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "_csrf_token": client.cookies.get("csrftoken", ""),
        },
        headers={"x-forwarded-for": f"10.9.9.9, {address}"},  # the left entry is spoofable
        follow_redirects=False,
    )


async def let_the_delay_pass(services: Services, username: str) -> None:
    """Move the last failure back in time instead of sleeping through the delay."""
    async with services.sessionmaker() as db:
        user = (await db.exec(select(User).where(User.username == username))).one()
        user.last_failed_login_at = utcnow() - timedelta(hours=1)
        db.add(user)
        await db.commit()


async def test_an_account_is_delayed_then_locked_and_an_admin_unlocks_it(
    client: httpx.AsyncClient, services: Services
):
    for _ in range(2):  # the free attempts
        wrong = await attempt(client, "alice", "guess", GUESSER)
        assert wrong.status_code == 401
        assert "Wrong username or password." in wrong.text
    delayed = await attempt(client, "alice", "alice-pass", GUESSER)
    assert delayed.status_code == 429  # even the right password waits: nothing is checked
    assert "this account must wait for 30 seconds" in delayed.text

    await let_the_delay_pass(services, "alice")
    assert (await attempt(client, "alice", "guess", GUESSER)).status_code == 401
    await let_the_delay_pass(services, "alice")
    assert (await attempt(client, "alice", "guess", GUESSER)).status_code == 401  # 4th: locks
    await let_the_delay_pass(services, "alice")
    locked = await attempt(client, "alice", "alice-pass", OFFICE)
    assert locked.status_code == 429
    assert "this account is locked for 60 minutes" in locked.text

    async with services.sessionmaker() as db:
        (lock,) = (await db.exec(select(AuditEntry).where(AuditEntry.action == "lock"))).all()
    assert lock.entity == "agents" and lock.after is not None
    assert lock.after["client"] == GUESSER and lock.after["failed_logins"] == 4

    # The guesser's address is slowed, not locked: another user behind it signs in.
    assert services.login_addresses.delay(GUESSER) > 0
    assert services.login_addresses.delay(OFFICE) == 0
    bob = await attempt(client, "bob", "bob-pass", GUESSER)
    assert bob.status_code == 303 and bob.headers["location"] == "/console"

    client.cookies.clear()
    await login(client, "admin")
    users = await client.get("/admin/agents")
    assert "locked until" in users.text
    alice_id = (await _user(services, "alice")).id
    assert f"/admin/agents/{alice_id}/unlock" in users.text
    unlocked = await client.post(f"/admin/agents/{alice_id}/unlock", headers=hx(client))
    assert unlocked.status_code == 200
    assert "Unlocked alice" in unlocked.text
    async with services.sessionmaker() as db:
        entries = (await db.exec(select(AuditEntry).where(AuditEntry.action == "unlock"))).all()
    assert [(e.entity_id, e.before["failed_logins"]) for e in entries] == [(str(alice_id), 4)]  # type: ignore[index]

    back = await attempt(client, "alice", "alice-pass", GUESSER)
    assert back.status_code == 303 and back.headers["location"] == "/console"
    assert (await _user(services, "alice")).failed_logins == 0


async def test_a_right_password_clears_the_count(client: httpx.AsyncClient, services: Services):
    assert (await attempt(client, "carol", "guess", OFFICE)).status_code == 401
    assert (await _user(services, "carol")).failed_logins == 1
    assert (await attempt(client, "carol", "carol-pass", OFFICE)).status_code == 303
    assert (await _user(services, "carol")).failed_logins == 0


async def _user(services: Services, username: str) -> User:
    async with services.sessionmaker() as db:
        return (await db.exec(select(User).where(col(User.username) == username))).one()


def test_delays_double_up_to_the_cap_and_a_lock_outlasts_them() -> None:
    policy = ThrottlePolicy(free_attempts=5, first_delay_seconds=1, max_delay_seconds=60)
    now = utcnow()
    waits = [account_wait(n, now, None, now, policy) for n in range(4, 14)]
    assert waits == [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert account_wait(12, now, now + timedelta(minutes=15), now, policy) == 900


def test_only_a_trusted_proxy_names_the_client() -> None:
    assert client_address("192.0.2.1", "203.0.113.7", "") == "192.0.2.1"
    assert client_address("10.0.0.2", "1.2.3.4, 203.0.113.7", "10.0.0.0/8") == "203.0.113.7"
    # a chain of our own proxies is skipped from the right; the client cannot forge past it
    assert client_address("10.0.0.2", "6.6.6.6, 203.0.113.7, 10.0.0.3", "10.0.0.0/8") == (
        "203.0.113.7"
    )
    assert client_address("10.0.0.2", "", "10.0.0.0/8") == "10.0.0.2"
