"""Scorecards through the web: an admin's form answers itself from a category and a metric,
QA overrides one answer, the agent disputes, a second evaluator shows where they differ,
and scores roll up."""

from __future__ import annotations

import json
import re

import httpx
from sqlmodel import select

from hub.qa.categories import categorize_interaction
from models import Category, Evaluation
from tests.hub.qa.helpers import agent_id, make_call
from tests.web.conftest import login

FORM = {
    "sections": [
        {
            "title": "Compliance",
            "questions": [
                {
                    "id": "disclosure",
                    "text": "Gave the recording disclosure",
                    "weight": 2,
                    "critical": True,
                    "allow_na": False,
                    "auto": {"category": "Disclosure"},
                },
                {
                    "id": "no_silence",
                    "text": "No silence over 5 s",
                    "weight": 1,
                    "auto": {"metric": "longest_silence_seconds", "op": "<", "value": 5},
                },
            ],
        },
        {
            "title": "Manner",
            "questions": [{"id": "empathy", "text": "Empathy", "kind": "scale", "max": 4}],
        },
    ]
}


async def relog(client: httpx.AsyncClient, username: str) -> str:
    await client.post("/logout", data={"_csrf_token": client.cookies.get("csrftoken", "")})
    await login(client, username)
    return client.cookies.get("csrftoken", "")


async def test_scorecard_auto_answered_overridden_disputed_and_calibrated(
    client: httpx.AsyncClient, services
):
    async with services.sessionmaker() as db:
        alice = await agent_id(db, "alice")
        db.add(
            Category(
                name="Disclosure",
                rule={
                    "match": "all",
                    "phrases": [
                        {
                            "query": '"call is recorded"',
                            "speaker": "agent",
                            "first_seconds": 30,
                            "last_seconds": None,
                            "negate": False,
                        }
                    ],
                    "metrics": [],
                },
            )
        )
        await db.commit()
        call = await make_call(
            db,
            agent=alice,
            queue=None,
            segments=[
                ("agent", 1000, "Hello, this call is recorded."),
                ("customer", 4000, "Fine."),
            ],
            metrics={"longest_silence_seconds": 7.5},
        )
        await categorize_interaction(db, call.id)  # type: ignore[arg-type]
        await db.commit()

    await login(client, "admin")
    token = client.cookies.get("csrftoken", "")
    bad = await client.post(
        "/qa/forms", data={"name": "Bad", "definition": "{", "_csrf_token": token}
    )
    assert bad.status_code == 422 and "not JSON" in bad.text
    made = await client.post(
        "/qa/forms",
        data={"name": "Calls", "definition": json.dumps(FORM), "_csrf_token": token},
        follow_redirects=False,
    )
    assert made.status_code == 303

    token = await relog(client, "quinn")
    page = await client.get(f"/qa/interactions/{call.id}/evaluate")
    assert page.status_code == 200
    assert "auto: yes" in page.text and "auto: no" in page.text  # disclosure yes, silence no
    form_id = re.search(r'name="form_id" value="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    missing = await client.post(
        f"/qa/interactions/{call.id}/evaluations", data={"form_id": form_id, "_csrf_token": token}
    )
    assert missing.status_code == 422 and "Empathy" in missing.text  # no automatic answer
    # keep the automatic answers (sent as pre-selected) but override the silence one
    sent = await client.post(
        f"/qa/interactions/{call.id}/evaluations",
        data={
            "form_id": form_id,
            "q_disclosure": "yes",
            "q_no_silence": "yes",
            "q_empathy": "2",
            "comment_at": ["0:04", ""],
            "comment_text": ["customer sounded unsure", ""],
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303
    first_url = sent.headers["location"]
    async with services.sessionmaker() as db:
        first = (await db.exec(select(Evaluation))).one()
    assert first.answers["no_silence"] == {"value": "yes", "auto": "no", "overridden": True}
    assert first.answers["disclosure"]["overridden"] is False
    assert first.score == round(100 * (2 + 1 + 0.5) / 4, 1)
    assert first.comments == [{"at_ms": 4000, "text": "customer sounded unsure"}]

    # a second evaluator fails the critical question: score 0, and calibration shows it
    second = await client.post(
        f"/qa/interactions/{call.id}/evaluations",
        data={"form_id": form_id, "q_disclosure": "no", "q_empathy": "2", "_csrf_token": token},
        follow_redirects=False,
    )
    shown = await client.get(second.headers["location"])
    assert "critical failed" in shown.text and 'id="calibration"' in shown.text
    assert re.search(r'<tr class="differs"><td>Gave the recording disclosure', shown.text)
    assert re.search(r'<tr class="differs"><td>No silence over 5 s', shown.text)
    assert not re.search(r'<tr class="differs"><td>Empathy', shown.text)

    scores = await client.get("/qa/scores")
    assert scores.status_code == 200 and "Alice" in scores.text and "43.8" in scores.text

    # the agent sees their own, disputes with a reason; another agent cannot see it
    token = await relog(client, "alice")
    mine = await client.get("/qa/my-evaluations")
    assert first_url in mine.text
    no_reason = await client.post(
        f"{first_url}/respond", data={"action": "dispute", "_csrf_token": token}
    )
    assert no_reason.status_code == 422
    disputed = await client.post(
        f"{first_url}/respond",
        data={
            "action": "dispute",
            "reason": "There was hold music, not silence.",
            "_csrf_token": token,
        },
        follow_redirects=True,
    )
    assert disputed.status_code == 200 and "Disputed: There was hold music" in disputed.text
    assert 'id="calibration"' not in disputed.text
    token = await relog(client, "bob")
    assert (await client.get(first_url)).status_code == 403
    assert (await client.get(f"/qa/interactions/{call.id}/evaluate")).status_code == 403
