"""Consult and conference on text conversations (hub/text_collab.py), through the real
services on SQLite and PostgreSQL: segments per agent, private notes, capacity, hand-over."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from hub.services import Services
from hub.text_collab import CollabRefused, TextCollab
from models import (
    Agent,
    ControlEvent,
    InteractionSegment,
    Message,
    OfferOutcome,
    PresenceState,
)
from tests.hub.routing.helpers import agent_id, interaction, offers_for, set_ready, update
from tests.hub.routing.test_transfers import active_chat


async def _segments(services: Services, iid: int) -> list[tuple[int, str, str | None]]:
    async with services.sessionmaker() as db:
        rows = await db.exec(
            select(InteractionSegment)
            .where(InteractionSegment.interaction_id == iid)
            .order_by(col(InteractionSegment.id))
        )
        return [(s.agent_id, s.role, s.end_reason) for s in rows.all()]


async def _kinds(services: Services, iid: int) -> list[str]:
    async with services.sessionmaker() as db:
        rows = await db.exec(
            select(ControlEvent.kind)
            .where(ControlEvent.interaction_id == iid)
            .order_by(col(ControlEvent.id))
        )
        return list(rows.all())


async def test_consult_is_private_and_becomes_a_transfer(services: Services) -> None:
    (alice,) = await set_ready(services, "alice")
    chat_id = await active_chat(services, alice)
    (bob,) = await set_ready(services, "bob")
    collab = TextCollab(services)
    name = await collab.consult(chat_id, by_agent_id=alice, user_id=1, target_id=bob, note="ok?")
    assert name == "Bob Okafor"
    with pytest.raises(CollabRefused, match="close the open consult"):
        carol = await agent_id(services, "carol")
        await collab.consult(chat_id, by_agent_id=alice, user_id=1, target_id=carol, note="")
    with pytest.raises(PermissionError):  # only the holder hands over
        await collab.hand_over(chat_id, agent_id=bob, user_id=1)

    assert await collab.hand_over(chat_id, agent_id=alice, user_id=1) == "Bob Okafor"
    moved = await interaction(services, chat_id)
    assert (moved.state, moved.agent_id) == ("active", bob)
    assert (await offers_for(services, chat_id))[-1].outcome == OfferOutcome.ACCEPTED
    assert await _segments(services, chat_id) == [
        (alice, "agent", "transferred"),
        (bob, "consult", "took the conversation"),
        (bob, "agent", None),
    ]
    assert await _kinds(services, chat_id) == ["consult", "consult_complete"]
    async with services.sessionmaker() as db:
        notes = (await db.exec(select(Message).where(Message.interaction_id == chat_id))).all()
    assert all(m.private for m in notes if m.sender_kind == "agent")
    assert any("asked Bob Okafor for a consult: ok?" in m.body for m in notes)


async def test_a_conferenced_agent_takes_a_slot_and_everything_ends_with_the_chat(
    services: Services,
) -> None:
    (alice,) = await set_ready(services, "alice")
    chat_id = await active_chat(services, alice)
    (bob,) = await set_ready(services, "bob")
    await update(services, Agent, bob, capacity={"webchat": 1})
    collab = TextCollab(services)
    await collab.conference(chat_id, by_agent_id=alice, user_id=1, target_id=bob)
    # Bob's one web chat slot is taken by the conference: a new chat is not offered to him.
    other = await active_chat(services, alice, sender="visitor-2")
    with pytest.raises(CollabRefused, match="no free webchat slot"):
        await collab.conference(other, by_agent_id=alice, user_id=1, target_id=bob)
    await collab.end(chat_id, agent_id=bob, user_id=1)  # Bob leaves: his slot is free again
    await collab.conference(other, by_agent_id=alice, user_id=1, target_id=bob)
    await services.routing.wrap_up(other, agent_id=alice)
    assert await _segments(services, other) == [
        (alice, "agent", "ended"),
        (bob, "conference", "ended"),
    ]
    assert await _kinds(services, chat_id) == ["conference", "drop"]


async def test_calls_and_unheld_conversations_are_refused(services: Services) -> None:
    (alice,) = await set_ready(services, "alice")
    chat_id = await active_chat(services, alice)
    bob = await agent_id(services, "bob")
    collab = TextCollab(services)
    with pytest.raises(CollabRefused, match="offline"):
        await collab.consult(chat_id, by_agent_id=alice, user_id=1, target_id=bob, note="")
    with pytest.raises(CollabRefused, match="not taking work"):
        await collab.conference(chat_id, by_agent_id=alice, user_id=1, target_id=bob)
    with pytest.raises(PermissionError):
        await collab.conference(chat_id, by_agent_id=bob, user_id=1, target_id=alice)
    with pytest.raises(CollabRefused, match="no other agent"):
        await collab.end(chat_id, agent_id=alice, user_id=1)


async def test_a_joined_agent_going_offline_leaves_the_conversation(services: Services) -> None:
    (alice,) = await set_ready(services, "alice")
    chat_id = await active_chat(services, alice)
    (bob,) = await set_ready(services, "bob")
    await TextCollab(services).conference(chat_id, by_agent_id=alice, user_id=1, target_id=bob)
    await services.presence.set_presence(bob, PresenceState.OFFLINE)
    assert await _segments(services, chat_id) == [
        (alice, "agent", None),
        (bob, "conference", "agent went offline"),
    ]
    moved = await interaction(services, chat_id)
    assert (moved.state, moved.agent_id) == ("active", alice)  # alice keeps the customer
