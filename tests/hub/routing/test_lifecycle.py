"""Offer → accept → wrap-up → close, on SQLite and PostgreSQL, through the real services."""

from __future__ import annotations

import pytest
from sqlmodel import select

from hub.events import agent_topic, interaction_topic
from hub.routing.service import NotYourInteraction, OfferGone
from hub.services import Services
from models import (
    Disposition,
    InteractionState,
    OfferOutcome,
    PresenceChange,
    PresenceState,
    Queue,
)
from tests.hub.routing.helpers import (
    agent,
    chat,
    interaction,
    next_named,
    offers_for,
    queue_id,
    set_ready,
    update,
)


async def test_offer_accept_close_and_the_agent_is_ready_again(services: Services):
    (alice,) = await set_ready(services, "alice")
    chat_id = await chat(services)
    async with services.bus.subscribe([agent_topic(alice), interaction_topic(chat_id)]) as events:
        made = await services.routing.dispatch()
        offer_event = await next_named(events, "offer")
        assert len(made) == 1
        assert offer_event.data["interaction_id"] == chat_id
        assert offer_event.data["offer_id"] == made[0]

        accepted = await services.routing.accept_offer(made[0], alice)
        assert accepted.state == InteractionState.ACTIVE and accepted.agent_id == alice
        joined = await next_named(events, "state")
        while joined.data["state"] != "active":
            joined = await next_named(events, "state")
        assert joined.data["agent_id"] == alice
    assert (await agent(services, alice)).presence == PresenceState.BUSY

    async with services.sessionmaker() as db:
        resolved = (await db.exec(select(Disposition).where(Disposition.code == "resolved"))).one()
    await services.routing.close(
        chat_id, agent_id=alice, disposition_id=resolved.id, notes="sorted the invoice"
    )
    closed = await interaction(services, chat_id)
    assert closed.state == InteractionState.CLOSED
    assert closed.disposition_id == resolved.id and closed.wrapup_notes == "sorted the invoice"
    assert (await agent(services, alice)).presence == PresenceState.READY
    async with services.sessionmaker() as db:
        history = (
            await db.exec(
                select(PresenceChange.state)
                .where(PresenceChange.agent_id == alice)
                .order_by(PresenceChange.id)
            )
        ).all()
    assert history == ["ready", "busy", "ready"]


async def test_an_offer_cannot_be_accepted_twice_or_by_another_agent(services: Services):
    alice, bob = await set_ready(services, "alice", "bob")
    await chat(services)
    (offer_id,) = await services.routing.dispatch()
    (offer,) = await offers_for(services, (await offers_by_id(services, offer_id)))
    other = bob if offer.agent_id == alice else alice
    with pytest.raises(OfferGone):
        await services.routing.accept_offer(offer_id, other)
    await services.routing.accept_offer(offer_id, offer.agent_id)
    with pytest.raises(OfferGone):
        await services.routing.accept_offer(offer_id, offer.agent_id)


async def offers_by_id(services: Services, offer_id: int) -> int:
    from models import Offer

    async with services.sessionmaker() as db:
        row = await db.get(Offer, offer_id)
        assert row is not None
        return row.interaction_id


async def test_reject_goes_to_the_next_agent(services: Services):
    alice, bob = await set_ready(services, "alice", "bob")
    chat_id = await chat(services)
    (first,) = await services.routing.dispatch()
    (offer,) = await offers_for(services, chat_id)
    await services.routing.reject_offer(first, offer.agent_id)
    (second,) = await services.routing.dispatch()
    offers = await offers_for(services, chat_id)
    assert [o.outcome for o in offers] == [OfferOutcome.REJECTED, OfferOutcome.PENDING]
    assert {o.agent_id for o in offers} == {alice, bob}
    assert offers[1].id == second
    # the one who rejected stays ready
    assert (await agent(services, offer.agent_id)).presence == PresenceState.READY


async def test_wrap_up_then_close_with_not_ready(services: Services):
    (alice,) = await set_ready(services, "alice")
    chat_id = await chat(services)
    (offer_id,) = await services.routing.dispatch()
    await services.routing.accept_offer(offer_id, alice)
    await services.routing.wrap_up(chat_id, agent_id=alice)
    assert (await interaction(services, chat_id)).state == InteractionState.WRAP_UP
    assert (await agent(services, alice)).presence == PresenceState.WRAP_UP
    # nothing is offered to an agent in wrap-up
    await chat(services, sender="visitor-2")
    assert await services.routing.dispatch() == []
    await services.routing.close(
        chat_id,
        agent_id=alice,
        disposition_id=None,
        notes="",
        next_presence=PresenceState.NOT_READY,
        reason="break",
    )
    after = await agent(services, alice)
    assert (after.presence, after.presence_reason) == (PresenceState.NOT_READY, "break")
    assert await services.routing.dispatch() == []


async def test_only_the_holder_may_close(services: Services):
    alice, bob = await set_ready(services, "alice", "bob")
    chat_id = await chat(services)
    (offer_id,) = await services.routing.dispatch()
    (offer,) = await offers_for(services, chat_id)
    await services.routing.accept_offer(offer_id, offer.agent_id)
    other = bob if offer.agent_id == alice else alice
    with pytest.raises(NotYourInteraction):
        await services.routing.close(chat_id, agent_id=other, disposition_id=None, notes="")


async def test_the_running_dispatcher_offers_and_reoffers_after_ring_no_answer(services: Services):
    """The background loop alone: a new chat is offered (woken by ingest), the offer rings
    out, that agent goes not-ready "missed" and the other agent gets it."""
    services.settings.dispatch_interval_seconds = 0.05
    alice, bob = await set_ready(services, "alice", "bob")
    general = await queue_id(services, "General")
    await update(services, Queue, general, offer_timeout_seconds=1)
    async with services.bus.subscribe([agent_topic(alice), agent_topic(bob)]) as events:
        await services.routing.start()
        try:
            chat_id = await chat(services)
            first = await next_named(events, "offer")
            missed_by = int(first.topic.split(".")[1])
            presence = await next_named(events, "presence")
            assert presence.topic == agent_topic(missed_by)
            assert presence.data == {"state": "not_ready", "reason": "missed"}
            second = await next_named(events, "offer")
        finally:
            await services.routing.stop()
    assert first.data["interaction_id"] == second.data["interaction_id"] == chat_id
    assert int(second.topic.split(".")[1]) == ({alice, bob} - {missed_by}).pop()


async def test_the_kept_router_reoffers_when_the_cool_down_ends(
    services: Services, monkeypatch: pytest.MonkeyPatch
):
    """The running dispatcher keeps its index between passes; an agent who rejected an item
    must get it again once the re-offer cool-down ends, with no other event to prompt it."""
    import hub.routing.snapshot as snapshot

    monkeypatch.setattr(snapshot, "REOFFER_COOLDOWN_SECONDS", 1.5)
    services.settings.dispatch_interval_seconds = 0.1
    (alice,) = await set_ready(services, "alice")
    async with services.bus.subscribe([agent_topic(alice)]) as events:
        await services.routing.start()
        try:
            chat_id = await chat(services)
            first = await next_named(events, "offer")
            await services.routing.reject_offer(first.data["offer_id"], alice)
            second = await next_named(events, "offer", timeout=5.0)  # rebuilds every 10 s
        finally:
            await services.routing.stop()
    assert first.data["interaction_id"] == second.data["interaction_id"] == chat_id
    offers = await offers_for(services, chat_id)
    gap = offers[1].offered_at - offers[0].decided_at  # type: ignore[operator]
    assert 1.4 <= gap.total_seconds() < 3.0
