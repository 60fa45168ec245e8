"""Ring-no-answer, overflow, business hours and wrap-up timeouts, with real rows.

Instead of sleeping, a test moves the relevant timestamp into the past and runs the timer.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from hub.services import Services
from models import (
    BusinessHours,
    Interaction,
    InteractionEvent,
    InteractionState,
    Offer,
    OfferOutcome,
    PresenceState,
    Queue,
    utcnow,
)
from tests.hub.routing.helpers import (
    age,
    agent,
    chat,
    interaction,
    offers_for,
    queue_id,
    set_ready,
    update,
)


async def test_ring_no_answer_makes_the_agent_not_ready_missed_and_reoffers(services: Services):
    alice, bob = await set_ready(services, "alice", "bob")
    chat_id = await chat(services)
    (first,) = await services.routing.dispatch()
    (offer,) = await offers_for(services, chat_id)
    missed_by = offer.agent_id
    await update(services, Offer, first, expires_at=utcnow() - timedelta(seconds=1))

    assert await services.routing.expire_offers() == 1
    missed = await agent(services, missed_by)
    assert (missed.presence, missed.presence_reason) == (PresenceState.NOT_READY, "missed")
    assert (await interaction(services, chat_id)).state == InteractionState.QUEUED

    (second,) = await services.routing.dispatch()
    offers = await offers_for(services, chat_id)
    assert [o.outcome for o in offers] == [OfferOutcome.TIMEOUT, OfferOutcome.PENDING]
    assert offers[1].id == second
    assert offers[1].agent_id == ({alice, bob} - {missed_by}).pop()


async def test_an_offer_not_yet_due_is_left_alone(services: Services):
    await set_ready(services, "alice")
    chat_id = await chat(services)
    await services.routing.dispatch()
    assert await services.routing.expire_offers() == 0
    assert [o.outcome for o in await offers_for(services, chat_id)] == [OfferOutcome.PENDING]


async def test_overflow_moves_to_the_overflow_queue_after_its_delay(services: Services):
    (bob,) = await set_ready(services, "bob")  # general only: cannot serve Billing
    billing, general = await queue_id(services, "Billing"), await queue_id(services, "General")
    chat_id = await chat(services)
    await update(services, Interaction, chat_id, queue_id=billing)
    assert await services.routing.dispatch() == []
    assert await services.routing.overflow() == 0  # not waited long enough yet

    await age(services, chat_id, utcnow() - timedelta(seconds=301))
    assert await services.routing.overflow() == 1
    moved = await interaction(services, chat_id)
    assert (moved.queue_id, moved.overflowed, moved.state) == (general, True, "queued")
    assert len(await services.routing.dispatch()) == 1
    (offer,) = await offers_for(services, chat_id)
    assert offer.agent_id == bob and offer.queue_id == general
    async with services.sessionmaker() as db:
        reasons = (
            await db.exec(
                select(InteractionEvent.reason).where(InteractionEvent.interaction_id == chat_id)
            )
        ).all()
    assert f"overflow to queue {general}" in reasons


async def test_overflow_can_relax_skills_instead(services: Services):
    (erin,) = await set_ready(services, "erin")  # billing 4, spanish 2
    billing = await queue_id(services, "Billing")
    await update(services, Queue, billing, overflow_queue_id=None, overflow_relax_skills=True)
    chat_id = await chat(services)
    await update(services, Interaction, chat_id, queue_id=billing, required_skills={"spanish": 3})
    assert await services.routing.dispatch() == []  # spanish 2 < 3
    await age(services, chat_id, utcnow() - timedelta(seconds=301))
    assert await services.routing.overflow() == 1
    assert len(await services.routing.dispatch()) == 1
    (offer,) = await offers_for(services, chat_id)
    assert offer.agent_id == erin and offer.queue_id == billing


async def test_a_closed_queue_offers_nothing_until_it_opens(services: Services):
    await set_ready(services, "alice")
    general = await queue_id(services, "General")
    today = utcnow().date().isoformat()
    async with services.sessionmaker() as db:
        hours = BusinessHours(
            name="Holiday today",
            timezone="UTC",
            weekly={
                d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            },
            holidays=[today],
        )
        db.add(hours)
        await db.commit()
        hours_id = hours.id
    await update(services, Queue, general, hours_id=hours_id)
    chat_id = await chat(services)
    assert await services.routing.dispatch() == []
    position = await services.routing.queue_position(chat_id)
    assert position.open is False and position.position == 1

    await update(services, BusinessHours, hours_id, holidays=[])
    assert len(await services.routing.dispatch()) == 1


async def test_wrap_up_ends_by_itself_after_the_queue_timeout(services: Services):
    (alice,) = await set_ready(services, "alice")
    chat_id = await chat(services)
    (offer_id,) = await services.routing.dispatch()
    await services.routing.accept_offer(offer_id, alice)
    await services.routing.wrap_up(chat_id, agent_id=alice)
    assert await services.routing.end_expired_wrapups() == 0
    await update(services, Interaction, chat_id, wrapup_at=utcnow() - timedelta(seconds=61))
    assert await services.routing.end_expired_wrapups() == 1
    assert (await interaction(services, chat_id)).state == InteractionState.CLOSED
    assert (await agent(services, alice)).presence == PresenceState.READY
