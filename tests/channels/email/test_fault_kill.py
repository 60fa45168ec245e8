"""Fault test: SIGKILL the real hub while customers' MTAs are sending, restart it, and find
every message exactly once.

The hub runs as ``contacthub run`` in its own process (SQLite under a temporary
HUB_VAR_DIR, or a fresh PostgreSQL database; the SMTP listener enabled). Three clients
send N mails and, like any MTA, retry a message until they get a 250. The hub is killed
mid-stream, twice, so some messages are in flight: some not yet committed (the client
retries and we store them), some committed but not yet acknowledged (the client retries
and the Message-ID dedupes them).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import text

from hub.db import make_engine
from tests.channels.email.helpers import customer_mail
from tests.e2e.hub_process import free_port

N = 60
KILL_AT = (15, 35)  # acknowledged counts at which the hub is SIGKILLed


class Hub:
    """``contacthub run`` in a subprocess (its own session, so we kill exactly it)."""

    def __init__(self, var_dir: Path, database_url: str) -> None:
        self.var_dir = var_dir
        self.database_url = database_url
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = var_dir.parent / "hub.log"

    def start(self) -> None:
        env = {
            **os.environ,
            "HUB_VAR_DIR": str(self.var_dir),
            "HUB_DATABASE_URL": self.database_url,
            "HUB_REDIS_URL": "",
            "HUB_EMAIL_LISTEN": "1",
            "HUB_EMAIL_PORT": str(self.smtp_port),
            "HUB_EMAIL_DOMAINS": "example.com",
            "HUB_EMAIL_AUTO_ACK": "0",
            "HUB_SECRET_KEY": "fault-test-secret-key",
        }
        contacthub = Path(sys.executable).with_name("contacthub")
        self.process = subprocess.Popen(
            [str(contacthub), "run", "--port", str(self.http_port)],
            env=env,
            stdout=open(self.log, "ab"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def wait_ready(self, timeout: float = 120.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the hub exited: {self.log.read_text()[-3000:]}")
            try:
                client = aiosmtplib.SMTP(
                    hostname="127.0.0.1", port=self.smtp_port, start_tls=False, timeout=5
                )
                async with client:
                    await client.noop()
                return
            except (OSError, aiosmtplib.SMTPException):
                await asyncio.sleep(0.2)
        raise AssertionError(f"the hub did not start: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    async def stored_ids(self) -> list[str]:
        """Message-IDs committed in the hub's database (read while it is down or up)."""
        url = self.database_url or f"sqlite+aiosqlite:///{self.var_dir / 'hub.sqlite3'}"
        engine = make_engine(url)
        try:
            async with engine.connect() as db:
                rows = await db.execute(
                    text("SELECT source_id FROM message WHERE source_id LIKE '<fault-%'")
                )
                return [r[0] for r in rows]
        finally:
            await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def hub_database_url(request: pytest.FixtureRequest) -> str:
    """Empty: the embedded SQLite default; else a fresh PostgreSQL database."""
    return "" if request.param == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.mark.slow
async def test_killing_the_hub_mid_stream_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, hub_database_url: str
):
    hub = Hub(tmp_path / "var", hub_database_url)
    hub.start()
    try:
        await hub.wait_ready()
        acknowledged: set[str] = set()
        retries = Counter[str]()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(N):
            queue.put_nowait(i)
        progress = asyncio.Event()

        async def mta() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                message_id = f"<fault-{i}@customer.test>"
                mail = customer_mail(f"Fault {i}", f"message number {i}", message_id=message_id)
                while True:
                    try:
                        await aiosmtplib.send(
                            mail,
                            hostname="127.0.0.1",
                            port=hub.smtp_port,
                            start_tls=False,
                            timeout=10,
                        )
                        break
                    except (OSError, aiosmtplib.SMTPException):
                        retries[message_id] += 1  # no 250: an MTA keeps the mail and retries
                        await asyncio.sleep(0.1)
                acknowledged.add(message_id)
                progress.set()

        senders = [asyncio.create_task(mta()) for _ in range(3)]
        in_flight_committed: set[str] = set()
        for threshold in KILL_AT:
            while len(acknowledged) < threshold:
                progress.clear()
                await progress.wait()
            hub.kill()
            in_flight_committed |= set(await hub.stored_ids()) - acknowledged
            hub.start()
            await hub.wait_ready()
        await asyncio.gather(*senders)

        stored = Counter(await hub.stored_ids())
        expected = {f"<fault-{i}@customer.test>" for i in range(N)}
        assert set(stored) == expected, f"missing: {sorted(expected - set(stored))}"
        assert [m for m, n in stored.items() if n > 1] == []
        assert sum(retries.values()) >= 1  # the kill did interrupt senders
        print(
            f"\nfault test: {N} messages, {len(KILL_AT)} kills, "
            f"{sum(retries.values())} client retries, "
            f"{len(in_flight_committed)} committed but unacknowledged at the kill "
            f"(deduped on redelivery): {sorted(in_flight_committed)}"
        )
    finally:
        hub.stop()
