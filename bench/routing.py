"""Routing benchmarks: the pure decision core, and arrival → committed offer on real databases.

Prints one JSON line per figure:

- ``decision_latency``: one decision of the pure core (``Router``) holding 1,000 agents and
  10,000 waiting interactions. Every agent is full, so each sample frees one slot of one
  agent and times ``release`` + ``next_decision`` (the agent's classes are unblocked, the
  best waiting item it can serve is found). Target p99 <= 1 ms. ``router_build`` is the
  one-off cost of indexing that snapshot (the service pays it once per dispatch pass).
- ``arrival_to_offer``: chats arrive through ``IngestService.ingest`` at a fixed rate
  (open loop, default 100/s for 10 s); the running ``RoutingService`` (woken by ingest's
  ``routing`` event) commits an offer and publishes it; the latency is from calling
  ingest to receiving that ``offer`` event (published after commit). 250 ready agents with
  4 chat slots each hold every offer of the run (offers ring for 10 minutes), so the figure
  is the arrival → offer path alone: agents answering would add their own accept and close
  writes to the same process. Target p99 <= 50 ms on SQLite. The same on PostgreSQL,
  in a database the script creates and drops (``HUB_TEST_POSTGRES_URL`` or
  ``postgresql://postgres@127.0.0.1:5432/postgres``).
- ``ingest_only``: the same arrivals with no dispatcher running (arrival → ingest
  committed), the in-run baseline: ``ratio_p99_to_ingest_only_p99`` is what routing adds.
- ``insert_commit_baseline``: one INSERT + COMMIT of a small row through the same engine in
  the same run.

    .venv/bin/python bench/routing.py [--rate 100] [--seconds 10] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlmodel import select

from channels.base import Address, AddressKind, ChannelKind, InboundMessage
from hub.db import migrate
from hub.events import agent_topic, make_backend, make_channels_plugin
from hub.routing.decision import AgentView, QueueView, Router, WaitingView
from hub.seed import seed_demo
from hub.services import Services, freeze_startup_objects
from hub.settings import Settings
from models import Agent, AgentSkill, Inbox, PresenceState, Queue, Skill, User

SKILLS = ("general", "billing", "spanish", "tech", "sales")
CHANNELS = ("voice", "webchat", "email")
CAPACITY = {"voice": 1, "webchat": 3, "email": 5}


def emit(**figure: object) -> None:
    print(json.dumps({"bench": "routing", "host": platform.node(), **figure}), flush=True)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


# -- the pure core -------------------------------------------------------------------------


def pure_decision(agents_n: int = 1000, waiting_n: int = 10_000, samples: int = 3000) -> None:
    rng = random.Random(7)
    queues = [
        QueueView(id=q, priority=q % 3, strategy=s, skills={SKILLS[q % len(SKILLS)]: 1 + q % 3})
        for q, s in enumerate(("longest_idle", "round_robin", "highest_skill") * 3, start=1)
    ]
    agents = []
    for agent_id in range(1, agents_n + 1):
        skills = {name: rng.randint(1, 5) for name in rng.sample(SKILLS, rng.randint(1, 3))}
        agents.append(
            AgentView(
                agent_id,
                skills,
                dict(CAPACITY),
                load=dict(CAPACITY),  # everyone busy: the queue keeps its 10,000
                idle_since=rng.uniform(0, 1000),
                last_offer_at=rng.uniform(0, 1000),
            )
        )
    now = 100_000.0

    def item(item_id: int) -> WaitingView:
        return WaitingView(
            item_id,
            rng.choice(queues).id,
            rng.choice(CHANNELS),
            rng.choice((0, 0, 0, 1, 2)),
            now - rng.uniform(0, 600),
            {"spanish": 2} if rng.random() < 0.05 else {},
        )

    waiting = [item(i) for i in range(1, waiting_n + 1)]
    start = time.perf_counter()
    router = Router(queues, agents, waiting)
    build_ms = (time.perf_counter() - start) * 1000
    assert router.decide_all(now) == []
    gc.collect()
    gc.freeze()  # the 10,000 long-lived items need not be rescanned by every collection
    next_id = waiting_n + 1
    timings: list[float] = []
    made = 0
    for _ in range(samples):
        agent = rng.choice(agents)
        channel = rng.choice(CHANNELS)
        start = time.perf_counter()
        router.release(agent.id, channel)
        decision = router.next_decision(now)
        timings.append(time.perf_counter() - start)
        if decision is not None:
            made += 1
            router.add_waiting(item(next_id))  # keep 10,000 waiting
            next_id += 1
        else:
            router.agents[agent.id].load[channel] += 1  # nothing fit: take the slot back
    emit(
        figure="decision_latency",
        agents=agents_n,
        waiting=len(router.items),
        samples=samples,
        decisions_made=made,
        p50_us=round(percentile(timings, 50) * 1e6, 1),
        p99_us=round(percentile(timings, 99) * 1e6, 1),
        max_us=round(max(timings) * 1e6, 1),
        target_p99_us=1000,
    )
    emit(figure="router_build", agents=agents_n, waiting=waiting_n, ms=round(build_ms, 1))
    gc.unfreeze()


# -- arrival → committed offer ---------------------------------------------------------------


async def add_agents(services: Services, count: int) -> list[int]:
    async with services.sessionmaker() as db:
        general = (await db.exec(select(Skill).where(Skill.name == "general"))).one()
        ids = []
        for n in range(count):
            user = User(username=f"bench-{n}", display_name=f"Bench {n}", password_hash="-")
            db.add(user)
            await db.flush()
            agent = Agent(user_id=user.id, capacity={"webchat": 4})  # type: ignore[arg-type]
            db.add(agent)
            await db.flush()
            db.add(AgentSkill(agent_id=agent.id, skill_id=general.id, level=3))  # type: ignore[arg-type]
            ids.append(agent.id)
        await db.commit()
    for agent_id in ids:
        await services.presence.set_presence(agent_id, PresenceState.READY)  # type: ignore[arg-type]
    return ids  # type: ignore[return-value]


async def commit_baseline(services: Services, samples: int = 300) -> list[float]:
    async with services.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE bench_probe (id INTEGER PRIMARY KEY, v TEXT)"))
    timings = []
    for n in range(samples):
        start = time.perf_counter()
        async with services.engine.begin() as conn:
            await conn.execute(text("INSERT INTO bench_probe (id, v) VALUES (:i, 'x')"), {"i": n})
        timings.append(time.perf_counter() - start)
    return timings


async def open_loop(rate: float, seconds: float, arrive) -> float:  # type: ignore[no-untyped-def]
    """Start ``arrive(n)`` at a fixed rate whatever happens; the achieved rate."""
    loop = asyncio.get_running_loop()
    begin = loop.time()
    total = int(rate * seconds)
    tasks = []
    for n in range(total):
        delay = begin + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(arrive(n)))
    await asyncio.gather(*tasks)
    return total / (loop.time() - begin)


async def arrivals(url: str, database: str, rate: float, seconds: float, agents_n: int) -> None:
    """Two phases on one database: ingest alone (no dispatcher, the in-run baseline), then
    ingest with the dispatcher running and agents ready."""
    var_dir = Path(tempfile.mkdtemp(prefix="bench-routing-"))
    migrate(url)
    plugin = make_channels_plugin(make_backend(""))
    await plugin._on_startup()
    # The bench's agents have no console tabs: keep them present for the whole run.
    settings = Settings(var_dir=var_dir, database_url=url, presence_grace_seconds=86_400)
    settings.ensure_dirs()
    services = Services.build(settings, plugin)
    async with services.sessionmaker() as db:
        await seed_demo(db, hasher=lambda _password: "no-login")  # no logins needed
        inbox = (await db.exec(select(Inbox).where(Inbox.kind == ChannelKind.WEBCHAT))).one()
        for queue in (await db.exec(select(Queue))).all():
            queue.offer_timeout_seconds = 600  # offers ring for the whole run
            db.add(queue)
        await db.commit()
    baseline = await commit_baseline(services)
    freeze_startup_objects()  # as Services.start does, before the ingest-only phase too

    sent: dict[int, float] = {}
    ingested: dict[int, float] = {}
    offered: dict[int, float] = {}
    failed: list[str] = []

    async def arrive(n: int) -> None:
        start = time.perf_counter()
        try:
            result = await services.ingest.ingest(
                InboundMessage(
                    inbox_id=inbox.id,  # type: ignore[arg-type]
                    channel=ChannelKind.WEBCHAT,
                    sender=Address(AddressKind.WEBCHAT, f"bench-{uuid.uuid4().hex}"),
                    body=f"arrival {n}",
                )
            )
        except Exception as exc:  # overload: the database gave up waiting
            failed.append(repr(exc)[:200])
            return
        sent[result.interaction_id] = start
        ingested[result.interaction_id] = time.perf_counter()

    # phase 1: ingest alone
    ingest_rate = await open_loop(rate, seconds, arrive)
    ingest_only = [ingested[i] - t for i, t in sent.items()]
    ingest_failed = len(failed)
    async with services.engine.begin() as conn:  # out of the way of phase 2
        await conn.execute(text("UPDATE interaction SET state = 'closed'"))
    sent.clear()
    failed.clear()

    # phase 2: with routing
    agent_ids = await add_agents(services, agents_n)

    async def agent_side(events) -> None:  # type: ignore[no-untyped-def]
        async for event in events:
            if event.name == "offer":
                offered.setdefault(event.data["interaction_id"], time.perf_counter())

    async with services.bus.subscribe([agent_topic(a) for a in agent_ids]) as events:
        listener = asyncio.create_task(agent_side(events))
        await services.start()
        achieved = await open_loop(rate, seconds, arrive)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while len(offered) < len(sent) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await services.routing.stop()
        listener.cancel()
    latencies = [offered[i] - t for i, t in sent.items() if i in offered]
    async with services.engine.begin() as conn:
        await conn.execute(text("DROP TABLE bench_probe"))
    await services.close()
    await plugin._on_shutdown()

    def ms(values: list[float], pct: float) -> float | None:
        return round(percentile(values, pct) * 1000, 2) if values else None

    emit(
        figure="insert_commit_baseline",
        database=database,
        samples=len(baseline),
        p50_ms=ms(baseline, 50),
        p99_ms=ms(baseline, 99),
    )
    emit(
        figure="ingest_only",
        database=database,
        rate_per_s=rate,
        achieved_rate_per_s=round(ingest_rate, 1),
        arrivals=len(ingest_only),
        arrivals_failed=ingest_failed,
        p50_ms=ms(ingest_only, 50),
        p99_ms=ms(ingest_only, 99),
    )
    p99 = percentile(latencies, 99) if latencies else float("nan")
    emit(
        figure="arrival_to_offer",
        database=database,
        rate_per_s=rate,
        achieved_rate_per_s=round(achieved, 1),
        arrivals=len(sent),
        arrivals_failed=len(failed),
        first_failure=failed[0] if failed else None,
        offered=len(latencies),
        agents=agents_n,
        p50_ms=ms(latencies, 50),
        p99_ms=ms(latencies, 99),
        max_ms=round(max(latencies) * 1000, 2) if latencies else None,
        ratio_p99_to_ingest_only_p99=round(p99 / percentile(ingest_only, 99), 2)
        if ingest_only
        else None,
        ratio_p99_to_commit_p99=round(p99 / percentile(baseline, 99), 1),
        target_p99_ms=50 if database == "sqlite" else None,
    )


async def postgres_arrivals(rate: float, seconds: float, agents_n: int) -> None:
    import asyncpg

    base = os.environ.get(
        "HUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    ).replace("postgresql+asyncpg://", "postgresql://")
    name = f"bench_routing_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    head, _sep, _db = base.rpartition("/")
    url = f"{head}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        await arrivals(url, "postgresql", rate, seconds, agents_n)
    finally:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--agents", type=int, default=250)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    pure_decision()
    sqlite_url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.sqlite3'}"
    asyncio.run(arrivals(sqlite_url, "sqlite", args.rate, args.seconds, args.agents))
    if not args.skip_postgres:
        asyncio.run(postgres_arrivals(args.rate, args.seconds, args.agents))


if __name__ == "__main__":
    main()
