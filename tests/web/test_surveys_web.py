"""The survey statistics page and its CSV export for supervisors, and the self-service
figures on a dialog's flow for admins, over answers and traces built in the database; and
a web chat conversation through the sample survey dialog storing its answers."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import col, select

from hub.services import Services
from hub.surveys import store_answers
from models import Contact, Dialog, Inbox, Interaction, Queue, SurveyAnswer
from tests.hub.text_dialog_support import bot_lines
from tests.web.conftest import login


async def _built(services: Services) -> dict[str, int]:
    """Three voice contacts answered support_csat today; two ran main_menu."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    async with services.sessionmaker() as db:
        inbox = (await db.exec(select(Inbox).where(Inbox.kind == "voice"))).one()
        general = (await db.exec(select(Queue).where(Queue.name == "General"))).one()
        contact = Contact(name="Survey Taker")
        db.add(contact)
        await db.flush()
        ids = []
        for score, words, nodes, outcome in (
            (5, "great", ["welcome", "main", "goodbye"], "hangup"),
            (2, '=HYPERLINK("http://x")', ["welcome", "main", "agent_queue"], "queued"),
            (None, None, ["welcome", "main"], "caller_hangup"),
        ):
            row = Interaction(
                inbox_id=inbox.id,  # type: ignore[arg-type]
                contact_id=contact.id,  # type: ignore[arg-type]
                channel="voice",
                state="closed",
                queue_id=general.id,
                created_at=now,
                data={
                    "ivr": {
                        "version": {"dialog": "main_menu", "number": 1},
                        "nodes": nodes,
                        "outcome": outcome,
                    }
                },
            )
            db.add(row)
            await db.flush()
            ids.append(row.id)
            asked = [{"survey": "support_csat", "question": "satisfaction", "kind": "scale",
                      "min": 1, "max": 5},
                     {"survey": "support_csat", "question": "comment", "kind": "text"}]  # fmt: skip
            given = [] if score is None else [
                {"survey": "support_csat", "question": "satisfaction", "value": score},
                {"survey": "support_csat", "question": "comment", "value": words},
            ]  # fmt: skip
            await store_answers(
                db, row.id, {"survey_asked": asked, "survey": given, "version": {"dialog": "s"}}
            )  # type: ignore[arg-type]
        dialog = (await db.exec(select(Dialog).where(Dialog.name == "main_menu"))).one()
        await db.commit()
    return {"dialog": dialog.id, "general": general.id}  # type: ignore[dict-item]


async def test_survey_statistics_csv_and_figures_on_the_flow(
    client: httpx.AsyncClient, services: Services
) -> None:
    built = await _built(services)
    await login(client, "alice")
    assert (await client.get("/reports/surveys")).status_code == 403  # agents do not see it
    client.cookies.clear()
    await login(client, "sam")
    listing = await client.get("/reports/surveys")
    assert 'href="/reports/surveys/support_csat"' in listing.text
    page = await client.get(f"/reports/surveys/support_csat?queue={built['general']}")
    assert page.status_code == 200
    html = page.text
    # satisfaction: reached 3, answered 2 (5 and 2), CSAT 1 of 2, mean 3.5, drop-off 1 (33.3 %)
    assert "CSAT 50.0 %" in html and "3.50" in html and "1 (33.3 %)" in html
    assert "=HYPERLINK(&#34;http://x&#34;)" in html or "=HYPERLINK(&quot;http://x&quot;)" in html

    stats = await client.get("/reports/surveys/support_csat/export.csv?rows=stats")
    assert stats.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(stats.text)))
    five = next(r for r in lines if r["question"] == "satisfaction" and r["value"] == "5")
    assert (five["reached"], five["answered"], five["csat_pct"], five["count"]) == (
        "3", "2", "50.0", "1"
    )  # fmt: skip
    answers = await client.get("/reports/surveys/support_csat/export.csv?rows=answers")
    rows = list(csv.DictReader(io.StringIO(answers.text)))
    assert len(rows) == 6 and {r["queue"] for r in rows} == {"General"}
    assert '\'=HYPERLINK("http://x")' in {r["value"] for r in rows}  # no formula in a sheet

    bad = await client.get("/reports/surveys/support_csat?from=2026-13-01")
    assert bad.status_code == 422 and "From must be a date" in bad.text
    backwards = await client.get("/reports/surveys/support_csat?from=2026-12-02&to=2026-12-01")
    assert backwards.status_code == 422
    assert (await client.get("/reports/surveys/nope")).status_code == 404

    # The same history on main_menu's flow, for an admin.
    client.cookies.clear()
    await login(client, "admin")
    page = await client.get(f"/admin/dialogs/{built['dialog']}/figures")
    assert page.status_code == 200
    html = page.text
    # 3 sessions finished; the dialog's hang-up and the caller's hang-up end without an agent.
    assert "66.7 %" in html and "2 of 3 finished sessions" in html
    assert "visits 3 · exits 1 · hang&#45;ups 1" in html  # main, on the diagram (SVG text)
    assert '<tr data-node="agent_queue">' in html
    bad = await client.get(f"/admin/dialogs/{built['dialog']}/figures?to=yesterday")
    assert bad.status_code == 422


async def test_a_web_chat_through_the_survey_dialog_stores_its_answers(
    client: httpx.AsyncClient, services: Services
) -> None:
    async with services.sessionmaker() as db:
        dialog = (await db.exec(select(Dialog).where(Dialog.name == "satisfaction_survey"))).one()
        inbox = (await db.exec(select(Inbox).where(Inbox.kind == "webchat"))).one()
        inbox.dialog_id = dialog.id
        db.add(inbox)
        await db.commit()
    await client.get("/chat")
    for count, text in enumerate(["hello", "yes", "5", "yes", "9"], start=1):
        response = await client.post(
            "/chat/messages",
            data={"body": text, "source_id": secrets.token_hex(8)},
            headers={"x-csrftoken": client.cookies.get("csrftoken", "")},
        )
        assert response.status_code == 200, response.text
        async with services.sessionmaker() as db:
            chat = (
                await db.exec(
                    select(Interaction.id)
                    .where(Interaction.channel == "webchat")
                    .order_by(col(Interaction.id).desc())
                )
            ).first()
        await bot_lines(services, chat, count)  # type: ignore[arg-type]
    for _ in range(300):
        async with services.sessionmaker() as db:
            rows = (
                await db.exec(
                    select(SurveyAnswer)
                    .where(SurveyAnswer.interaction_id == chat)
                    .order_by(col(SurveyAnswer.position))
                )
            ).all()
        if rows:
            break
        await asyncio.sleep(0.05)
    assert [(r.question, r.value_text, r.channel) for r in rows] == [
        ("satisfaction", "5", "webchat"),
        ("resolved", "yes", "webchat"),
        ("recommend", "9", "webchat"),
    ]
    assert rows[0].dialog == "satisfaction_survey" and rows[0].dialog_version == 1
