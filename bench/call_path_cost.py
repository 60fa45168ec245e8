"""What one inbound call costs the hub's database, counted, not timed.

Runs the hub's services and voice runtime in this process on SQLite (demo seed), calls it
with SIPp one call at a time (the caller keys "1" in the demo phone menu and waits in
General), and prints per call the SQL statements, commits and rollbacks the call's own
tasks issued from the INVITE to *queued*, to *offered* (``--agent``: a demo agent is READY
with no phone, so the offer is made and rings nowhere) and over the whole call, plus what
the dispatcher's passes issued. Counting is exact and does not depend on the machine's
load (``tests/hub/call_cost.py``); ``tests/hub/test_call_path_cost.py`` holds the bound.

    .venv/bin/python bench/call_path_cost.py [--calls 3] [--agent] [--show-sql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.hub.call_cost import call_harness, ivr_ready


async def ready_agent(services: object) -> None:
    """alice READY (voice capacity, skill general); she has no registered phone."""
    from sqlmodel import select

    from models import Agent, PresenceState, User

    async with services.sessionmaker() as db:  # type: ignore[attr-defined]
        agent_id = (
            await db.exec(select(Agent.id).join(User).where(User.username == "alice"))
        ).one()
    await services.presence.set_presence(agent_id, PresenceState.READY)  # type: ignore[attr-defined]


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="call-cost-") as tmp:
        async with call_harness(Path(tmp)) as harness:
            await ivr_ready(harness.runtime)
            await harness.call()  # warm-up: first-call caches (dialog, prompts)
            await harness.costs()
            if args.agent:
                await ready_agent(harness.services)
            costs = []
            for _ in range(args.calls):
                harness.dispatch.events.clear()
                await harness.call(hold_ms=args.hold_ms)
                found = await harness.costs()
                for cost in found:
                    print(json.dumps({"figure": "call", **cost.as_dict()}))
                    if args.show_sql:
                        tally = harness.last_tallies.get(cost.interaction_id)
                        for at, kind, sql in tally.events if tally else []:
                            print(f"    {at:10.3f} {kind:9}", " ".join(sql.split())[:130])
                costs.extend(found)
                print(json.dumps({"figure": "dispatch", **harness.dispatch.total()}))

    def med(key: str, part: str) -> float | None:
        values = [getattr(c, part)[key] for c in costs if getattr(c, part)]
        return statistics.median(values) if values else None

    print(
        json.dumps(
            {
                "figure": "call_path_cost",
                "calls": len(costs),
                **{
                    f"{part}_{key}": med(key, part)
                    for part in ("to_queued", "to_offered", "whole_call")
                    for key in ("statements", "commits", "rollbacks")
                },
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--hold-ms", type=int, default=500)
    parser.add_argument("--agent", action="store_true", help="a READY agent: count to offered")
    parser.add_argument("--show-sql", action="store_true")
    asyncio.run(main(parser.parse_args()))
