"""The QA page: QA staff search and open interactions, admins keep categories; agents open
only their own; every search and opening is audited, the query redacted."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from hub.qa.indexer import QaIndexer
from hub.services import Services
from models import AuditEntry, Category, InteractionCategory
from tests.hub.qa.helpers import agent_id, make_call, make_text
from tests.web.conftest import login


@pytest.fixture
def web_database_url(tmp_path: Path, seeded_sqlite: Path) -> str:
    """SQLite only: the search itself runs on both databases in tests/hub/qa/test_search.py;
    these tests are about the pages."""
    target = tmp_path / "hub.sqlite3"
    shutil.copyfile(seeded_sqlite, target)
    return f"sqlite+aiosqlite:///{target}"


async def _corpus(services: Services) -> dict[str, int]:
    async with services.sessionmaker() as db:
        alice = await agent_id(db, "alice")
        bob = await agent_id(db, "bob")
        call = await make_call(
            db,
            agent=alice,
            queue=None,
            segments=[
                ("agent", 0, "Thanks for calling, this call is recorded."),
                ("customer", 4000, "My parcel never arrived, I want my money back."),
            ],
            metrics={"longest_silence_seconds": 8.0, "sentiment": {"end": -0.6}},
        )
        chat = await make_text(
            db,
            channel="webchat",
            agent=bob,
            messages=[("contact", "<b>parcel</b> lost, card 4111 1111 1111 1111")],
        )
    await QaIndexer(services).run_once()
    return {"call": call.id, "chat": chat.id}  # type: ignore[dict-item]


async def test_qa_searches_and_opens_an_interaction(client: httpx.AsyncClient, services):
    ids = await _corpus(services)
    await login(client, "quinn")
    home = await client.get("/", follow_redirects=False)
    assert home.headers["location"] == "/qa"
    page = await client.get("/qa")
    assert page.status_code == 200 and "Search conversations" in page.text
    assert "no page of its own" not in page.text
    # with no words, the newest conversations: the chat (escaped), then the call
    assert "2 conversations, newest first" in page.text
    assert page.text.index(f"/qa/interactions/{ids['chat']}?doc=") < page.text.index(
        f"/qa/interactions/{ids['call']}?doc="
    )
    assert "&lt;b&gt;parcel&lt;/b&gt; lost" in page.text and "<b>parcel" not in page.text
    negative = await client.get("/qa", params={"sentiment": "negative", "min_silence": "5"})
    assert "1 conversation, newest first" in negative.text
    assert f"/qa/interactions/{ids['call']}?doc=" in negative.text
    assert "Thanks for calling, this call is recorded." in negative.text
    none = await client.get("/qa", params={"channel": "email"})
    assert "0 conversations" in none.text and "No transcribed call or conversation" in none.text

    found = await client.get("/qa", params={"q": "parcel"})
    assert found.status_code == 200
    assert f"/qa/interactions/{ids['call']}?doc=" in found.text
    assert f"/qa/interactions/{ids['chat']}?doc=" in found.text
    assert "<mark>parcel</mark>" in found.text
    assert "<b>parcel" not in found.text  # what the customer typed is escaped

    by_customer = await client.get("/qa", params={"q": "recorded", "speaker": "customer"})
    assert f"/qa/interactions/{ids['call']}" not in by_customer.text
    by_agent = await client.get("/qa", params={"q": "recorded", "speaker": "agent"})
    assert f"/qa/interactions/{ids['call']}" in by_agent.text

    card = await client.get("/qa", params={"q": '"4111 1111 1111 1111"'})
    assert "0 hits" in card.text

    opened = await client.get(f"/qa/interactions/{ids['chat']}")
    assert opened.status_code == 200
    assert "[CARD]" in opened.text and "4111" not in opened.text
    assert "&lt;b&gt;parcel" in opened.text
    call = await client.get(f"/qa/interactions/{ids['call']}")
    assert 'data-start-ms="4000"' in call.text and "money back" in call.text

    async with services.sessionmaker() as db:
        entries = (
            await db.exec(
                select(AuditEntry)
                .where(col(AuditEntry.action).in_(["qa.search", "qa.open"]))
                .order_by(col(AuditEntry.id))
            )
        ).all()
    searches = [e.after["query"] for e in entries if e.action == "qa.search"]
    assert "parcel" in searches and '"[CARD]"' in searches  # the card number is not kept
    browsed = [
        e.after["filters"] for e in entries if e.action == "qa.search" and not e.after["query"]
    ]
    assert {"sentiment": "negative", "min_silence_seconds": "5.0"} in browsed
    assert sum(e.action == "qa.open" for e in entries) == 2


async def test_bad_searches_say_what_is_wrong(client: httpx.AsyncClient, services):
    await login(client, "quinn")
    only_not = await client.get("/qa", params={"q": "-refund"})
    assert only_not.status_code == 400 and "cannot only exclude" in only_not.text
    bad_date = await client.get("/qa", params={"q": "x", "date_from": "yesterday"})
    assert bad_date.status_code == 422 and "From must be a date" in bad_date.text
    bad_speaker = await client.get("/qa", params={"q": "x", "speaker": "robot"})
    assert bad_speaker.status_code == 422


async def test_agents_open_only_their_own_and_cannot_search(client: httpx.AsyncClient, services):
    ids = await _corpus(services)
    await login(client, "alice")
    assert (await client.get(f"/qa/interactions/{ids['call']}")).status_code == 200
    assert (await client.get(f"/qa/interactions/{ids['chat']}")).status_code == 403
    assert (await client.get("/qa", params={"q": "parcel"})).status_code == 403


async def test_admin_defines_a_category_that_tags_history_and_filters_search(
    client: httpx.AsyncClient, services
):
    ids = await _corpus(services)
    await login(client, "quinn")
    refused = await client.post(
        "/qa/categories",
        data={"name": "x", "query": "y", "_csrf_token": client.cookies.get("csrftoken", "")},
    )
    assert refused.status_code == 403
    await client.post("/logout", data={"_csrf_token": client.cookies.get("csrftoken", "")})
    await login(client, "admin")
    token = client.cookies.get("csrftoken", "")
    bad = await client.post(
        "/qa/categories", data={"name": "Broken", "query": "-only", "_csrf_token": token}
    )
    assert bad.status_code == 422 and "cannot only exclude" in bad.text
    made = await client.post(
        "/qa/categories",
        data={
            "name": "Recording disclosure",
            "query": '"call is recorded"',
            "speaker": "agent",
            "first_seconds": "30",
            "metric": "longest_silence_seconds",
            "op": ">",
            "value": "5",
            "match": "all",
            "rerun": "1",
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    async with services.sessionmaker() as db:
        category = (await db.exec(select(Category))).one()
    # the rerun over history is a job of the hub's runner
    services.jobs.wake()
    for _ in range(100):
        async with services.sessionmaker() as db:
            tags = (await db.exec(select(InteractionCategory))).all()
        if tags:
            break
        await services.jobs.run_due()
    assert [t.interaction_id for t in tags] == [ids["call"]]
    found = await client.get("/qa", params={"q": "parcel", "category_id": str(category.id)})
    assert f"/qa/interactions/{ids['call']}" in found.text
    assert f"/qa/interactions/{ids['chat']}" not in found.text
    opened = await client.get(f"/qa/interactions/{ids['call']}")
    assert "Recording disclosure" in opened.text
