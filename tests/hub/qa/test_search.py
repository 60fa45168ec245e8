"""Search over call transcripts and text conversations, on SQLite FTS5 and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from hub.qa.indexer import QaIndexer
from hub.qa.query import QueryError
from hub.qa.search import SearchFilters, browse, search
from hub.services import Services
from tests.hub.qa.helpers import agent_id, make_call, make_text, queue_id


@pytest.fixture
async def corpus(services: Services) -> dict[str, int]:
    async with services.sessionmaker() as db:
        alice = await agent_id(db, "alice")
        bob = await agent_id(db, "bob")
        general = await queue_id(db, "General")
        billing = await queue_id(db, "Billing")
        old = datetime.now(UTC) - timedelta(days=40)
        call = await make_call(
            db,
            agent=alice,
            queue=billing,
            segments=[
                ("agent", 0, "Thank you for calling, this call is recorded for quality."),
                ("customer", 3000, "I want a refund for the broken headphones."),
                ("agent", 7000, "I can offer a replacement or a refund to your card."),
                ("customer", 12000, "My card is [CARD], please cancel the order."),
            ],
            metrics={"longest_silence_seconds": 6.5, "sentiment": {"end": -0.4}},
        )
        old_call = await make_call(
            db,
            agent=bob,
            queue=general,
            at=old,
            segments=[("customer", 0, "The delivery was late again, I want a refund.")],
            metrics={"longest_silence_seconds": 1.0, "sentiment": {"end": 0.3}},
        )
        chat = await make_text(
            db,
            channel="webchat",
            agent=bob,
            messages=[
                ("contact", "Hi, my card 4111 1111 1111 1111 was charged twice, refund please"),
                ("agent", "Sorry about that, the refund is on its way."),
            ],
        )
        email = await make_text(
            db,
            channel="email",
            agent=alice,
            messages=[("contact", "Cancellation request: please cancel my subscription.")],
        )
    indexer = QaIndexer(services)
    while await indexer.run_once():
        pass
    return {
        "call": call.id,
        "old_call": old_call.id,
        "chat": chat.id,
        "email": email.id,
        "alice": alice,
        "bob": bob,
        "billing": billing,
    }  # type: ignore[dict-item]


async def run(services: Services, text: str, **filters) -> list[int]:
    async with services.sessionmaker() as db:
        result = await search(db, text, SearchFilters(**filters))
    return [h.interaction_id for h in result.hits]


async def test_calls_and_text_conversations_are_searched_together(services, corpus):
    """Words, phrases, prefixes, NEAR, NOT and OR over both; only redacted text."""
    found = await run(services, "refund")
    assert set(found) == {corpus["call"], corpus["old_call"], corpus["chat"]}

    # a card number finds nothing: only redacted text is indexed
    assert await run(services, "4111") == []
    assert await run(services, '"4111 1111 1111 1111"') == []

    # phrases, prefixes, NEAR, NOT, OR
    assert set(await run(services, '"broken headphones"')) == {corpus["call"]}
    assert await run(services, '"headphones broken"') == []
    assert set(await run(services, "cancel*")) == {corpus["call"], corpus["email"]}
    assert set(await run(services, "refund NEAR/2 card")) == {corpus["call"]}
    assert set(await run(services, "refund -late")) == {corpus["call"], corpus["chat"]}
    assert set(await run(services, "refund NOT late NOT twice NOT sorry")) == {corpus["call"]}
    assert set(await run(services, "headphones OR subscription")) == {
        corpus["call"],
        corpus["email"],
    }

    # by speaker
    assert set(await run(services, "refund", speaker="customer")) == {
        corpus["call"],
        corpus["old_call"],
        corpus["chat"],
    }
    # the agent said "refund" on the call and in the chat; the old call's customer did not
    assert set(await run(services, "refund", speaker="agent")) == {corpus["call"], corpus["chat"]}
    assert await run(services, "headphones", speaker="agent") == []


async def test_filters_order_snippets_and_indexing(services, corpus):
    today = datetime.now(UTC).date()
    recent = await run(services, "refund", date_from=today - timedelta(days=7), date_to=today)
    assert corpus["old_call"] not in recent and corpus["call"] in recent
    assert set(await run(services, "refund", date_to=today - timedelta(days=30))) == {
        corpus["old_call"]
    }
    assert set(await run(services, "refund", queue_id=corpus["billing"])) == {corpus["call"]}
    assert set(await run(services, "refund", agent_id=corpus["bob"])) == {
        corpus["old_call"],
        corpus["chat"],
    }
    assert set(await run(services, "refund", channel="webchat")) == {corpus["chat"]}
    assert set(await run(services, "refund", sentiment="negative")) == {corpus["call"]}
    assert set(await run(services, "refund", sentiment="positive")) == {corpus["old_call"]}
    assert set(await run(services, "refund", min_silence_seconds=5)) == {corpus["call"]}
    assert await run(services, "refund", date_from=date(2000, 1, 1), date_to=date(2000, 1, 2)) == []

    # newest first, capped counts, snippets
    async with services.sessionmaker() as db:
        result = await search(db, "refund", limit=2, cap=3)
    assert result.total == 3 and result.capped  # four documents say refund
    assert len(result.hits) == 2
    assert result.hits[0].doc_id > result.hits[1].doc_id
    # within the cap, PostgreSQL sorts the matches instead of walking the ids backward:
    # the same newest hits, pages included
    async with services.sessionmaker() as db:
        within = await search(db, "refund", limit=2, cap=1000)
        page = await search(db, "refund", limit=2, offset=2, cap=1000)
        walked = await search(db, "refund", limit=2, offset=2, cap=3)
    assert not within.capped and within.total == 5  # two segments, one more, two messages
    assert [h.doc_id for h in within.hits] == [h.doc_id for h in result.hits]
    ids = [h.doc_id for h in page.hits]
    assert len(ids) == 2 and ids[0] > ids[1] and ids[0] < result.hits[1].doc_id
    assert ids == [h.doc_id for h in walked.hits]
    async with services.sessionmaker() as db:
        result = await search(db, '"broken headphones"')
    (hit,) = result.hits
    assert "<mark>broken" in hit.snippet and "headphones</mark>" in hit.snippet.replace(
        "</mark> <mark>", " "
    )
    assert hit.speaker == "customer" and hit.start_ms == 3000 and hit.source == "segment"

    # what people wrote is escaped in snippets
    async with services.sessionmaker() as db:
        await make_text(
            db,
            channel="webchat",
            agent=None,
            messages=[("contact", "scriptword <script>alert(1)</script> here")],
        )
    await QaIndexer(services).run_once()
    async with services.sessionmaker() as db:
        (hit,) = (await search(db, "scriptword")).hits
    # SQLite shows the tag escaped; PostgreSQL's ts_headline drops tags: neither runs it
    assert "<script>" not in hit.snippet and "alert(1)" in hit.snippet

    # new messages are indexed once, even by two indexers (two hub processes)
    first, second = QaIndexer(services), QaIndexer(services)
    assert await first.run_once() == 0 and await second.run_once() == 0
    async with services.sessionmaker() as db:
        await make_text(db, channel="webchat", agent=None, messages=[("contact", "zebra crossing")])
    assert await first.run_once() == 1
    await second.run_once()
    assert len(await run(services, "zebra")) == 1

    for bad in ["", "   ", "-refund", "NOT refund", "a NEAR/99 b"]:
        async with services.sessionmaker() as db:
            with pytest.raises(QueryError):
                await search(db, bad)


async def browsed(services: Services, **filters) -> list[int]:
    async with services.sessionmaker() as db:
        result = await browse(db, SearchFilters(**filters))
    assert result.total == len(result.hits) and not result.capped
    return [h.interaction_id for h in result.hits]


async def test_filters_alone_list_interactions_newest_first(services, corpus):
    """No words: one hit per interaction, its first line as the snippet, by the same
    filters as a search."""
    everything = [corpus["email"], corpus["chat"], corpus["old_call"], corpus["call"]]
    assert await browsed(services) == everything  # by interaction id, newest first
    assert await browsed(services, agent_id=corpus["bob"]) == [corpus["chat"], corpus["old_call"]]
    assert await browsed(services, queue_id=corpus["billing"]) == [corpus["call"]]
    assert await browsed(services, channel="email") == [corpus["email"]]
    assert await browsed(services, sentiment="negative") == [corpus["call"]]
    assert await browsed(services, min_silence_seconds=5) == [corpus["call"]]
    today = datetime.now(UTC).date()
    assert corpus["old_call"] not in await browsed(services, date_from=today - timedelta(days=7))
    assert await browsed(services, date_to=today - timedelta(days=30)) == [corpus["old_call"]]
    assert await browsed(services, date_from=date(2000, 1, 1), date_to=date(2000, 1, 2)) == []
    async with services.sessionmaker() as db:
        call = (await browse(db, SearchFilters(queue_id=corpus["billing"]))).hits[0]
        said = await browse(db, SearchFilters(queue_id=corpus["billing"], speaker="customer"))
        page = await browse(db, limit=2, offset=2, cap=3)
    assert call.snippet == "Thank you for calling, this call is recorded for quality."
    assert call.speaker == "agent" and call.start_ms == 0
    assert said.hits[0].snippet.startswith("I want a refund") and said.hits[0].start_ms == 3000
    assert page.total == 3 and page.capped
    assert [h.interaction_id for h in page.hits] == everything[2:]

    # what people wrote is escaped, and a long first line is cut like a snippet
    async with services.sessionmaker() as db:
        await make_text(
            db,
            channel="sms",
            agent=None,
            messages=[("contact", "<b>bold</b> " + "word " * 40)],
        )
    await QaIndexer(services).run_once()
    async with services.sessionmaker() as db:
        (hit,) = (await browse(db, SearchFilters(channel="sms"))).hits
    assert hit.snippet.startswith("&lt;b&gt;bold&lt;/b&gt; word") and hit.snippet.endswith("…")


async def test_a_date_range_is_searched_as_the_id_range_of_its_days(services, corpus):
    """``qadocday`` (kept by a trigger on insert) holds each day's lowest and highest document
    id; a date filter walks that range. A day indexed again later, after newer days, widens
    its range and is still searched whole."""
    old_day = (datetime.now(UTC) - timedelta(days=40)).date()
    async with services.sessionmaker() as db:
        late = await make_call(
            db,
            agent=corpus["bob"],
            queue=None,
            at=datetime.combine(old_day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=23),
            segments=[("customer", 0, "Another refund for the old parcel.")],
        )
    indexer = QaIndexer(services)
    while await indexer.run_once():
        pass
    found = await run(services, "refund", date_from=old_day, date_to=old_day)
    assert found == [late.id, corpus["old_call"]]  # newest (highest id) first
    assert set(await run(services, "refund", date_from=old_day + timedelta(days=1))) == {
        corpus["call"],
        corpus["chat"],
    }
    async with services.sessionmaker() as db:
        conn = await db.connection()
        days = (
            await conn.execute(sa.text("SELECT day, min_id, max_id FROM qadocday ORDER BY day"))
        ).all()
        docs = (
            await conn.execute(
                sa.text("SELECT id FROM qadoc WHERE interaction_id IN (:a, :b)"),
                {"a": late.id, "b": corpus["old_call"]},
            )
        ).all()
    ranges = {str(d)[:10]: (lo, hi) for d, lo, hi in days}
    lo, hi = ranges[old_day.isoformat()]
    assert lo <= min(r[0] for r in docs) and max(r[0] for r in docs) <= hi
    assert len(ranges) == 2  # the old day and today (the chat, the email and the call)


async def test_near_finds_the_same_hits_within_the_cap_and_above_it(services, corpus):
    """On PostgreSQL the index looks NEAR up by its words alone and the NEAR itself is checked
    on those rows: words further apart are still left out, and the newest hits are the same
    whether the matches are collected (within the cap) or the ids walked (above it)."""
    async with services.sessionmaker() as db:
        near = await make_text(
            db,
            channel="webchat",
            agent=None,
            messages=[
                ("contact", "Please refund the card."),
                ("contact", "The card refund never came."),
                ("contact", "Where is my card refund?"),
            ],
        )
        far = await make_text(
            db,
            channel="webchat",
            agent=None,
            messages=[("contact", "My card was lost, and the shop then offered me a refund.")],
        )
    indexer = QaIndexer(services)
    while await indexer.run_once():
        pass
    text = "card NEAR/2 refund"
    async with services.sessionmaker() as db:
        within = await search(db, text, limit=10, cap=1000)
        walked = await search(db, text, limit=10, cap=2)
        page = await search(db, text, limit=2, offset=1, cap=1000)
        walked_page = await search(db, text, limit=2, offset=1, cap=2)
    ids = [h.doc_id for h in within.hits]
    assert not within.capped and within.total == 4  # three here, "a refund to your card"
    assert [h.interaction_id for h in within.hits] == [near.id] * 3 + [corpus["call"]]
    assert far.id not in {h.interaction_id for h in within.hits}
    assert ids == sorted(ids, reverse=True)
    assert walked.capped and walked.total == 2 and [h.doc_id for h in walked.hits] == ids
    assert [h.doc_id for h in page.hits] == [h.doc_id for h in walked_page.hits] == ids[1:3]
    async with services.sessionmaker() as db:
        excluded = await search(db, "card -(card NEAR/2 refund)", limit=10)
    assert near.id not in {h.interaction_id for h in excluded.hits}
    assert far.id in {h.interaction_id for h in excluded.hits}
