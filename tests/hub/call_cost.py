"""What one inbound call costs the database: SQL statements, commits and rollbacks that
the call's own tasks issue, from the INVITE to *queued* and to *offered*.

A real ``VoiceRuntime`` (SIP endpoint, call service, the demo phone menu on the speech
IVR) runs in this process over ``Services`` on SQLite; SIPp calls it (the bench's
``hub_caller.xml``: the key "1" by RFC 4733 1.5 s after the answer). The call's handler
runs inside a context that names it (a ``ContextVar``: tasks it starts, the greenlets
SQLAlchemy runs its statements in and ``asyncio.to_thread`` all inherit it), so work of
other calls and the hub's timers is told apart without timing. The dispatcher's pass that
makes the offer runs in routing's own task and is counted on its own
(``CallCost.dispatch``).

Used by ``tests/hub/test_call_path_cost.py`` (the regression bound) and
``bench/call_path_cost.py`` (the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

ROOT = Path(__file__).resolve().parents[2]
SIPP_DIR = ROOT / "bench" / "sipp"
DID = "+15550100"

Kind = str  # "statement" | "commit" | "rollback"


@dataclass
class Tally:
    """Everything one scope (a call, or routing's dispatcher) did on the database."""

    events: list[tuple[float, Kind, str]] = field(default_factory=list)

    def add(self, kind: Kind, sql: str = "") -> None:
        self.events.append((time.monotonic(), kind, sql))

    def until(self, moment: float) -> dict[str, int]:
        return _counts(e for e in self.events if e[0] <= moment)

    def total(self) -> dict[str, int]:
        return _counts(self.events)

    def statements(self, moment: float = float("inf")) -> list[str]:
        return [sql for at, kind, sql in self.events if kind == "statement" and at <= moment]


def _counts(events: Any) -> dict[str, int]:
    counts = {"statements": 0, "commits": 0, "rollbacks": 0}
    for _at, kind, _sql in events:
        counts[f"{kind}s"] += 1
    return counts


SCOPE: ContextVar[Tally | None] = ContextVar("call_cost_scope", default=None)


class SqlCounter:
    """Listens on every ``Engine`` (the async engine's, and the transaction runner's
    plain pysqlite one) and files each statement, commit and rollback under the scope of
    the context that issued it. Also notes when an interaction's state change to
    ``queued``/``offered`` was committed (``reached``)."""

    def __init__(self) -> None:
        self.reached: dict[tuple[int, str], float] = {}
        self._pending: ContextVar[list[tuple[int, str]] | None] = ContextVar(
            "call_cost_pending", default=None
        )
        self._pending_by_conn: dict[int, list[tuple[int, str]]] = {}
        self._listeners: list[tuple[str, Callable[..., None]]] = [
            ("before_cursor_execute", self._statement),
            ("commit", self._commit),
            ("rollback", self._rollback),
        ]

    def __enter__(self) -> SqlCounter:
        for name, fn in self._listeners:
            event.listen(Engine, name, fn)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, fn in self._listeners:
            event.remove(Engine, name, fn)

    def _statement(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        tally = SCOPE.get()
        if tally is not None:
            tally.add("statement", statement)
        head = statement.lstrip()
        if head.upper().startswith("INSERT INTO INTERACTIONEVENT"):
            columns = [c.strip() for c in head[head.index("(") + 1 : head.index(")")].split(",")]
            rows = params if many else [params]
            for row in rows:
                values = list(row.values()) if isinstance(row, dict) else list(row)
                for start in range(0, len(values), len(columns)):
                    one = dict(zip(columns, values[start : start + len(columns)], strict=False))
                    state = one.get("to_state")
                    if state in ("queued", "offered", "active"):
                        self._pending_by_conn.setdefault(id(conn.connection), []).append(
                            (int(one["interaction_id"]), str(state))
                        )

    def _commit(self, conn: Any) -> None:
        tally = SCOPE.get()
        if tally is not None:
            tally.add("commit")
        now = time.monotonic()
        for key in self._pending_by_conn.pop(id(conn.connection), []):
            self.reached.setdefault(key, now)

    def _rollback(self, conn: Any) -> None:
        tally = SCOPE.get()
        if tally is not None:
            tally.add("rollback")
        self._pending_by_conn.pop(id(conn.connection), None)


@dataclass
class CallCost:
    interaction_id: int
    to_queued: dict[str, int]
    to_offered: dict[str, int] | None
    whole_call: dict[str, int]
    statements_to_queued: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "interaction_id": self.interaction_id,
            "to_queued": self.to_queued,
            "to_offered": self.to_offered,
            "whole_call": self.whole_call,
        }


class CallHarness:
    """Services + VoiceRuntime in this process, and a SIPp caller per ``call``."""

    def __init__(self, tmp: Path, services: Any, runtime: Any, counter: SqlCounter) -> None:
        self.tmp = tmp
        self.services = services
        self.runtime = runtime
        self.counter = counter
        self.scopes: dict[str, Tally] = {}  # SIP Call-ID → tally
        self.dispatch = Tally()
        self.last_tallies: dict[int, Tally] = {}  # interaction → tally, of the last costs()
        self._workdir = tmp / "sipp"
        self._workdir.mkdir(exist_ok=True)
        if not (self._workdir / "pcap").exists():
            (self._workdir / "pcap").symlink_to("/usr/share/sip-tester")
        (self._workdir / "callers.csv").write_text(
            "SEQUENTIAL\n" + "".join(f"+1212555{i:04d};\n" for i in range(1000))
        )
        calls = runtime.calls
        inner = calls.on_call

        async def scoped(call: Any) -> None:
            tally = self.scopes.setdefault(call.call_id, Tally())
            SCOPE.set(tally)
            await inner(call)

        runtime.endpoint.on_call = scoped
        routing = services.routing
        dispatch_once = routing._dispatch_once

        async def scoped_dispatch() -> Any:
            token = SCOPE.set(self.dispatch)
            try:
                return await dispatch_once()
            finally:
                SCOPE.reset(token)

        routing._dispatch_once = scoped_dispatch

    async def call(self, hold_ms: int = 500, calls: int = 1, rate: float = 1.0) -> None:
        """SIPp callers that key "1" and hang up after the menu, hold prompt and ``hold_ms``."""
        port = self.runtime.endpoint.port
        proc = await asyncio.create_subprocess_exec(
            "sipp",
            "-sf",
            str(SIPP_DIR / "hub_caller.xml"),
            f"127.0.0.1:{port}",
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-s",
            DID,
            "-inf",
            "callers.csv",
            "-m",
            str(calls),
            "-l",
            str(calls),
            "-r",
            f"{rate:g}",
            "-d",
            str(hold_ms),
            "-nostdin",
            "-timeout",
            f"{int(calls / rate + 120)}s",
            "-timeout_error",
            cwd=self._workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert await proc.wait() == 0, "SIPp's call failed"
        deadline = time.monotonic() + 60
        while self.runtime.calls.live and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def costs(self) -> list[CallCost]:
        from sqlmodel import select

        from models import CallLeg

        async with self.services.sessionmaker() as db:
            legs = (await db.exec(select(CallLeg.sip_call_id, CallLeg.interaction_id))).all()
        by_call = dict(legs)
        out = []
        self.last_tallies = {}
        for call_id, tally in self.scopes.items():
            interaction_id = by_call.get(call_id)
            if interaction_id is None:
                continue
            self.last_tallies[interaction_id] = tally
            queued = self.counter.reached.get((interaction_id, "queued"))
            offered = self.counter.reached.get((interaction_id, "offered"))
            out.append(
                CallCost(
                    interaction_id,
                    tally.until(queued) if queued else {},
                    tally.until(offered) if offered else None,
                    tally.total(),
                    tally.statements(queued) if queued else [],
                )
            )
        self.scopes.clear()
        return out


async def ivr_ready(runtime: Any, within: float = 180.0) -> None:
    """The IVR's speech engines loaded and the demo menu's prompts rendered."""
    await asyncio.wait_for(runtime.ivr.speech(), within)


@contextlib.asynccontextmanager
async def call_harness(tmp: Path, **settings: Any) -> AsyncIterator[CallHarness]:
    """A seeded SQLite hub's services and voice runtime in this process, counted."""
    from channels.voice.runtime import VoiceRuntime, voice_settings
    from hub.db import migrate
    from hub.events import make_backend, make_channels_plugin
    from hub.seed import seed_demo
    from hub.services import Services
    from hub.settings import Settings
    from tests.e2e.hub_process import voice_env
    from tests.support import cached_hash, demo_password

    if shutil.which("sipp") is None:
        raise RuntimeError("SIPp (sip-tester) is not installed")
    url = f"sqlite+aiosqlite:///{tmp / 'hub.sqlite3'}"
    await asyncio.to_thread(migrate, url)
    plugin = make_channels_plugin(make_backend(""))
    await plugin._on_startup()
    settings.setdefault("ivr_enabled", True)  # the tests' default is off (tests/conftest.py)
    hub_settings = Settings(var_dir=tmp / "var", database_url=url, **settings)
    hub_settings.ensure_dirs()
    services = Services.build(hub_settings, plugin)
    async with services.sessionmaker() as db:
        await seed_demo(db, password_for=demo_password, hasher=cached_hash)
    await services.start()
    env = {**os.environ, **voice_env(), "HUB_VOICE_TRANSPORTS": "udp"}
    runtime = VoiceRuntime(services, voice_settings(services, env))
    await runtime.start()
    services.extras["voice"] = runtime
    try:
        with SqlCounter() as counter:
            yield CallHarness(tmp, services, runtime, counter)
    finally:
        await runtime.stop(2.0)
        await services.close()
        await plugin._on_shutdown()


def dump(costs: list[CallCost]) -> str:
    return json.dumps([c.as_dict() for c in costs])
