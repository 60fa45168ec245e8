"""Fixtures shared by every test package: fresh PostgreSQL databases and Redis prefixes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support import seed_test_demo, unavailable

# Many hubs share this one process with real-time audio tests: keep Python's own garbage
# collector settings (see hub.settings.Settings.tune_gc). Hub subprocesses inherit it too.
os.environ.setdefault("HUB_TUNE_GC", "0")
# Piper renders a text the same way every time (SpeechSettings.tts_variation): a test that
# recognizes a synthesized prompt then hears the same audio on every run, instead of one of
# Piper's noisy renderings, a few in a hundred of which tiny.en mishears.
os.environ.setdefault("HUB_SPEECH_TTS_VARIATION", "0")
# Every hub a test starts opens its SIP endpoint (voice is on by default) on ports the
# system picks, so parallel runs and a hub already on 5060 never collide.
os.environ.setdefault("HUB_VOICE_BIND_PORT", "0")
# Hubs started by tests queue calls directly: with the IVR on, each would load Piper and
# Whisper at start (seconds of CPU), and most take no call. tests/e2e/test_voice_ivr.py and
# tests/hub/test_call_ivr.py turn it on where the IVR is what they test.
os.environ.setdefault("HUB_IVR_ENABLED", "0")


DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _find_local_services() -> dict[str, str]:
    """PostgreSQL and Redis tests run whenever the services answer on their default local
    addresses, not only when CI names them: the README's test command then covers both
    databases on any developer's machine that has them. Returns why each service is used or
    not, for the summary at the end of the run."""
    found: dict[str, str] = {}
    for name, var, default, port in (
        ("PostgreSQL", "HUB_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL, 5432),
        ("Redis", "HUB_TEST_REDIS_URL", DEFAULT_REDIS_URL, 6379),
    ):
        if os.environ.get(var):
            found[name] = f"ran against {os.environ[var]} ({var})"
        elif _answers("127.0.0.1", port):
            os.environ[var] = default
            found[name] = f"ran against {default} (found on its default address)"
        else:
            found[name] = f"skipped: nothing answers on 127.0.0.1:{port} and {var} is not set"
    return found


LOCAL_SERVICES = _find_local_services()


_service_outcomes: dict[str, dict[str, int]] = {}


def _note_service(request: pytest.FixtureRequest, name: str) -> None:
    """Tag the test's reports with the service it used: a user property travels with the
    report from an xdist worker to the process that prints the summary."""
    request.node.user_properties.append(("service", name))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    name = dict(report.user_properties).get("service")
    if name is None or not (report.when == "call" or report.outcome != "passed"):
        return
    if report.when == "teardown" and report.outcome == "skipped":
        return
    counts = _service_outcomes.setdefault(name, {})
    counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Which database and pub/sub tests ran, and why the others did not."""
    terminalreporter.section("services")
    for name, how in LOCAL_SERVICES.items():
        counts = _service_outcomes.get(name, {})
        tally = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "none"
        terminalreporter.write_line(f"{name} tests ({tally}): {how}")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _pg_admin(base: str, *statements: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(base)
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


class _PostgresDatabases:
    """Creates the tests' PostgreSQL databases, and drops them on a thread of its own.

    ``CREATE DATABASE … TEMPLATE`` copies a database that was migrated (and seeded) once per
    session, instead of running every migration again for each test; the copy holds exactly
    what the migrations built. ``DROP DATABASE`` waits for a checkpoint (seconds on a busy
    machine), so drops go to a background thread and the next test starts meanwhile; the
    session waits for them at its end.
    """

    def __init__(self) -> None:
        self.templates: dict[str, str] = {}
        self._dropper: concurrent.futures.ThreadPoolExecutor | None = None
        self._drops: list[concurrent.futures.Future[None]] = []
        self._lock = threading.Lock()

    @staticmethod
    def base() -> str:
        base = os.environ.get("HUB_TEST_POSTGRES_URL")
        if not base:
            unavailable("HUB_TEST_POSTGRES_URL is not set")
        return base.replace("postgresql+asyncpg://", "postgresql://")

    def create(self, template: str | None = None, prefix: str = "hubtest") -> str:
        """A new database (a copy of ``template`` when given); returns its asyncpg URL."""
        import asyncpg

        plain = self.base()
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        try:
            _pg_admin(plain, sql)
        except (OSError, asyncpg.PostgresError) as exc:
            unavailable(f"PostgreSQL at {plain} is not reachable: {exc}")
        return _with_database(plain, name).replace("postgresql://", "postgresql+asyncpg://", 1)

    def template(self, kind: str, prepare: Callable[[str], None]) -> str:
        """The session's ``kind`` template database, made by ``prepare(url)`` on first use."""
        with self._lock:
            if kind not in self.templates:
                url = self.create(prefix=f"hubtemplate_{kind}")
                try:
                    prepare(url)
                except BaseException:
                    self.drop(url)
                    raise
                self.templates[kind] = urlsplit(url).path.lstrip("/")
            return self.templates[kind]

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        plain = self.base()
        if self._dropper is None:
            self._dropper = concurrent.futures.ThreadPoolExecutor(1, "drop-database")
        self._drops.append(
            self._dropper.submit(_pg_admin, plain, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )

    def finish(self) -> None:
        """Drop the templates too, and wait for every drop."""
        for name in self.templates.values():
            self.drop(_with_database(self.base(), name))
        self.templates.clear()
        if self._dropper is not None:
            for done in concurrent.futures.as_completed(self._drops):
                done.result()
            self._dropper.shutdown()
            self._dropper = None
        self._drops.clear()


_POSTGRES = _PostgresDatabases()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _POSTGRES.templates or _POSTGRES._drops:
        _POSTGRES.finish()


def _postgres_database(request: pytest.FixtureRequest, template: str | None) -> Iterator[str]:
    _note_service(request, "PostgreSQL")
    url = _POSTGRES.create(template)
    try:
        yield url
    finally:
        _POSTGRES.drop(url)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (asyncpg URL), dropped afterwards."""
    yield from _postgres_database(request, None)


@pytest.fixture
def migrated_postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database with every migration applied, dropped afterwards."""
    from hub.db import migrate

    _note_service(request, "PostgreSQL")
    template = _POSTGRES.template("migrated", migrate)
    yield from _postgres_database(request, template)


@pytest.fixture
def seeded_postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database holding the demo organisation
    (``<user>-pass``), dropped afterwards."""
    from hub.db import migrate

    def prepare(url: str) -> None:
        migrate(url)
        asyncio.run(seed_test_demo(url))

    _note_service(request, "PostgreSQL")
    template = _POSTGRES.template("seeded", prepare)
    yield from _postgres_database(request, template)


@pytest.fixture
async def redis_url(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, str]]:
    """(Redis URL, a key prefix of this test's own); keys under the prefix are deleted after."""
    _note_service(request, "Redis")
    url = os.environ.get("HUB_TEST_REDIS_URL")
    if not url:
        unavailable("HUB_TEST_REDIS_URL is not set")
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.ping()
    except OSError as exc:
        unavailable(f"Redis at {url} is not reachable: {exc}")
    prefix = f"hubtest:{uuid.uuid4().hex[:12]}:"
    try:
        yield url, prefix
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database holding the demo organisation (``<user>-pass``), made once
    per session; tests copy it (argon2 makes seeding slow on purpose)."""
    from hub.db import migrate

    path = tmp_path_factory.mktemp("seeded") / "hub.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    migrate(url)
    asyncio.run(seed_test_demo(url))
    return path


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with every migration applied, made once per session; tests copy it."""
    from hub.db import migrate

    path = tmp_path_factory.mktemp("migrated") / "hub.sqlite3"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path
