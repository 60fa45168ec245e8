"""Scoring rules, and the weekly sample per agent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.qa.scorecards import FormError, score, validate_form, week_start, weekly_sample
from tests.hub.qa.helpers import agent_id, make_call

FORM = validate_form(
    {
        "sections": [
            {
                "title": "All",
                "questions": [
                    {"id": "greet", "text": "Greeting", "weight": 1},
                    {"id": "verify", "text": "Verified", "weight": 3, "critical": True},
                    {"id": "tone", "text": "Tone", "kind": "scale", "max": 4, "weight": 2},
                ],
            }
        ]
    }
)


def test_weights_scales_not_applicable_and_critical_failures() -> None:
    assert score(FORM, {"greet": "yes", "verify": "yes", "tone": "4"}).score == 100.0
    assert score(FORM, {"greet": "no", "verify": "yes", "tone": "2"}).score == round(
        100 * (3 + 1) / 6, 1
    )
    assert score(FORM, {"greet": "na", "verify": "yes", "tone": "0"}).score == 60.0
    failed = score(FORM, {"greet": "yes", "verify": "no", "tone": "4"})
    assert failed.failed_critical and failed.score == 0.0
    with pytest.raises(FormError, match="Tone"):
        score(FORM, {"greet": "yes", "verify": "yes", "tone": "9"})
    with pytest.raises(FormError, match="unique"):
        validate_form({"sections": [{"title": "x", "questions": [{"id": "a"}, {"id": "a"}]}]})
    with pytest.raises(FormError, match="critical"):
        validate_form(
            {
                "sections": [
                    {"title": "x", "questions": [{"id": "a", "kind": "scale", "critical": True}]}
                ]
            }
        )


async def test_weekly_sample_is_random_per_agent_and_stable(services) -> None:
    monday = week_start(datetime.now(UTC).date())
    at = datetime.combine(monday, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)
    async with services.sessionmaker() as db:
        alice = await agent_id(db, "alice")
        bob = await agent_id(db, "bob")
        ids = {alice: [], bob: []}
        for n in range(5):
            for agent in (alice, bob):
                call = await make_call(
                    db, agent=agent, queue=None, segments=[], at=at + timedelta(minutes=n)
                )
                ids[agent].append(call.id)
        last_week = await make_call(
            db, agent=alice, queue=None, segments=[], at=at - timedelta(days=7)
        )
        sample = await weekly_sample(db, monday, per_agent=3)
        again = await weekly_sample(db, monday + timedelta(days=3), per_agent=3)
    assert sample == again  # the same sample all week, for everyone
    assert set(sample) == {alice, bob}
    for agent in (alice, bob):
        assert len(sample[agent]) == 3 and set(sample[agent]) <= set(ids[agent])
    assert last_week.id not in sample[alice]
