"""Presence: every change stored, reason codes checked, supervisors audited, offers withdrawn."""

from __future__ import annotations

import pytest
from sqlmodel import select

from hub.events import SUPERVISOR_TOPIC, agent_topic
from hub.presence import UnknownAgent, UnknownReason
from hub.services import Services
from models import (
    AuditEntry,
    InteractionState,
    OfferOutcome,
    PresenceChange,
    PresenceState,
    User,
)
from tests.hub.routing.helpers import (
    agent,
    agent_id,
    chat,
    interaction,
    next_named,
    offers_for,
    set_ready,
)


async def history(services: Services, agent_pk: int) -> list[tuple[str, str | None, int | None]]:
    async with services.sessionmaker() as db:
        rows = (
            await db.exec(
                select(PresenceChange)
                .where(PresenceChange.agent_id == agent_pk)
                .order_by(PresenceChange.id)
            )
        ).all()
    return [(r.state, r.reason, r.by_user_id) for r in rows]


async def test_every_change_is_stored_and_published(services: Services):
    alice = await agent_id(services, "alice")
    async with services.bus.subscribe([agent_topic(alice), SUPERVISOR_TOPIC]) as events:
        await services.presence.set_presence(alice, PresenceState.READY)
        event = await next_named(events, "presence")
        assert event.data == {"state": "ready", "reason": None}
        assert (await next_named(events, "agent")).data == {"agent_id": alice}
    await services.presence.set_presence(alice, PresenceState.NOT_READY, "lunch")
    await services.presence.set_presence(alice, PresenceState.NOT_READY, "lunch")  # no change
    await services.presence.set_presence(alice, PresenceState.OFFLINE)
    assert await history(services, alice) == [
        ("ready", None, None),
        ("not_ready", "lunch", None),
        ("offline", None, None),
    ]
    stored = await agent(services, alice)
    assert stored.presence == PresenceState.OFFLINE and stored.presence_since is not None


async def test_unknown_reason_codes_and_agents_are_refused(services: Services):
    alice = await agent_id(services, "alice")
    with pytest.raises(UnknownReason):
        await services.presence.set_presence(alice, PresenceState.NOT_READY, "nap")
    with pytest.raises(UnknownAgent):
        await services.presence.set_presence(999_999, PresenceState.READY)
    assert await history(services, alice) == []


async def test_a_supervisor_forcing_presence_is_audited(services: Services):
    alice = await agent_id(services, "alice")
    async with services.sessionmaker() as db:
        sam = (await db.exec(select(User).where(User.username == "sam"))).one()
    await services.presence.set_presence(alice, PresenceState.READY)
    await services.presence.set_presence(
        alice, PresenceState.NOT_READY, "meeting", by_user_id=sam.id
    )
    async with services.sessionmaker() as db:
        (entry,) = (await db.exec(select(AuditEntry))).all()
    assert (entry.user_id, entry.action, entry.entity, entry.entity_id) == (
        sam.id,
        "force-presence",
        "agent",
        str(alice),
    )
    assert entry.before["presence"] == "ready" and entry.after["presence"] == "not_ready"  # type: ignore[index]
    assert (await history(services, alice))[-1] == ("not_ready", "meeting", sam.id)


async def test_going_not_ready_withdraws_a_ringing_offer_for_the_next_agent(services: Services):
    alice, bob = await set_ready(services, "alice", "bob")
    chat_id = await chat(services)
    await services.routing.dispatch()
    (offer,) = await offers_for(services, chat_id)
    await services.presence.set_presence(offer.agent_id, PresenceState.NOT_READY, "break")
    assert (await interaction(services, chat_id)).state == InteractionState.QUEUED
    await services.routing.dispatch()
    first, second = await offers_for(services, chat_id)
    assert first.outcome == OfferOutcome.CANCELLED
    assert second.agent_id == ({alice, bob} - {offer.agent_id}).pop()


async def test_ready_while_working_is_busy(services: Services):
    (alice,) = await set_ready(services, "alice")
    await chat(services)
    (offer_id,) = await services.routing.dispatch()
    await services.routing.accept_offer(offer_id, alice)
    await services.presence.set_presence(alice, PresenceState.NOT_READY, "break")
    back = await services.presence.set_presence(alice, PresenceState.READY)
    assert back.presence == PresenceState.BUSY
