"""Transfers, picking up left messages, VIP priority and per-channel capacity (services)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from hub.routing.service import AgentUnavailable, OfferGone
from hub.services import Services
from models import (
    Agent,
    Contact,
    Interaction,
    InteractionState,
    Message,
    OfferOutcome,
    PresenceState,
)
from tests.hub.routing.helpers import (
    agent,
    agent_id,
    chat,
    interaction,
    offers_for,
    queue_id,
    set_ready,
    update,
)


async def active_chat(services: Services, holder: int, sender: str = "visitor-1") -> int:
    chat_id = await chat(services, sender=sender)
    made = await services.routing.dispatch()
    (offer,) = [o for o in await offers_for(services, chat_id) if o.id in made]
    assert offer.agent_id == holder
    await services.routing.accept_offer(offer.id, holder)  # type: ignore[arg-type]
    return chat_id


async def test_transfer_to_queue_requeues_with_a_note_and_frees_the_agent(services: Services):
    (alice,) = await set_ready(services, "alice")
    chat_id = await active_chat(services, alice)
    carol, _erin = await set_ready(services, "carol", "erin")
    billing = await queue_id(services, "Billing")
    await services.routing.transfer_to_queue(
        chat_id, billing, by_agent_id=alice, note="wants a refund"
    )
    moved = await interaction(services, chat_id)
    assert (moved.state, moved.queue_id, moved.agent_id) == ("queued", billing, None)
    assert (await agent(services, alice)).presence == PresenceState.READY
    async with services.sessionmaker() as db:
        note = (
            await db.exec(select(Message).where(Message.interaction_id == chat_id, Message.private))
        ).one()
    assert note.body == "wants a refund"
    # Billing routes by highest skill: carol (5) before erin (4) and alice (3).
    assert len(await services.routing.dispatch()) == 1
    assert (await offers_for(services, chat_id))[-1].agent_id == carol


async def test_transfer_to_agent_is_a_targeted_offer(services: Services):
    (alice,) = await set_ready(services, "alice")
    chat_id = await active_chat(services, alice)
    (bob,) = await set_ready(services, "bob")
    await services.routing.transfer_to_agent(chat_id, bob, by_agent_id=alice, note="over to you")
    offer = (await offers_for(services, chat_id))[-1]
    assert offer.agent_id == bob and offer.outcome == OfferOutcome.PENDING
    assert offer.extra == {"transfer_from": alice}
    assert (await agent(services, alice)).presence == PresenceState.READY
    taken = await services.routing.accept_offer(offer.id, bob)  # type: ignore[arg-type]
    assert (taken.state, taken.agent_id) == ("active", bob)


async def test_a_rejected_transfer_goes_back_to_normal_routing(services: Services):
    (alice,) = await set_ready(services, "alice")
    chat_id = await active_chat(services, alice)
    (bob,) = await set_ready(services, "bob")
    await services.routing.transfer_to_agent(chat_id, bob, by_agent_id=alice)
    offer = (await offers_for(services, chat_id))[-1]
    await services.routing.reject_offer(offer.id, bob)  # type: ignore[arg-type]
    assert (await interaction(services, chat_id)).state == InteractionState.QUEUED
    # neither bob (just said no) nor alice (handed it off) gets it back right away
    assert await services.routing.dispatch() == []
    (carol,) = await set_ready(services, "carol")
    await services.routing.dispatch()
    assert (await offers_for(services, chat_id))[-1].agent_id == carol


async def test_transfer_to_an_unavailable_agent_is_refused(services: Services):
    (alice,) = await set_ready(services, "alice")
    chat_id = await active_chat(services, alice)
    bob = await agent_id(services, "bob")  # offline
    with pytest.raises(AgentUnavailable, match="Bob Okafor is not taking work now"):
        await services.routing.transfer_to_agent(chat_id, bob, by_agent_id=alice)
    assert (await interaction(services, chat_id)).state == InteractionState.ACTIVE


async def test_transfer_targets_are_the_agents_who_can_take_it_now(services: Services):
    """Named, taking work, with a free slot on the channel; a full one is refused by name."""
    from web.views import transfer_targets

    bob, carol, alice = [await agent_id(services, n) for n in ("bob", "carol", "alice")]
    for agent_pk in (alice, bob, carol):
        await update(services, Agent, agent_pk, capacity={"webchat": 1 if agent_pk == bob else 3})
    await set_ready(services, "bob")
    first = await active_chat(services, bob, sender="first")  # bob is now full
    await set_ready(services, "carol")
    second = await active_chat(services, carol, sender="second")
    await set_ready(services, "alice")
    async with services.sessionmaker() as db:
        held = await db.get(Interaction, second)
        targets = await transfer_targets(db, held)  # type: ignore[arg-type]
    names = [user.display_name for _agent, user in targets["agents"]]
    assert names == ["Alice Martin"]  # not Carol (she holds it), not Bob (full)
    with pytest.raises(AgentUnavailable, match="Bob Okafor has no free webchat slot now"):
        await services.routing.transfer_to_agent(second, bob, by_agent_id=carol)
    assert (await interaction(services, first)).agent_id == bob


async def test_leave_message_then_an_agent_picks_it_up(services: Services):
    chat_id = await chat(services)
    await services.routing.leave_message(chat_id)
    assert (await interaction(services, chat_id)).state == InteractionState.VOICEMAIL
    (alice,) = await set_ready(services, "alice")
    assert await services.routing.dispatch() == []  # a left message is not routed
    taken = await services.routing.pick_up(chat_id, alice)
    assert (taken.state, taken.agent_id) == ("active", alice)
    assert (await agent(services, alice)).presence == PresenceState.BUSY


async def test_leave_message_withdraws_a_ringing_offer(services: Services):
    (alice,) = await set_ready(services, "alice")
    chat_id = await chat(services)
    (offer_id,) = await services.routing.dispatch()
    await services.routing.leave_message(chat_id)
    assert [o.outcome for o in await offers_for(services, chat_id)] == [OfferOutcome.CANCELLED]
    with pytest.raises(OfferGone):
        await services.routing.accept_offer(offer_id, alice)


async def test_pick_up_a_queued_item_directly(services: Services):
    chat_id = await chat(services)
    alice = await agent_id(services, "alice")
    taken = await services.routing.pick_up(chat_id, alice)
    assert taken.state == "active"
    (offer,) = await offers_for(services, chat_id)
    assert offer.outcome == OfferOutcome.ACCEPTED and offer.agent_id == alice


async def test_a_vip_is_offered_before_an_earlier_regular_customer(services: Services):
    regular = await chat(services, sender="regular")
    vip = await chat(services, sender="vip")
    # ingest seeds the priority from the contact's VIP level
    contact_id = (await interaction(services, vip)).contact_id
    await update(services, Contact, contact_id, vip_level=2)
    await update(services, Interaction, vip, priority=2)
    (bob,) = await set_ready(services, "bob")
    await update(services, Agent, bob, capacity={"webchat": 1})
    await services.routing.dispatch()
    assert [o.agent_id for o in await offers_for(services, vip)] == [bob]
    assert await offers_for(services, regular) == []


async def test_per_channel_capacity_is_respected(services: Services):
    (bob,) = await set_ready(services, "bob")  # webchat capacity 3
    chats = [await chat(services, sender=f"v{n}") for n in range(5)]
    made = await services.routing.dispatch()
    assert len(made) == 3
    offered = [c for c in chats if await offers_for(services, c)]
    assert offered == chats[:3]  # first come, first served
    for chat_id in offered:
        (offer,) = await offers_for(services, chat_id)
        await services.routing.accept_offer(offer.id, bob)  # type: ignore[arg-type]
    assert await services.routing.dispatch() == []  # full: 3 active chats
    await services.routing.close(offered[0], agent_id=bob, disposition_id=None, notes="")
    assert (await agent(services, bob)).presence == PresenceState.BUSY  # two chats remain
    assert len(await services.routing.dispatch()) == 1
    assert await offers_for(services, chats[3])


async def test_a_customer_who_leaves_while_ringing_is_abandoned_and_the_offer_withdrawn(
    services: Services,
):
    (alice,) = await set_ready(services, "alice")
    chat_id = await chat(services)
    (offer_id,) = await services.routing.dispatch()
    await services.routing.abandon(chat_id)
    assert (await interaction(services, chat_id)).state == InteractionState.ABANDONED
    assert [o.outcome for o in await offers_for(services, chat_id)] == [OfferOutcome.CANCELLED]
    with pytest.raises(OfferGone):
        await services.routing.accept_offer(offer_id, alice)
    assert (await agent(services, alice)).presence == PresenceState.READY


async def test_a_transfer_to_queue_is_not_offered_straight_back(services: Services):
    (alice,) = await set_ready(services, "alice")
    chat_id = await active_chat(services, alice)
    general = await queue_id(services, "General")
    await services.routing.transfer_to_queue(chat_id, general, by_agent_id=alice)
    assert await services.routing.dispatch() == []  # alice handed it back: not to her
    (bob,) = await set_ready(services, "bob")
    assert len(await services.routing.dispatch()) == 1
    assert (await offers_for(services, chat_id))[-1].agent_id == bob


async def test_a_transfer_to_queue_keeps_its_place_before_later_arrivals(services: Services):
    """The transferred customer has waited since they first queued: they go before a
    customer of the same priority who arrived later, not to the back."""
    (alice,) = await set_ready(services, "alice")
    await update(services, Agent, alice, capacity={"webchat": 1})
    chat_id = await active_chat(services, alice)
    first_wait = (await interaction(services, chat_id)).queued_at
    later = await chat(services, sender="visitor-2")  # waits: alice is full
    assert await services.routing.dispatch() == []
    general = await queue_id(services, "General")
    await services.routing.transfer_to_queue(chat_id, general, by_agent_id=alice, note="n")
    assert (await interaction(services, chat_id)).queued_at == first_wait
    await update(services, Agent, alice, capacity={"webchat": 0})  # one free slot: bob's
    (bob,) = await set_ready(services, "bob")
    await update(services, Agent, bob, capacity={"webchat": 1})
    assert len(await services.routing.dispatch()) == 1
    assert [o.agent_id for o in await offers_for(services, chat_id)][-1] == bob
    assert await offers_for(services, later) == []
