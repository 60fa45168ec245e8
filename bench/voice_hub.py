"""``bench/voice.py --hub``: SIPp load through a real running hub, against the bare endpoint.

The hub is ``contacthub run`` as a child process over a temp var dir: the demo seed, plus
as many bench agents as the largest bridged level (SIP logins, READY, voice capacity 1,
skill "general"), and the General queue's wrap-up shortened to 2 s so agents are free again
for the next level. Two kinds of load, each stepped up level by level until a level fails
(retried ``--retries`` times):

- **ivr_queue**: callers held in the IVR and the queue (``bench/sipp/hub_caller.xml``): the
  demo phone menu answers, the caller keys "1" (General), hears the hold prompt and music
  on hold while talking (g711a.pcap) and hangs up after ``--hold-ms``. Nobody is ready
  (the hub has no bench agents then), so every call waits in the queue. A level holds with
  0 failed calls (SIPp exit 0; every call answered, its "1" in the IVR trace, queued, and
  its leg closed), >= 99 % of the 246 packets each caller sent counted on its leg, and
  the hub's legs sent >= 99 % of the 20 ms frames their answered time calls for (the
  bare endpoint's equivalent: its clock's frames sent on time).
- **bridged**: callers bridged to agents and recorded (``hub_talker.xml`` and
  ``agent_phone.xml``): the key "1", then 28.8 s of g711a.pcap plus ``--talk-tail-ms``. The
  agents' phones are one SIPp UAS registered under every bench agent's extension; each
  offer rings a phone, which picks up at once, and picking up accepts the offer (the hub's
  own path, ``hub.calls``). A level holds when every call reached an agent (an answered
  agent leg, the interaction active then in wrap-up, the recording complete with both
  legs), >= 99 % of the callers' 954 packets were counted, and the agent legs lost
  < 1 % by RTP sequence numbers (RFC 3550; the phones talk until hung up).

The bare endpoint (``bench.voice.Bench``, in this process) then does the same work at the
same levels: the same caller scenario; answer, record, a looping prompt until the digit;
for ``bridged`` it also rings a registered phone and bridges. ``ratio`` is the hub's largest
holding level over the bare endpoint's.

Per level: SIPp's own CPU (utime + stime: callers from ``RUSAGE_CHILDREN`` once reaped,
the long-lived phone UAS from ``/proc/<pid>/stat``), the hub process's CPU from
``/proc``, the web loop's lag as ``GET /health`` latency sampled every 100 ms (a sync
handler with no I/O, so its latency is the time the loop took to get to it), and the set-up
rate (answered calls per second while the level ramped up).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from voice import Bench, children_cpu_s, emit  # bench/ is the script's folder

from channels.voice.call import Call, CallEvent, CallState
from channels.voice.sip_endpoint import CallFailed

ROOT = Path(__file__).resolve().parent.parent
SIPP = ROOT / "bench" / "sipp"
DID = "+15550100"  # the demo seed's phone inbox (hub.seed.DEMO_DID)
IVR_PACKETS = 10 + 236  # hub_caller.xml: the digit and g711a.pcap
TALK_PACKETS = 10 + 4 * 236  # hub_talker.xml: the digit and g711a.pcap four times
TALK_BASE_S = 1.5 + 2.5 + 4 * 7.2  # hub_talker.xml before -d
IVR_BASE_S = 1.5 + 1.5 + 7.2  # hub_caller.xml before -d
CLK_TCK = os.sysconf("SC_CLK_TCK")
EXT_BASE = 5000


# --------------------------------------------------------------------------- measuring


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a live process, from /proc (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pct(values: list[float], q: float, digits: int = 1) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], digits)


class LagProbe:
    """``GET /health`` every 100 ms while the level runs: the web loop's lag."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                start = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    await client.get(f"{self.base}/health")
                took = time.perf_counter() - start
                self.samples.append(took * 1000)
                await asyncio.sleep(max(0.0, 0.1 - took))

    def start(self) -> None:
        self.samples = []
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        s = self.samples
        return {
            "health_samples": len(s),
            "health_ms_p50": pct(s, 0.5),
            "health_ms_p95": pct(s, 0.95),
            "health_ms_p99": pct(s, 0.99),
            "health_ms_max": round(max(s), 1) if s else None,
        }


