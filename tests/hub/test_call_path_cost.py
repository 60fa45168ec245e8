"""The database work of one inbound call stays small: counted per call, not timed.

A real SIP endpoint and call service with the demo phone menu on the speech IVR, on
SQLite, called by SIPp (the caller keys "1" and waits in General). The counts are those of
the call's own tasks from the INVITE until its enqueue committed (``tests/hub/call_cost``):
the call path that bench/README.md ("Through the running hub") found to be the bottleneck
under load. Before the work on it: 24 statements in 10 transactions (5 commits, 5
read-only rollbacks) for this call, and every waiting caller read its interaction and
queue twice a second on its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from models import CallLeg, Interaction, InteractionState, Recording
from tests.hub.call_cost import call_harness, ivr_ready
from tests.support import require_tool

pytestmark = [pytest.mark.sipp, pytest.mark.slow]

# Upper bounds, INVITE → queued (SQLite counts BEGIN IMMEDIATE as a statement).
MAX_STATEMENTS = 20  # 19, and the dialog's recorded prompts (read with the dialog)
MAX_COMMITS = 3  # open the call; answer + recording row; IVR trace + enqueue
MAX_ROLLBACKS = 2  # read-only: the dialog and caller; the queue's hours


async def test_an_inbound_call_reaches_the_queue_in_three_commits(tmp_path: Path):
    require_tool("sipp")
    async with call_harness(tmp_path) as harness:
        await ivr_ready(harness.runtime)
        await harness.call()  # the first call warms per-process caches
        await harness.costs()
        costs = []
        for _ in range(2):  # one caller at a time, a known number (a new one adds 2 inserts)
            await harness.call()
            costs.extend(await harness.costs())
        assert len(costs) == 2
        for cost in costs:
            shown = "\n".join(" ".join(sql.split())[:120] for sql in cost.statements_to_queued)
            assert cost.to_queued, "the call never reached the queue"
            assert cost.to_queued["statements"] <= MAX_STATEMENTS, shown
            assert cost.to_queued["commits"] <= MAX_COMMITS, shown
            assert cost.to_queued["rollbacks"] <= MAX_ROLLBACKS, shown
        # what the counts stand for: each call stored, traced, queued and recorded as ever
        async with harness.services.sessionmaker() as db:
            for cost in costs:
                interaction = await db.get(Interaction, cost.interaction_id)
                assert interaction is not None
                assert "ivr" in interaction.data, (interaction.state, interaction.data)
                assert interaction.data["ivr"]["inputs"][0]["value"] == "1"
                assert interaction.queued_at is not None
                assert interaction.state == InteractionState.ABANDONED  # hung up in the queue
                legs = (
                    await db.exec(select(CallLeg).where(CallLeg.interaction_id == interaction.id))
                ).all()
                assert [leg.answered_at is not None for leg in legs] == [True]
                recording = (
                    await db.exec(
                        select(Recording).where(Recording.interaction_id == interaction.id)
                    )
                ).one()
                assert recording.complete and recording.legs == [legs[0].id]
