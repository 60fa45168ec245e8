"""Capacity: per channel, a call taking the agent's whole attention, and a limit on open
work across every channel together."""

from __future__ import annotations

from hub.routing.decision import free_slots
from hub.services import Services
from models import Agent, Offer
from tests.hub.routing.helpers import chat, set_ready, update


def test_the_total_limit_caps_every_channel_together() -> None:
    capacity = {"webchat": 3, "email": 5, "sms": 3, "total": 3}
    assert free_slots(capacity, {}, "webchat") == 3
    assert free_slots(capacity, {"webchat": 2}, "email") == 1
    assert free_slots(capacity, {"webchat": 2, "email": 1}, "sms") == 0
    assert free_slots(capacity, {"webchat": 1}, "webchat") == 2  # the channel's own cap first
    no_total = {"webchat": 3, "email": 5}
    assert free_slots(no_total, {"webchat": 3, "email": 4}, "email") == 1


def test_a_call_leaves_room_only_for_what_the_profile_allows_beside_it() -> None:
    assert free_slots({"voice": 1, "webchat": 3}, {"voice": 1}, "webchat") == 0
    assert free_slots({"voice": 1, "webchat": 3, "beside_call": 1}, {"voice": 1}, "webchat") == 1
    beside = {"voice": 1, "webchat": 3, "beside_call": 2, "total": 2}
    assert free_slots(beside, {"voice": 1}, "webchat") == 1  # the total counts the call


async def test_an_agent_is_offered_no_more_than_the_total_across_channels(services: Services):
    (alice,) = await set_ready(services, "alice")
    await update(services, Agent, alice, capacity={"webchat": 3, "email": 5, "total": 2})
    chats = [await chat(services, sender=f"visitor-{n}") for n in range(3)]
    made = await services.routing.dispatch()
    assert len(made) == 2
    async with services.sessionmaker() as db:
        offered = {(await db.get(Offer, offer_id)).interaction_id for offer_id in made}  # type: ignore[union-attr]
    assert offered == set(chats[:2])  # the oldest two; the third waits for a free slot
    assert await services.routing.dispatch() == []
