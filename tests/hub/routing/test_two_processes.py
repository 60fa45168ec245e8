"""Two hub processes on one PostgreSQL database take 200 chats: nobody gets one twice."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from sqlmodel import select

from hub.db import migrate
from hub.events import make_backend, make_channels_plugin
from hub.seed import seed_demo
from hub.services import Services
from hub.settings import Settings
from models import Agent, Interaction, InteractionState, Offer, OfferOutcome, PresenceState
from tests.hub.routing.helpers import chat

REPO = Path(__file__).resolve().parents[3]
CHATS = 200

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def prepare(url: str, tmp_path: Path) -> None:
    plugin = make_channels_plugin(make_backend(""))
    await plugin._on_startup()
    services = Services.build(Settings(var_dir=tmp_path / "var", database_url=url), plugin)
    try:
        async with services.sessionmaker() as db:
            await seed_demo(db, hasher=lambda _password: "no-login")  # no logins needed
            agents = (await db.exec(select(Agent))).all()
            for agent in agents:  # more chat slots: fewer passes, more overlap between nodes
                agent.capacity = {"webchat": 10}
                db.add(agent)
            await db.commit()
        for agent in agents:
            await services.presence.set_presence(agent.id, PresenceState.READY)  # type: ignore[arg-type]
        for n in range(CHATS):
            await chat(services, text=f"chat {n}", sender=f"visitor-{n}")
    finally:
        await services.close()
        await plugin._on_shutdown()


async def read_offers(url: str) -> tuple[list[Offer], list[Interaction]]:
    from hub.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            offers = list((await db.exec(select(Offer).order_by(Offer.id))).all())
            interactions = list((await db.exec(select(Interaction))).all())
    finally:
        await engine.dispose()
    return offers, interactions


def test_two_hub_processes_never_offer_one_interaction_twice(postgres_url: str, tmp_path: Path):
    migrate(postgres_url)
    asyncio.run(prepare(postgres_url, tmp_path))
    env = {
        **os.environ,
        "HUB_DATABASE_URL": postgres_url,
        "WORKER_EXPECTED": str(CHATS),
        "WORKER_SECONDS": "50",
        "PYTHONPATH": str(REPO),
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.hub.routing.worker"],
            cwd=REPO,
            env={**env, "HUB_NODE_NAME": f"node-{n}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    reports = []
    for worker in workers:
        try:
            out, err = worker.communicate(timeout=58)
        finally:
            worker.kill()
        assert worker.returncode == 0, err[-3000:]
        report = json.loads(out.strip().splitlines()[-1])
        report["stderr"] = err[-1500:]
        (tmp_path / f"{report['node']}.err").write_text(err)
        reports.append(report)

    offers, interactions = asyncio.run(read_offers(postgres_url))
    accepted: dict[int, int] = defaultdict(int)
    by_interaction: dict[int, list[Offer]] = defaultdict(list)
    for offer in offers:
        by_interaction[offer.interaction_id].append(offer)
        if offer.outcome == OfferOutcome.ACCEPTED:
            accepted[offer.interaction_id] += 1
    # all 200 answered, each exactly once
    closed = [i.state for i in interactions].count(InteractionState.CLOSED)
    assert closed == CHATS, reports
    assert sorted(accepted) == sorted(i.id for i in interactions)
    assert set(accepted.values()) == {1}
    # never two pending offers at once: each offer was decided before the next was made
    for history in by_interaction.values():
        for earlier, later in itertools.pairwise(history):
            assert earlier.decided_at is not None and earlier.decided_at <= later.offered_at
    assert sum(r["accepted"] for r in reports) == CHATS
    print("offers per node:", {r["node"]: r["accepted"] for r in reports})