async def sipp(
    workdir: Path, scenario: str, target: str | None, *args: str, log: str = "sipp"
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "sipp",
        "-sf",
        str(SIPP / scenario),
        *([target] if target else []),
        "-i",
        "127.0.0.1",
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(workdir / f"{log}-errors.log"),
        *args,
        cwd=workdir,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def write_inputs(workdir: Path, callers: int, agents: int) -> dict[str, str]:
    """SIPp -inf files: callers' numbers, and agents' extensions with SIP passwords."""
    (workdir / "callers.csv").write_text(
        "SEQUENTIAL\n" + "".join(f"+1212555{i % 10000:04d};\n" for i in range(callers))
    )
    creds = {str(EXT_BASE + i): f"bench-sip-{i}" for i in range(agents)}
    (workdir / "agents.csv").write_text(
        "SEQUENTIAL\n"
        + "".join(
            f"{ext};[authentication username={ext} password={pw}];\n" for ext, pw in creds.items()
        )
    )
    return creds


# --------------------------------------------------------------------------- the hub


async def add_agents(url: str, creds: dict[str, str]) -> None:
    """Bench agents, READY with a SIP login; General's wrap-up ends after 2 s."""
    from sqlmodel import select

    from hub.db import make_engine, make_sessionmaker
    from models import Agent, AgentSkill, Queue, Role, Skill, User
    from models.base import utcnow

    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        general = (await db.exec(select(Queue).where(Queue.name == "General"))).one()
        general.wrapup_seconds = 2
        db.add(general)
        skill = (await db.exec(select(Skill).where(Skill.name == "general"))).one()
        users = [
            User(
                username=f"bench{ext}",
                display_name=f"Bench agent {ext}",
                password_hash="!",  # nobody logs in: the phone picks up
                role=Role.AGENT,
            )
            for ext in creds
        ]
        db.add_all(users)
        await db.flush()
        now = utcnow()
        agents = [
            Agent(
                user_id=user.id,  # type: ignore[arg-type]
                capacity={"voice": 1},
                presence="ready",
                presence_since=now,
                idle_since=now,
                extension=ext,
                sip_password=pw,
            )
            for user, (ext, pw) in zip(users, creds.items(), strict=True)
        ]
        db.add_all(agents)
        await db.flush()
        db.add_all(AgentSkill(agent_id=a.id, skill_id=skill.id, level=1) for a in agents)  # type: ignore[arg-type]
        await db.commit()
    await engine.dispose()


class Hub:
    """``contacthub run`` in a temp var dir, on free ports, with a seeded database."""

    def __init__(
        self,
        var: Path,
        creds: dict[str, str],
        rtp_range: tuple[int, int],
        *,
        seeded: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        from tests.e2e.hub_process import free_port, free_sip_port, seed_database

        self.var = var
        self.db = var / "hub.sqlite3"
        if not seeded:
            var.mkdir(parents=True)
            seed_database(self.db)
        if creds:
            asyncio.run(add_agents(f"sqlite+aiosqlite:///{self.db}", creds))
        self.http_port, self.sip_port = free_port(), free_sip_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        environ = {
            **os.environ,
            "HUB_VAR_DIR": str(var),
            "HUB_PORT": str(self.http_port),
            "HUB_VOICE_BIND_PORT": str(self.sip_port),
            "HUB_VOICE_RTP_PORT_MIN": str(rtp_range[0]),
            "HUB_VOICE_RTP_PORT_MAX": str(rtp_range[1]),
            "HUB_VOICE_DRAIN_SECONDS": "2",
            "HUB_PRESENCE_GRACE_SECONDS": "86400",  # bench agents have no console open
            **(env or {}),
        }
        for name in ("HUB_DATABASE_URL", "HUB_REDIS_URL"):
            environ.pop(name, None)
        self.log = open(var / "run.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from hub.cli import main; main()", "run"],
            cwd=ROOT,
            env=environ,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise RuntimeError((var / "run.log").read_text()[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("contacthub run did not start within 120 s")
            time.sleep(0.3)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    def cpu_s(self) -> float:
        return proc_cpu_s(self.process.pid) or 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    # -- reading what the hub stored ----------------------------------------------------

    def query(self, sql: str, *params: object) -> list[tuple]:
        with contextlib.closing(
            sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        ) as conn:
            return conn.execute(sql, params).fetchall()

    def last_interaction(self) -> int:
        return self.query("SELECT coalesce(max(id), 0) FROM interaction")[0][0]

    def open_customer_legs(self, after: int) -> int:
        return self.query(
            "SELECT count(*) FROM callleg WHERE kind = 'customer' AND interaction_id > ?"
            " AND answered_at IS NOT NULL AND ended_at IS NULL",
            after,
        )[0][0]

    def ready_agents(self) -> int:
        return self.query(
            "SELECT count(*) FROM agent WHERE presence = 'ready' AND extension >= ?",
            str(EXT_BASE),
        )[0][0]

    async def settle(self, after: int, within: float = 90.0) -> None:
        """Wait until the level's legs are closed (the hub writes them after the BYEs)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            rows = self.query(
                "SELECT count(*) FROM callleg WHERE interaction_id > ? AND ended_at IS NULL",
                after,
            )
            if rows[0][0] == 0:
                return
            await asyncio.sleep(0.5)


def stamp(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def setup_rate(answered: list[float]) -> float | None:
    answered = sorted(answered)
    if len(answered) < 2 or answered[-1] == answered[0]:
        return None
    return round((len(answered) - 1) / (answered[-1] - answered[0]), 1)


# --------------------------------------------------------------------------- hub levels


async def hub_level(
    hub: Hub,
    workdir: Path,
    kind: str,
    calls: int,
    rate: float,
    hold_ms: int,
    phone_pid: int | None = None,
) -> dict[str, Any]:
    """One level through the hub: ``kind`` is "ivr_queue" or "bridged"."""
    scenario, per_call_s = (
        ("hub_caller.xml", IVR_BASE_S) if kind == "ivr_queue" else ("hub_talker.xml", TALK_BASE_S)
    )
    after = hub.last_interaction()
    probe = LagProbe(hub.base)
    probe.start()
    hub_cpu0, wall0 = hub.cpu_s(), time.monotonic()
    phone_cpu0 = proc_cpu_s(phone_pid) if phone_pid else None
    sipp_cpu0 = children_cpu_s()
    proc = await sipp(
        workdir,
        scenario,
        hub.target,
        "-s",
        DID,
        "-inf",
        "callers.csv",
        "-p",
        "0",
        "-mp",
        "10000",
        "-m",
        str(calls),
        "-l",
        str(calls),
        "-r",
        f"{rate:g}",
        "-d",
        str(hold_ms),
        "-timeout",
        f"{int(calls / rate + per_call_s + hold_ms / 1000 + 90)}s",
        "-timeout_error",
        "-max_socket",
        "4096",
        log=f"{kind}-{calls}",
    )
    wait = asyncio.ensure_future(proc.wait())
    peak = 0
    while not wait.done():
        await asyncio.wait({wait}, timeout=1.0)
        peak = max(peak, hub.open_customer_legs(after))
    rc = wait.result()
    sipp_cpu = children_cpu_s() - sipp_cpu0
    phone_cpu = (proc_cpu_s(phone_pid) or 0.0) - (phone_cpu0 or 0.0) if phone_pid else None
    lag = await probe.stop()
    hub_cpu = hub.cpu_s() - hub_cpu0
    wall = time.monotonic() - wall0
    await hub.settle(after)
    result: dict[str, Any] = {
        "figure": "level",
        "mode": "hub",
        "kind": kind,
        "concurrent_target": calls,
        "peak_concurrent": peak,
        "rate": round(rate, 1),
        "hold_ms": hold_ms,
        "sipp_rc": rc,
    }
    if kind == "ivr_queue":
        result.update(ivr_outcome(hub, after, calls))
    else:
        result.update(bridged_outcome(hub, after, calls))
    if rc != 0:
        result["failed_calls"] = max(1, result["failed_calls"])
    result.update(
        {
            "hub_cpu_s": round(hub_cpu, 2),
            "sipp_callers_cpu_s": round(sipp_cpu, 2),
            **({"sipp_phones_cpu_s": round(phone_cpu, 2)} if phone_cpu is not None else {}),
            "wall_s": round(wall, 1),
            **lag,
        }
    )
    minutes = result.pop("_call_minutes", 0)
    result["hub_cpu_s_per_call_minute"] = round(hub_cpu / minutes, 3) if minutes else None
    return result


def _rtp(raw: str | None) -> dict[str, Any]:
    return json.loads(raw) if raw else {}


def ivr_outcome(hub: Hub, after: int, calls: int) -> dict[str, Any]:
    rows = hub.query(
        "SELECT i.id, l.answered_at, l.ended_at, l.rtp,"
        " json_extract(i.data, '$.ivr.inputs[0].event'),"
        " json_extract(i.data, '$.ivr.inputs[0].value'),"
        " (SELECT min(e.at) FROM interactionevent e WHERE e.interaction_id = i.id"
        "  AND e.to_state = 'queued')"
        " FROM interaction i JOIN callleg l ON l.interaction_id = i.id AND l.kind = 'customer'"
        " WHERE i.id > ? AND i.channel = 'voice'",
        after,
    )
    ok = [
        r
        for r in rows
        if r[1] and r[2] and r[4] in ("digit", "digits") and str(r[5]) == "1" and r[6]
    ]
    received = sum(_rtp(r[3]).get("packets_received", 0) for r in rows)
    sent = sum(_rtp(r[3]).get("packets_sent", 0) for r in rows)
    seconds = sum(stamp(r[2]) - stamp(r[1]) for r in rows if r[1] and r[2])  # type: ignore[operator]
    # from the answer to the queue: the menu, the key, the hold prompt, and the hub's work
    to_queue = [stamp(r[6]) - stamp(r[1]) for r in rows if r[1] and r[6]]  # type: ignore[operator]
    return {
        "interactions": len(rows),
        "failed_calls": calls - len(ok),
        "digit_in_ivr_and_queued": len(ok),
        "rtp_delivered": round(received / (calls * IVR_PACKETS), 4),
        # what the hub sent (prompt, hold music) per second of answered call, over 50/s
        "hub_frames_sent_ratio": round(sent / (seconds * 50), 4) if seconds else None,
        "setup_rate": setup_rate([stamp(r[1]) for r in rows if r[1]]),  # type: ignore[misc]
        "answer_to_queued_s_p50": pct(to_queue, 0.5, 2),
        "answer_to_queued_s_p95": pct(to_queue, 0.95, 2),
        "_call_minutes": seconds / 60,
    }


def bridged_outcome(hub: Hub, after: int, calls: int) -> dict[str, Any]:
    customers = {
        r[0]: r[1:]
        for r in hub.query(
            "SELECT interaction_id, answered_at, ended_at, rtp FROM callleg"
            " WHERE kind = 'customer' AND interaction_id > ?",
            after,
        )
    }
    agents = {
        r[0]: r[1:]
        for r in hub.query(
            "SELECT interaction_id, answered_at, ended_at, rtp FROM callleg"
            " WHERE kind = 'agent' AND answered_at IS NOT NULL AND interaction_id > ?",
            after,
        )
    }
    states = {
        r[0]: set(r[1].split(","))
        for r in hub.query(
            "SELECT interaction_id, group_concat(to_state) FROM interactionevent"
            " WHERE interaction_id > ? GROUP BY interaction_id",
            after,
        )
    }
    recorded = {
        r[0]
        for r in hub.query(
            "SELECT interaction_id FROM recording WHERE interaction_id > ? AND complete = 1"
            " AND json_array_length(legs) = 2",
            after,
        )
    }
    ok = [
        i
        for i in customers
        if i in agents and {"active", "wrap_up"} <= states.get(i, set()) and i in recorded
    ]
    received = sum(_rtp(c[2]).get("packets_received", 0) for c in customers.values())
    agent_rx = sum(_rtp(a[2]).get("packets_received", 0) for a in agents.values())
    agent_lost = sum(_rtp(a[2]).get("packets_lost", 0) for a in agents.values())
    talk = [stamp(a[1]) - stamp(a[0]) for a in agents.values() if a[1]]  # type: ignore[operator]
    to_agent = [
        stamp(agents[i][0]) - stamp(customers[i][0])  # type: ignore[operator]
        for i in agents
        if i in customers and customers[i][0]
    ]
    seconds = sum(
        stamp(c[1]) - stamp(c[0])  # type: ignore[operator]
        for c in customers.values()
        if c[0] and c[1]
    ) + sum(talk)
    return {
        "interactions": len(customers),
        "failed_calls": calls - len(ok),
        "bridged_recorded": len(ok),
        "rtp_delivered": round(received / (calls * TALK_PACKETS), 4),
        "agent_legs_rtp_delivered": round(agent_rx / (agent_rx + agent_lost), 4)
        if agent_rx
        else 0.0,
        "talk_s_median": round(statistics.median(talk), 1) if talk else None,
        "answer_to_agent_s_p50": pct(to_agent, 0.5, 2),
        "answer_to_agent_s_p95": pct(to_agent, 0.95, 2),
        "setup_rate": setup_rate([stamp(c[0]) for c in customers.values() if c[0]]),  # type: ignore[misc]
        "_call_minutes": seconds / 60,
    }


# --------------------------------------------------------------------------- bare bridged


class BareBridge(Bench):
    """The bare endpoint doing the hub's bridged work: answer, record, prompt until the
    digit, ring a registered phone, bridge; either side's BYE hangs up the other."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.free = list(self.settings.agent_credentials)
        self.agent_stats: list[dict[str, Any]] = []
        self.bridged = 0
        self.customers = 0  # callers on the line now (the endpoint also holds agent legs)

    def live(self) -> int:
        return self.customers

    def reset(self) -> None:
        super().reset()
        self.agent_stats.clear()
        self.bridged = 0

    async def on_call(self, call: Call) -> None:
        ended = asyncio.Event()

        def count(c: Call, e: CallEvent) -> None:
            if e.kind == "dtmf":
                self.digits += 1
            elif e.kind == "ended":
                stats = c.stats()
                self.finished.append({**stats["rtp"], "duration_s": stats["duration_s"]})
                ended.set()

        call.add_listener(count)
        await call.answer()
        self.answered_at.append(time.monotonic())
        self.customers += 1
        try:
            await self._serve(call, ended)
        finally:
            self.customers -= 1

    async def _serve(self, call: Call, ended: asyncio.Event) -> None:
        call.record()
        await call.play(self.prompt, loop=True, interrupt_on_dtmf=True)
        if call.state is CallState.ENDED or not self.free:
            await call.hangup()
            return
        ext = self.free.pop()
        try:
            agent = await self.endpoint.call_agent(ext, timeout=20)
        except CallFailed:
            self.free.append(ext)
            await call.hangup()
            return

        def agent_ended(c: Call, e: CallEvent) -> None:
            if e.kind == "ended":
                self.agent_stats.append(c.stats()["rtp"])
                ended.set()

        agent.add_listener(agent_ended)
        if call.state is not CallState.ENDED:
            call.bridge(agent)
            self.bridged += 1
            await ended.wait()
        await call.hangup()
        await agent.hangup()
        self.free.append(ext)


async def bare_level(bench: Bench, kind: str, calls: int, rate: float, hold_ms: int) -> dict:
    result = await bench.level(calls, rate, hold_ms)
    result.update(mode="bare", kind=kind)
    if isinstance(bench, BareBridge):
        rx = sum(s.get("packets_received", 0) for s in bench.agent_stats)
        lost = sum(s.get("packets_lost", 0) for s in bench.agent_stats)
        result["bridged"] = bench.bridged
        result["agent_legs_rtp_delivered"] = round(rx / (rx + lost), 4) if rx else 0.0
        result["failed_calls"] = max(result["failed_calls"], calls - bench.bridged)
    return result


def holds(result: dict[str, Any]) -> bool:
    return (
        result["failed_calls"] == 0
        and result["rtp_delivered"] >= 0.99
        and result.get("agent_legs_rtp_delivered", 1.0) >= 0.99
        and (result.get("frames_sent_on_time") or 1.0) >= 0.99  # the bare endpoint's clock
        and (result.get("hub_frames_sent_ratio") or 1.0) >= 0.99  # what the hub sent
    )


async def step_levels(run: Any, levels: list[int], retries: int) -> dict[str, Any] | None:
    """Levels in order until one fails (after ``retries``); the last one that held."""
    best = None
    for calls in levels:
        for _attempt in range(1 + retries):
            result = await run(calls)
            emit(**result)
            if holds(result):
                break
        else:
            return best
        best = result
    return best


# --------------------------------------------------------------------------- phones


async def start_phones(workdir: Path, phone_port: int) -> asyncio.subprocess.Process:
    phones = await sipp(
        workdir,
        "agent_phone.xml",
        None,  # a UAS: the remote is whoever calls
        "-p",
        str(phone_port),
        "-mp",
        "20000",
        "-m",
        "1000000",
        "-max_socket",
        "4096",
        log="phones",
    )
    deadline = time.monotonic() + 10
    while not _udp_bound(phone_port):
        if phones.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError("the phones' SIPp did not start")
        await asyncio.sleep(0.05)
    return phones


def _udp_bound(port: int) -> bool:
    with open("/proc/net/udp") as table:
        return any(int(line.split()[1].rsplit(":", 1)[1], 16) == port for line in list(table)[1:])


async def register(workdir: Path, target: str, agents: int, phone_port: int) -> None:
    proc = await sipp(
        workdir,
        "agent_register.xml",
        target,
        "-inf",
        "agents.csv",
        "-p",
        "0",
        "-key",
        "phone_port",
        str(phone_port),
        "-m",
        str(agents),
        "-r",
        "50",
        "-timeout",
        "60s",
        "-timeout_error",
        log="register",
    )
    if await proc.wait() != 0:
        raise RuntimeError(f"registering {agents} phones failed (see {workdir}/register-*)")


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 5)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --------------------------------------------------------------------------- the run


@contextlib.asynccontextmanager
async def running_hub(var: Path, creds: dict[str, str]) -> AsyncIterator[Hub]:
    hub = await asyncio.to_thread(Hub, var, creds, (40000, 46000))  # it seeds with asyncio.run
    try:
        yield hub
    finally:
        await asyncio.to_thread(hub.stop)


def level_rate(calls: int, call_s: float, floor: float) -> float:
    """Fast enough that every call of the level overlaps the others."""
    return max(floor, calls / (call_s * 0.8))


async def warm_up(hub: Hub, workdir: Path) -> None:
    """Calls until one is queued: the IVR's speech engines load in the background at
    start, and a caller who keys before the menu plays is not heard."""
    for _attempt in range(20):
        if await warm_up_call(hub, workdir):
            return
    raise RuntimeError(f"no warm-up call reached the queue ({hub.var}/run.log)")


async def warm_up_call(hub: Hub, workdir: Path) -> bool:
    after = hub.last_interaction()
    proc = await sipp(
        workdir,
        "hub_caller.xml",
        hub.target,
        "-s",
        DID,
        "-inf",
        "callers.csv",
        "-p",
        "0",
        "-m",
        "1",
        "-d",
        "0",
        "-timeout",
        "180s",
        "-timeout_error",
        log="warm-up",
    )
    await proc.wait()
    await hub.settle(after)
    queued = hub.query(
        "SELECT count(*) FROM interactionevent WHERE interaction_id > ? AND to_state = 'queued'",
        after,
    )[0][0]
    return queued > 0


def summary(kind: str, hub_best: dict | None, bare_best: dict | None, target: int) -> None:
    hub_value = hub_best["peak_concurrent"] if hub_best else 0
    bare_value = bare_best["peak_concurrent"] if bare_best else 0
    emit(
        figure=f"hub_{kind}_max_calls",
        value=hub_value,
        unit="calls",
        target=target,
        bare_endpoint=bare_value,
        ratio=round(hub_value / bare_value, 3) if bare_value else None,
        ratio_target=0.8,
        setup_rate=(hub_best or {}).get("setup_rate"),
        health_ms_p95=(hub_best or {}).get("health_ms_p95"),
        health_ms_max=(hub_best or {}).get("health_ms_max"),
        hub_cpu_s_per_call_minute=(hub_best or {}).get("hub_cpu_s_per_call_minute"),
    )


async def run_hub(args: Any) -> None:
    import tempfile

    ivr_levels = [int(x) for x in args.ivr_levels.split(",") if x]
    bridged_levels = [int(x) for x in args.bridged_levels.split(",") if x]
    load = os.getloadavg()
    emit(
        figure="conditions",
        date=datetime.now().astimezone().isoformat(timespec="seconds"),
        cpus=os.cpu_count(),
        loadavg_1_5_15=[round(x, 2) for x in load],
        note=args.note,
        ivr_levels=ivr_levels,
        bridged_levels=bridged_levels,
        hold_ms=args.hold_ms,
        talk_s=round(TALK_BASE_S - 4.0 + args.talk_tail_ms / 1000, 1),
    )
    with tempfile.TemporaryDirectory(prefix="voice-hub-bench-") as tmp:
        workdir = Path(tempfile.mkdtemp(prefix="voice-hub-bench-")) if args.keep else Path(tmp)
        if args.keep:
            emit(figure="workdir", path=str(workdir))
        (workdir / "pcap").symlink_to("/usr/share/sip-tester")
        agents = max(bridged_levels, default=0)
        creds = write_inputs(workdir, max([*ivr_levels, *bridged_levels, 1]) + 1, agents)
        caller_args = ("-s", DID, "-inf", "callers.csv")
        if ivr_levels:
            ivr_s = IVR_BASE_S + args.hold_ms / 1000
            async with running_hub(workdir / "hub-ivr", {}) as hub:
                await warm_up(hub, workdir)
                emit(figure="idle_health", **await idle_lag(hub))
                hub_best = await step_levels(
                    lambda n: hub_level(
                        hub,
                        workdir,
                        "ivr_queue",
                        n,
                        level_rate(n, ivr_s, args.min_rate),
                        args.hold_ms,
                    ),
                    ivr_levels,
                    args.retries,
                )
            if args.skip_bare:
                summary("ivr_queue", hub_best, None, 500)
                ivr_levels = []  # done
        if ivr_levels:
            bench = Bench(
                workdir,
                (30000, 36000),
                scenario=SIPP / "hub_caller.xml",
                frames_per_call=IVR_PACKETS,
                sipp_args=caller_args,
            )
            await bench.endpoint.start()
            try:
                bare_best = await step_levels(
                    lambda n: bare_level(
                        bench, "ivr_queue", n, level_rate(n, ivr_s, args.min_rate), args.hold_ms
                    ),
                    ivr_levels,
                    args.retries,
                )
            finally:
                await bench.endpoint.stop()
            summary("ivr_queue", hub_best, bare_best, 500)
        if bridged_levels:
            talk_s = TALK_BASE_S + args.talk_tail_ms / 1000
            phone_port = free_sip_port()
            async with running_hub(workdir / "hub-bridged", creds) as hub:
                phones = await start_phones(workdir, phone_port)
                try:
                    await register(workdir, hub.target, agents, phone_port)
                    await warm_up(hub, workdir)

                    async def hub_bridged(n: int) -> dict[str, Any]:
                        ready = await wait_ready(hub, n)
                        result = await hub_level(
                            hub,
                            workdir,
                            "bridged",
                            n,
                            level_rate(n, talk_s, args.min_rate),
                            args.talk_tail_ms,
                            phone_pid=phones.pid,
                        )
                        return {**result, "agents_ready_at_start": ready}

                    hub_best = await step_levels(hub_bridged, bridged_levels, args.retries)
                finally:
                    await stop_process(phones)
            if args.skip_bare:
                summary("bridged", hub_best, None, 300)
                bridged_levels = []  # done
        if bridged_levels:
            bench = BareBridge(
                workdir,
                (30000, 36000),
                scenario=SIPP / "hub_talker.xml",
                frames_per_call=TALK_PACKETS,
                sipp_args=caller_args,
                credentials=creds,
            )
            await bench.endpoint.start()
            phones = await start_phones(workdir, phone_port)
            try:
                await register(workdir, f"127.0.0.1:{bench.endpoint.port}", agents, phone_port)
                bare_best = await step_levels(
                    lambda n: bare_level(
                        bench, "bridged", n, level_rate(n, talk_s, args.min_rate), args.talk_tail_ms
                    ),
                    bridged_levels,
                    args.retries,
                )
            finally:
                await stop_process(phones)
                await bench.endpoint.stop()
            summary("bridged", hub_best, bare_best, 300)
    emit(figure="conditions_end", loadavg_1_5_15=[round(x, 2) for x in os.getloadavg()])


def free_sip_port() -> int:
    from tests.e2e.hub_process import free_sip_port as free

    return free()


async def idle_lag(hub: Hub, seconds: float = 3.0) -> dict[str, Any]:
    probe = LagProbe(hub.base)
    probe.start()
    await asyncio.sleep(seconds)
    return await probe.stop()


async def wait_ready(hub: Hub, agents: int, within: float = 60.0) -> int:
    """Wait (up to ``within``) for this many bench agents to be READY again (wrap-up ends
    2 s after a call); returns how many are. An agent whose offer timed out under load is
    NOT_READY ("missed") and stays so: a level then has fewer agents, and says so."""
    deadline = time.monotonic() + within
    while (ready := hub.ready_agents()) < agents and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    return ready
