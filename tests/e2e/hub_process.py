"""A real hub process for browser tests and benchmarks: seeded SQLite under a temp
``HUB_VAR_DIR``, uvicorn with the app factory on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from hub.db import make_engine, make_sessionmaker, migrate
from hub.seed import seed_demo
from tests.ports import free_port, rtp_range

ROOT = Path(__file__).resolve().parents[2]


def password(username: str) -> str:
    return f"{username}-pass"


def sip_password(username: str) -> str:
    return f"{username}-sip"


def seed_database(path: Path) -> None:
    """Migrate and seed a SQLite file with known passwords (``<username>-pass``, and
    ``<username>-sip`` for the SIP phones)."""
    url = f"sqlite+aiosqlite:///{path}"
    migrate(url)

    async def seed() -> None:
        engine = make_engine(url)
        async with make_sessionmaker(engine)() as db:
            await seed_demo(db, password_for=password, sip_password_for=sip_password)
        await engine.dispose()

    asyncio.run(seed())


def free_sip_port() -> int:
    """A port free for both UDP and TCP (the hub's SIP endpoint binds both)."""
    return free_port()


def voice_env() -> dict[str, str]:
    """``HUB_VOICE_*`` for a hub under test: a free SIP port and an RTP range of its own."""
    low, high = rtp_range()
    return {
        "HUB_VOICE_BIND_PORT": str(free_sip_port()),
        "HUB_VOICE_RTP_PORT_MIN": str(low),
        "HUB_VOICE_RTP_PORT_MAX": str(high),
    }


@contextmanager
def hub_server(
    var_dir: Path, seeded: Path | None = None, **env_overrides: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start ``uvicorn hub.app:create_app`` and yield (base URL, process) once /health answers."""
    var_dir.mkdir(parents=True, exist_ok=True)
    database = var_dir / "hub.sqlite3"
    if seeded is not None:
        shutil.copyfile(seeded, database)
    elif not database.exists():  # an existing database is a restart: kept as it is
        seed_database(database)
    port = free_port()
    env = {
        **os.environ,
        "HUB_VAR_DIR": str(var_dir),
        "HUB_DATABASE_URL": "",
        "HUB_REDIS_URL": "",
        "HUB_SECRET_KEY": "e2e-secret-key",
        "HUB_DISPATCH_INTERVAL_SECONDS": "0.5",
        "HUB_SSE_HEARTBEAT_SECONDS": "5",
        "HUB_VOICE_DRAIN_SECONDS": "2",
        # call transcription: niced workers, but not SCHED_IDLE, which a busy test machine
        # could starve for minutes
        "HUB_QA_TRANSCRIBE_IDLE": "false",
        "HUB_PORT": str(port),  # the hub reaches itself here (a dialog's "/" lookups)
        **voice_env(),  # pass HUB_VOICE_BIND_PORT to know where SIP listens
        **env_overrides,
    }
    log = open(var_dir / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "hub.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--loop",
            "asyncio",  # as `contacthub run` (aiosipua's UDP transport needs it)
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: see the end
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"hub exited: {(var_dir / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("hub did not start within 60 s")
            time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # A hub killed before its shutdown finished leaves its children (the transcription
        # pool's spawned workers, 350-450 MB each) waiting for work forever, slowing every
        # later test on the machine: end whatever is left of its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
