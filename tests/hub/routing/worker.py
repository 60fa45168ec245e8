"""A hub process for the two-process test: runs a RoutingService on ``HUB_DATABASE_URL``,
and plays the agents: every offer this process makes is accepted and closed at once.

Run: ``python -m tests.hub.routing.worker`` with ``HUB_DATABASE_URL``, ``HUB_NODE_NAME``,
``WORKER_EXPECTED`` (closed interactions to wait for) and ``WORKER_SECONDS`` (a bound).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from sqlmodel import func, select

from hub.events import agent_topic, make_backend, make_channels_plugin
from hub.routing.service import OfferGone
from hub.services import Services
from hub.settings import Settings
from models import Agent, Interaction, InteractionState


async def main() -> int:
    expected = int(os.environ["WORKER_EXPECTED"])
    deadline = asyncio.get_running_loop().time() + float(os.environ.get("WORKER_SECONDS", "50"))
    settings = Settings(var_dir=Path(tempfile.mkdtemp()), dispatch_interval_seconds=0.05)
    plugin = make_channels_plugin(make_backend(""))
    await plugin._on_startup()
    services = Services.build(settings, plugin)
    accepted = 0
    errors: list[str] = []

    async def answer(agent_id: int, offer_id: int, interaction_id: int) -> None:
        nonlocal accepted
        try:
            await services.routing.accept_offer(offer_id, agent_id)
            accepted += 1
            await services.routing.close(
                interaction_id, agent_id=agent_id, disposition_id=None, notes=""
            )
        except OfferGone as exc:  # fine: it was withdrawn meanwhile
            errors.append(f"gone: {exc}")

    answering: set[asyncio.Task[None]] = set()

    async def agent_side(events) -> None:  # type: ignore[no-untyped-def]
        async for event in events:
            if event.name == "offer":  # each agent answers on their own
                agent_id = int(event.topic.split(".")[1])
                task = asyncio.create_task(
                    answer(agent_id, event.data["offer_id"], event.data["interaction_id"])
                )
                answering.add(task)
                task.add_done_callback(answering.discard)

    async with services.sessionmaker() as db:
        agent_ids = list((await db.exec(select(Agent.id))).all())
    async with services.bus.subscribe([agent_topic(a) for a in agent_ids]) as events:  # type: ignore[arg-type]
        worker = asyncio.create_task(agent_side(events))
        await services.start()
        try:
            while asyncio.get_running_loop().time() < deadline:
                async with services.sessionmaker() as db:
                    closed = (
                        await db.exec(
                            select(func.count()).where(Interaction.state == InteractionState.CLOSED)
                        )
                    ).one()
                if closed >= expected:
                    break
                await asyncio.sleep(0.2)
        finally:
            await services.routing.stop()
            worker.cancel()
    await services.close()
    await plugin._on_shutdown()
    print(json.dumps({"node": settings.node_name, "accepted": accepted, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
