"""Survey answers stored once per interaction, and the statistics page's numbers (count,
distribution, mean, CSAT, NPS, drop-off) and the dialogs' self-service figures (visits,
exits, hang-ups, handovers, containment), checked against built histories on SQLite and
PostgreSQL. Each expected number is worked out in the test."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlmodel import col, select

import ivr_dialogs
from hub.dialog_diagram import to_dot
from hub.dialog_figures import dialog_figures
from hub.services import Services
from hub.surveys import SurveyFilter, local_day_range, store_answers, survey_stats
from ivr_dialogs import Interpreter
from ivr_dialogs.events import text_to_event
from models import Agent, Contact, Inbox, Interaction, Queue, SurveyAnswer, User

LIBRARY = Path(ivr_dialogs.__file__).parent / "library"
TZ = "America/New_York"  # UTC-5 in December


async def _org(services: Services) -> dict[str, Any]:
    async with services.sessionmaker() as db:
        queues = dict((await db.exec(select(Queue.name, Queue.id))).all())
        agents = dict(
            (
                await db.exec(select(User.username, Agent.id).join(Agent, Agent.user_id == User.id))
            ).all()
        )
        inbox = (await db.exec(select(Inbox).where(Inbox.kind == "voice"))).one()
        contact = Contact(name="Survey Taker")
        db.add(contact)
        await db.commit()
        return {"queues": queues, "agents": agents, "inbox": inbox.id, "contact": contact.id}


async def _interaction(
    services: Services,
    org: dict[str, Any],
    *,
    at: datetime,
    trace: dict[str, Any] | None = None,
    queue: str = "General",
    agent: str | None = None,
    channel: str = "voice",
) -> int:
    async with services.sessionmaker() as db:
        row = Interaction(
            inbox_id=org["inbox"],
            contact_id=org["contact"],
            channel=channel,
            state="closed",
            queue_id=org["queues"][queue],
            agent_id=org["agents"][agent] if agent else None,
            created_at=at,
            data={"ivr": trace} if trace is not None else {},
        )
        db.add(row)
        await db.commit()
        return row.id  # type: ignore[return-value]


def _survey_trace(answers: dict[str, Any], reached: list[str]) -> dict[str, Any]:
    """A trace of support_csat: ``reached`` questions asked, ``answers`` given."""
    scales = {"satisfaction": (1, 5), "recommend": (0, 10)}
    return {
        "version": {"dialog": "satisfaction_survey", "number": 1},
        "survey_asked": [
            {
                "survey": "support_csat",
                "question": q,
                "kind": "scale" if q in scales else "yes_no",
                "min": scales.get(q, (1, 5))[0],
                "max": scales.get(q, (1, 5))[1],
            }
            for q in reached
        ],
        "survey": [
            {"survey": "support_csat", "question": q, "value": v} for q, v in answers.items()
        ],
    }


async def test_a_real_sessions_answers_are_stored_once_with_queue_and_agent(
    services: Services,
) -> None:
    org = await _org(services)
    dialog = ivr_dialogs.load_dialog(
        (LIBRARY / "satisfaction_survey.yaml").read_text(), file="satisfaction_survey.yaml"
    )
    session = Interpreter(dialog, {"name": "Ana"})
    session.start()
    for typed in ["yes", "2", "no", "1"]:  # then silence: hangs up on "recommend"
        session.feed(text_to_event(typed))
    session.feed(text_to_event("/hangup"))
    trace = {**session.trace, "version": {"dialog": "satisfaction_survey", "number": 3}}
    iid = await _interaction(
        services, org, at=datetime(2026, 12, 1, 15, tzinfo=UTC), queue="Billing", agent="carol"
    )
    async with services.sessionmaker() as db:
        assert await store_answers(db, iid, trace) == 4
        await db.commit()
    async with services.sessionmaker() as db:  # a retried job: nothing new
        assert await store_answers(db, iid, trace) == 0
        await db.commit()
        rows = (
            await db.exec(
                select(SurveyAnswer)
                .where(SurveyAnswer.interaction_id == iid)
                .order_by(col(SurveyAnswer.position))
            )
        ).all()
    assert [(r.question, r.kind, r.answered, r.value_text, r.value_number) for r in rows] == [
        ("satisfaction", "scale", True, "2", 2.0),
        ("resolved", "yes_no", True, "no", 0.0),
        ("what_went_wrong", "choice", True, "waiting_time", None),
        ("recommend", "scale", False, None, None),  # reached, then the caller hung up
    ]
    assert {(r.dialog, r.dialog_version, r.survey, r.channel) for r in rows} == {
        ("satisfaction_survey", 3, "support_csat", "voice")
    }
    assert {(r.queue_id, r.agent_id) for r in rows} == {
        (org["queues"]["Billing"], org["agents"]["carol"])
    }
    assert (rows[0].scale_min, rows[0].scale_max, rows[3].scale_max) == (1, 5, 10)
    assert rows[3].answered_at is None and rows[0].answered_at is not None


async def test_statistics_of_a_built_history(services: Services) -> None:
    org = await _org(services)
    day = datetime(2026, 12, 1, 15, tzinfo=UTC)  # 10:00 in New York
    # satisfaction: 5, 4, 4, 2, 1 answered and one caller who left it unanswered.
    # recommend: asked only of the five who rated; 10, 9, 7, 3 answered, one left.
    # resolved: asked of the same five; yes, yes, no answered, two left.
    history = [
        ({"satisfaction": 5, "recommend": 10, "resolved": True}, "alice"),
        ({"satisfaction": 4, "recommend": 9, "resolved": True}, "alice"),
        ({"satisfaction": 4, "recommend": 7, "resolved": False}, "bob"),
        ({"satisfaction": 2, "recommend": 3}, "bob"),
        ({"satisfaction": 1}, "bob"),
        ({}, "bob"),
    ]
    for answers, agent in history:
        reached = ["satisfaction"] + (["recommend", "resolved"] if answers else [])
        iid = await _interaction(services, org, at=day, agent=agent)
        async with services.sessionmaker() as db:
            await store_answers(db, iid, _survey_trace(answers, reached), at=day)
            await db.commit()
    # Outside the period in New York (Nov 30, 22:00 local) though Dec 1 in UTC, and one in
    # another queue: both change the numbers only when the filters let them in.
    late = datetime(2026, 12, 1, 3, tzinfo=UTC)
    iid = await _interaction(services, org, at=late, agent="alice")
    billing = await _interaction(services, org, at=day, queue="Billing", agent="carol")
    async with services.sessionmaker() as db:
        await store_answers(db, iid, _survey_trace({"satisfaction": 1}, ["satisfaction"]), at=late)
        await store_answers(
            db, billing, _survey_trace({"satisfaction": 3}, ["satisfaction"]), at=day
        )
        await db.commit()

    start, end = local_day_range(date(2026, 12, 1), date(2026, 12, 1), TZ)
    general = SurveyFilter(start, end, queue_id=org["queues"]["General"])
    async with services.sessionmaker() as db:
        stats = await survey_stats(db, "support_csat", general)
        everyone = await survey_stats(db, "support_csat", SurveyFilter(start, end))
        wider = await survey_stats(
            db,
            "support_csat",
            SurveyFilter(*local_day_range(date(2026, 11, 30), date(2026, 12, 1), TZ)),
        )
        bob = await survey_stats(
            db, "support_csat", SurveyFilter(start, end, agent_id=org["agents"]["bob"])
        )
    by = {q.question: q for q in stats.questions}
    assert [q.question for q in stats.questions] == ["satisfaction", "recommend", "resolved"]
    assert stats.contacts == 6
    sat = by["satisfaction"]
    assert (sat.reached, sat.answered, sat.dropped) == (6, 5, 1)
    assert sat.drop_off == 16.7  # 1 / 6
    assert sat.distribution == [("1", 1), ("2", 1), ("3", 0), ("4", 2), ("5", 1)]
    assert sat.mean == 3.2  # 16 / 5
    assert sat.csat == 60.0  # 4, 4, 5: 3 of 5
    assert sat.nps is None
    rec = by["recommend"]
    assert (rec.reached, rec.answered, rec.drop_off) == (5, 4, 20.0)
    assert rec.mean == 7.25  # 29 / 4
    assert rec.nps == 25.0  # promoters 10, 9 (2); detractors 3 (1): (2 - 1) / 4
    assert rec.csat is None
    res = by["resolved"]
    assert (res.reached, res.answered, res.drop_off) == (5, 3, 40.0)
    assert res.distribution == [("yes", 2), ("no", 1)]
    assert res.mean == 0.67  # 2 of 3 said yes

    # All queues: Carol's 3 in Billing joins (7 reached, mean 19 / 6, CSAT 3 of 6).
    sat_all = everyone.questions[0]
    assert (sat_all.reached, sat_all.answered, sat_all.mean, sat_all.csat) == (7, 6, 3.17, 50.0)
    # One more day back takes in the answer given at 22:00 on Nov 30, New York time.
    assert (wider.contacts, wider.questions[0].answered) == (8, 7)
    # Bob's contacts: satisfaction 4, 2, 1 answered and one left; CSAT 1 of 3.
    sat_bob = bob.questions[0]
    assert (sat_bob.reached, sat_bob.answered, sat_bob.csat) == (4, 3, 33.3)


FIGURES_TRACES = [
    # nodes, outcome (main_menu's node names; a sub-dialog node is "sub.node")
    (["welcome", "main", "agent_queue"], "queued"),
    (["welcome", "main", "main", "agent_queue"], "queued"),  # main visited twice
    (["welcome", "main"], "caller_hangup"),
    (["welcome", "main", "goodbye"], "hangup"),
    (["welcome", "main", "identify.ask_account"], "caller_hangup"),
    (["welcome", "main"], None),  # a text session still running
]


async def test_self_service_figures_of_a_built_history(services: Services) -> None:
    org = await _org(services)
    day = datetime(2026, 12, 2, 12, tzinfo=UTC)
    for nodes, outcome in FIGURES_TRACES:
        trace = {"version": {"dialog": "main_menu", "number": 1}, "nodes": nodes}
        await _interaction(services, org, at=day, trace={**trace, "outcome": outcome})
    other = {"version": {"dialog": "demo_phone_menu", "number": 1}, "nodes": ["welcome"]}
    await _interaction(services, org, at=day, trace={**other, "outcome": "queued"})
    before = {"version": {"dialog": "main_menu", "number": 1}, "nodes": ["welcome"]}
    await _interaction(
        services, org, at=datetime(2026, 11, 20, tzinfo=UTC), trace={**before, "outcome": "hangup"}
    )
    await _interaction(services, org, at=day)  # no dialog at all

    start, end = local_day_range(date(2026, 12, 1), date(2026, 12, 2), TZ)
    async with services.sessionmaker() as db:
        figures = await dialog_figures(db, "main_menu", start, end)
    assert figures.sessions == 6 and figures.in_progress == 1
    # Finished: 5. Without an agent: the dialog's hang-up and two callers hanging up (3);
    # handed over: the two queued. Containment 3 / 5.
    assert (figures.contained, figures.handed_over, figures.caller_hangups) == (3, 2, 2)
    assert figures.containment == 60.0
    nodes = figures.nodes
    assert nodes["main.welcome"].visits == 6 and nodes["main.welcome"].exits == 0
    main = nodes["main.main"]
    assert (main.visits, main.exits, main.hangups, main.to_agent) == (7, 1, 1, 0)
    general = nodes["main.agent_queue"]
    assert (general.visits, general.exits, general.to_agent) == (2, 2, 2)
    assert (nodes["main.goodbye"].exits, nodes["main.goodbye"].hangups) == (1, 0)
    assert nodes["identify.ask_account"].hangups == 1

    # The figures drawn on the flow: an extra line under each node's name.
    dialog = ivr_dialogs.load_dialog(
        (LIBRARY / "main_menu.yaml").read_text(), file="main_menu.yaml"
    )
    dot = to_dot(dialog, figures.notes())
    assert '"main.main" [label="main (menu)\\nvisits 7 · exits 1 · hang-ups 1"' in dot
    assert "visits 2 · exits 2 · to agent 2" in dot
    assert "visits" not in to_dot(dialog)
