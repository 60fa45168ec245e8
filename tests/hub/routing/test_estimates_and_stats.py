"""Queue position, estimated wait from recent handle times, and the live stats."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hub.routing.estimates import DEFAULT_HANDLE_SECONDS, estimated_wait
from hub.routing.hours import is_open
from hub.services import Services
from hub.stats import agent_stats, queue_stats
from models import BusinessHours, Interaction, Offer, PresenceState, utcnow
from tests.hub.routing.helpers import age, agent_id, chat, set_ready


def test_business_hours_follow_the_time_zone_and_holidays():
    hours = BusinessHours(
        name="Seoul office",
        timezone="Asia/Seoul",
        weekly={"mon": [["09:00", "12:00"], ["13:00", "18:00"]], "sat": [["10:00", "24:00"]]},
        holidays=["2026-12-28"],
    )
    seoul = ZoneInfo("Asia/Seoul")
    assert is_open(hours, datetime(2026, 11, 23, 9, 0, tzinfo=seoul))  # a Monday
    assert not is_open(hours, datetime(2026, 11, 23, 12, 30, tzinfo=seoul))  # lunch
    assert not is_open(hours, datetime(2026, 11, 23, 18, 0, tzinfo=seoul))  # end is exclusive
    assert is_open(hours, datetime(2026, 11, 28, 23, 59, tzinfo=seoul))  # "24:00"
    assert not is_open(hours, datetime(2026, 11, 24, 10, 0, tzinfo=seoul))  # Tuesday: closed
    assert not is_open(hours, datetime(2026, 12, 28, 10, 0, tzinfo=seoul))  # holiday Monday
    # 00:30 UTC on Monday is 09:30 in Seoul
    assert is_open(hours, datetime(2026, 11, 23, 0, 30, tzinfo=ZoneInfo("UTC")))
    assert is_open(None, datetime(2026, 11, 23, tzinfo=seoul))


def test_estimated_wait_grows_with_position_and_shrinks_with_servers():
    assert estimated_wait(1, 120.0, 1) == 60
    assert estimated_wait(3, 120.0, 1) == 300
    assert estimated_wait(3, 120.0, 2) == 150
    assert estimated_wait(1, 120.0, 0) is None


async def test_queue_position_and_ewt_from_recent_handle_times(services: Services):
    chats = [await chat(services, sender=f"v{n}") for n in range(3)]
    positions = [await services.routing.queue_position(c) for c in chats]
    assert [p.position for p in positions] == [1, 2, 3]
    assert all(p.ewt_seconds is None and p.agents_logged_in == 0 and p.open for p in positions)

    bob = await agent_id(services, "bob")  # logged in, not ready: still counts as staff
    await services.presence.set_presence(bob, PresenceState.NOT_READY, "break")
    third = await services.routing.queue_position(chats[2])
    assert third.agents_logged_in == 1
    assert third.ewt_seconds == estimated_wait(3, DEFAULT_HANDLE_SECONDS, 3)  # 3 chat slots

    # history: one chat in the last hour was handled in 60 s
    done = await chat(services, sender="earlier")
    now = utcnow()
    async with services.sessionmaker() as db:
        row = await db.get(Interaction, done)
        assert row is not None
        row.state, row.answered_at, row.closed_at = (
            "closed",
            now - timedelta(seconds=90),
            now - timedelta(seconds=30),
        )
        db.add(row)
        await db.commit()
    assert (await services.routing.queue_position(chats[2])).ewt_seconds == estimated_wait(
        3, 60.0, 3
    )

    # an older waiter with the same priority moves ahead
    await age(services, chats[2], utcnow() - timedelta(minutes=5))
    assert (await services.routing.queue_position(chats[2])).position == 1


async def test_queue_and_agent_stats(services: Services):
    alice, bob = await set_ready(services, "alice", "bob")
    first = await chat(services, sender="a")
    await chat(services, sender="b")
    await age(services, first, utcnow() - timedelta(seconds=40))
    async with services.sessionmaker() as db:
        general = next(q for q in await queue_stats(db) if q.name == "General")
    assert (general.waiting, general.agents_ready, general.agents_busy) == (2, 2, 0)
    assert general.longest_wait_seconds >= 40 and general.open
    assert general.service_level_pct is None

    made = await services.routing.dispatch()
    assert len(made) == 2
    async with services.sessionmaker() as db:
        offers = [await db.get(Offer, offer_id) for offer_id in made]
    for offer in offers:
        assert offer is not None
        await services.routing.accept_offer(offer.id, offer.agent_id)  # type: ignore[arg-type]
    async with services.sessionmaker() as db:
        general = next(q for q in await queue_stats(db) if q.name == "General")
        agents = {a.agent_id: a for a in await agent_stats(db)}
    assert (general.waiting, general.agents_ready, general.agents_busy) == (0, 0, 2)
    # the one that waited 40 s missed the 30 s target; the other one made it
    assert general.service_level_pct == 50.0
    working = sorted(i for a in (alice, bob) for i, _c, _s in agents[a].interactions)
    assert working == sorted(o.interaction_id for o in offers if o is not None)
    assert agents[alice].presence == "busy" and agents[alice].since is not None
    assert all(a.interactions == [] for k, a in agents.items() if k not in (alice, bob))
