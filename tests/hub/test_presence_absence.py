"""Work never gets stuck: an agent whose console is gone goes offline, going offline hands
the work back (a call stays until hang-up), and a supervisor can move any open text work."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from hub.presence import ABSENT_REASON, CHAT
from hub.routing.service import AgentUnavailable, NotReassignable
from hub.services import Services
from models import (
    Agent,
    AuditEntry,
    Interaction,
    InteractionEvent,
    InteractionState,
    OfferOutcome,
    PresenceChange,
    PresenceState,
    User,
    utcnow,
)
from tests.hub.routing.helpers import (
    age,
    agent,
    agent_id,
    chat,
    interaction,
    offers_for,
    queue_id,
    set_ready,
    update,
)

S = InteractionState


async def presence_history(services: Services, agent_pk: int) -> list[tuple[str, str | None]]:
    async with services.sessionmaker() as db:
        rows = (
            await db.exec(
                select(PresenceChange)
                .where(PresenceChange.agent_id == agent_pk)
                .order_by(PresenceChange.id)
            )
        ).all()
    return [(r.state, r.reason) for r in rows]


async def user_id(services: Services, username: str) -> int:
    async with services.sessionmaker() as db:
        return (await db.exec(select(User.id).where(User.username == username))).one()  # type: ignore[return-value]


async def accepted_by(services: Services, agent_pk: int, sender: str) -> int:
    """A chat that ``agent_pk`` (the only one ready) has been offered and accepted."""
    chat_id = await chat(services, sender=sender)
    await services.routing.dispatch()
    offer = (await offers_for(services, chat_id))[-1]
    assert offer.agent_id == agent_pk
    await services.routing.accept_offer(offer.id, agent_pk)  # type: ignore[arg-type]
    return chat_id


async def test_an_agent_whose_console_is_gone_goes_offline_and_the_offer_moves_on(
    services: Services,
):
    (bob,) = await set_ready(services, "bob")
    chat_id = await chat(services)
    await services.routing.dispatch()
    (ringing,) = await offers_for(services, chat_id)
    assert ringing.agent_id == bob

    # Alice has a console tab open; Bob's browser was closed a grace period ago.
    (alice,) = await set_ready(services, "alice")
    await services.presence.console_alive(alice)
    for agent_pk in (alice, bob):
        await update(services, Agent, agent_pk, presence_since=utcnow() - timedelta(seconds=120))
    assert await services.presence.sweep_absent() == [bob]

    assert (await agent(services, bob)).presence == PresenceState.OFFLINE
    assert (await agent(services, alice)).presence == PresenceState.READY
    assert (await presence_history(services, bob))[-1] == ("offline", ABSENT_REASON)
    # Bob's offer is withdrawn at once (not left to time out), and Alice gets the chat.
    assert (await interaction(services, chat_id)).state == S.QUEUED
    await services.routing.dispatch()
    first, second = await offers_for(services, chat_id)
    assert first.outcome == OfferOutcome.CANCELLED
    assert (second.agent_id, second.outcome) == (alice, OfferOutcome.PENDING)
    # An offline agent is offered nothing more.
    await chat(services, sender="another")
    await services.routing.dispatch()
    async with services.sessionmaker() as db:
        pending = (await db.exec(select(Interaction).where(Interaction.agent_id == bob))).all()
    assert pending == []


async def test_a_console_that_stops_refreshing_counts_as_gone(services: Services):
    services.settings.presence_grace_seconds = 0.3  # what HUB_PRESENCE_GRACE_SECONDS sets
    (alice,) = await set_ready(services, "alice")
    await update(services, Agent, alice, presence_since=utcnow() - timedelta(seconds=10))
    await services.presence.console_alive(alice)
    assert await services.presence.sweep_absent() == []  # the tab is there
    await asyncio.sleep(0.4)  # the tab closed: nothing refreshes its mark for a grace period
    assert await services.presence.sweep_absent() == [alice]


async def test_an_agent_who_just_changed_presence_is_not_swept(services: Services):
    """The tab that chose Ready may not have opened its stream yet."""
    await set_ready(services, "alice")
    assert await services.presence.sweep_absent() == []


async def test_going_offline_hands_active_chats_back_at_the_head_and_keeps_the_call(
    services: Services,
):
    (alice,) = await set_ready(services, "alice")
    first = await accepted_by(services, alice, "first")
    await age(services, first, utcnow() - timedelta(minutes=5))
    waited_since = (await interaction(services, first)).queued_at
    # A call in progress with Alice, and two chats that came after the first one.
    call = await chat(services, sender="caller")
    await update(services, Interaction, call, channel="voice", state="active", agent_id=alice)
    await services.presence.set_presence(alice, PresenceState.NOT_READY, "break")
    later = [await chat(services, sender=f"later-{n}") for n in range(2)]

    sam = await user_id(services, "sam")
    await services.presence.set_presence(
        alice, PresenceState.OFFLINE, "forced logout", by_user_id=sam
    )

    back = await interaction(services, first)
    assert (back.state, back.agent_id, back.queued_at) == (S.QUEUED, None, waited_since)
    positions = [await services.routing.queue_position(i) for i in (first, *later)]
    assert [p.position for p in positions] == [1, 2, 3]  # the head of its queue
    still = await interaction(services, call)
    assert (still.state, still.agent_id) == (S.ACTIVE, alice)  # never pulled from a call
    assert (await agent(services, alice)).presence == PresenceState.OFFLINE

    # The next agent gets the handed-back chat first.
    (bob,) = await set_ready(services, "bob")
    await update(services, Agent, bob, capacity={"webchat": 1})
    await services.routing.dispatch()
    offer = (await offers_for(services, first))[-1]
    assert (offer.agent_id, offer.outcome) == (bob, OfferOutcome.PENDING)

    # The call ends: Alice stays offline (no new work), the call goes to wrap-up.
    await services.routing.wrap_up(call, agent_id=alice)
    assert (await interaction(services, call)).state == S.WRAP_UP
    assert (await agent(services, alice)).presence == PresenceState.OFFLINE
    async with services.sessionmaker() as db:
        reasons = (
            await db.exec(
                select(InteractionEvent.reason).where(
                    InteractionEvent.interaction_id == first, InteractionEvent.to_state == S.QUEUED
                )
            )
        ).all()
    assert "handed back: agent offline" in reasons


async def test_closing_with_offline_next_hands_the_other_chats_back(services: Services):
    (alice,) = await set_ready(services, "alice")
    one = await accepted_by(services, alice, "one")
    two = await accepted_by(services, alice, "two")
    disposition = 1
    await services.routing.close(
        one,
        agent_id=alice,
        disposition_id=disposition,
        notes="",
        next_presence=PresenceState.OFFLINE,
    )
    assert (await interaction(services, one)).state == S.CLOSED
    assert (await interaction(services, two)).state == S.QUEUED
    assert (await agent(services, alice)).presence == PresenceState.OFFLINE


async def test_a_supervisor_reassigns_open_text_work_to_an_agent_or_a_queue(
    services: Services,
):
    (alice,) = await set_ready(services, "alice")
    chat_id = await accepted_by(services, alice, "needs-help")
    waited_since = (await interaction(services, chat_id)).queued_at
    bob = await agent_id(services, "bob")
    sam = await user_id(services, "sam")

    with pytest.raises(AgentUnavailable, match="Bob Okafor is not taking work"):
        await services.routing.reassign(chat_id, by_user_id=sam, agent_id=bob)

    await set_ready(services, "bob")
    await services.routing.reassign(chat_id, by_user_id=sam, agent_id=bob)
    moved = await interaction(services, chat_id)
    assert (moved.state, moved.agent_id) == (S.OFFERED, bob)
    assert (await agent(services, alice)).presence == PresenceState.READY  # freed
    offer = (await offers_for(services, chat_id))[-1]
    await services.routing.accept_offer(offer.id, bob)  # type: ignore[arg-type]

    billing = await queue_id(services, "Billing")
    await services.routing.reassign(chat_id, by_user_id=sam, queue_id=billing)
    moved = await interaction(services, chat_id)
    assert (moved.state, moved.queue_id, moved.agent_id) == (S.QUEUED, billing, None)
    assert moved.queued_at == waited_since  # it keeps its place

    async with services.sessionmaker() as db:
        entries = (await db.exec(select(AuditEntry).where(AuditEntry.action == "reassign"))).all()
    assert [(e.user_id, e.before["state"], e.after["state"]) for e in entries] == [  # type: ignore[index]
        (sam, "active", "offered"),
        (sam, "active", "queued"),
    ]

    call = await chat(services, sender="caller")
    await update(services, Interaction, call, channel="voice", state="active", agent_id=alice)
    with pytest.raises(NotReassignable, match="a call: it stays with its agent"):
        await services.routing.reassign(call, by_user_id=sam, queue_id=billing)
    # The call ends (a call takes the agent's whole capacity while it lasts).
    await update(services, Interaction, call, state="closed")
    await services.presence.set_presence(bob, PresenceState.NOT_READY, "break")
    wrapping = await accepted_by(services, alice, "wrapping-up")
    await services.routing.wrap_up(wrapping, agent_id=alice)
    with pytest.raises(NotReassignable, match="is wrap up: it cannot be moved"):
        await services.routing.reassign(wrapping, by_user_id=sam, queue_id=billing)


async def test_a_chat_page_gone_past_the_grace_period_is_abandoned(services: Services):
    from channels.webchat.routes import PAGE_GONE, LeaveWatch

    services.settings.chat_abandon_grace_seconds = 0.5
    watch = LeaveWatch(services)
    gone, reloaded = await chat(services, sender="gone"), await chat(services, sender="reload")
    for chat_id in (gone, reloaded):
        await watch.alive(chat_id)
        watch.check_later(chat_id)  # its stream closed
    await asyncio.sleep(0.25)
    await services.presence.marks.touch(CHAT, reloaded, 0.5)  # the reloaded page's stream
    await watch.stop_after_checks()
    left = await interaction(services, gone)
    assert (left.state, left.closed_at is not None) == (S.ABANDONED, True)
    assert (await interaction(services, reloaded)).state == S.QUEUED
    async with services.sessionmaker() as db:
        (event,) = (
            await db.exec(
                select(InteractionEvent).where(
                    InteractionEvent.interaction_id == gone,
                    InteractionEvent.to_state == S.ABANDONED,
                )
            )
        ).all()
    assert event.reason == PAGE_GONE


async def test_a_tab_on_another_hub_process_keeps_the_agent_present(
    services: Services, redis_url: tuple[str, str]
):
    """With Redis, every process's sweeper sees every process's tabs."""
    from hub.presence import Marks

    url, prefix = redis_url
    here = services.presence.marks = Marks.for_redis(url, namespace=f"{prefix}presence")
    there = Marks.for_redis(url, namespace=f"{prefix}presence")  # another hub process
    try:
        alice, bob = await set_ready(services, "alice", "bob")
        for agent_pk in (alice, bob):
            await update(
                services, Agent, agent_pk, presence_since=utcnow() - timedelta(seconds=120)
            )
        await there.touch("console", alice, services.presence.grace)  # Alice's tab is there
        assert await services.presence.sweep_absent() == [bob]
        assert (await agent(services, alice)).presence == PresenceState.READY
    finally:
        await here.close()
        await there.close()
