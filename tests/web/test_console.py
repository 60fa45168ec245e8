"""The agent console and supervisor actions over HTTP, and the tab's SSE stream generator."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
from litestar import Litestar
from sqlmodel import col, select

from hub.auth import CurrentUser
from hub.events import agent_topic
from hub.services import Services
from models import (
    Agent,
    AuditEntry,
    Contact,
    Disposition,
    Interaction,
    InteractionState,
    Message,
    Offer,
    OfferOutcome,
    Queue,
    Role,
    User,
)
from tests.web.conftest import BASE_URL, hx, login
from web.console import ConsoleStream
from web.sse import run_stream


async def agent_id_of(services: Services, username: str) -> int:
    async with services.sessionmaker() as db:
        row = (await db.exec(select(Agent).join(User).where(User.username == username))).one()
        return row.id  # type: ignore[return-value]


async def pending_offer(services: Services, agent_id: int) -> Offer:
    """Wait for the router (a real background task) to offer something to ``agent_id``."""
    for _ in range(200):
        async with services.sessionmaker() as db:
            offer = (
                await db.exec(
                    select(Offer).where(
                        Offer.agent_id == agent_id, Offer.outcome == OfferOutcome.PENDING
                    )
                )
            ).first()
        if offer is not None:
            return offer
        await asyncio.sleep(0.05)
    raise AssertionError("no offer arrived")


async def customer_writes(customer: httpx.AsyncClient, body: str) -> None:
    await customer.get("/chat")
    response = await customer.post(
        "/chat/messages",
        data={"body": body, "source_id": uuid.uuid4().hex},
        headers=hx(customer),
    )
    assert response.status_code == 200, response.text


async def test_agent_accepts_replies_notes_and_wraps_up(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    await login(client, "alice")
    ready = await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    assert ready.status_code == 200
    await customer_writes(browser, "My <b>invoice</b> is wrong")
    offer = await pending_offer(services, await agent_id_of(services, "alice"))
    console = await client.get("/console")
    assert f"/console/offers/{offer.id}/accept" in console.text
    accepted = await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    assert accepted.status_code == 200
    iid = offer.interaction_id
    assert f'id="messages-{iid}"' in accepted.text
    assert "My &lt;b&gt;invoice&lt;/b&gt; is wrong" in accepted.text
    assert "Create or link contact" in accepted.text  # an unknown customer

    reply = await client.post(
        f"/console/interactions/{iid}/reply", data={"reply": "Let me check."}, headers=hx(client)
    )
    assert reply.status_code == 200
    note = await client.post(
        f"/console/interactions/{iid}/note", data={"note": "angry customer"}, headers=hx(client)
    )
    assert note.status_code == 200
    transcript = await browser.get("/chat")
    assert "Let me check." in transcript.text
    assert "angry customer" not in transcript.text  # private notes never reach the customer
    assert "has joined the chat" in transcript.text

    no_disposition = await client.post(
        f"/console/interactions/{iid}/close", data={"next": "ready"}, headers=hx(client)
    )
    assert no_disposition.status_code == 422
    ended = await client.post(f"/console/interactions/{iid}/end", headers=hx(client))
    assert "Wrap-up" in ended.text
    async with services.sessionmaker() as db:
        resolved = (await db.exec(select(Disposition).where(Disposition.code == "resolved"))).one()
    closed = await client.post(
        f"/console/interactions/{iid}/close",
        data={"disposition_id": str(resolved.id), "notes": "fixed", "next": "not_ready:lunch"},
        headers=hx(client),
    )
    assert closed.status_code == 200
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, iid)
        assert interaction is not None
        assert interaction.state == InteractionState.CLOSED
        assert interaction.disposition_id == resolved.id
        assert interaction.wrapup_notes == "fixed"
        agent = await db.get(Agent, await agent_id_of(services, "alice"))
        assert agent is not None and (agent.presence, agent.presence_reason) == (
            "not_ready",
            "lunch",
        )


async def test_another_agents_conversation_is_off_limits(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    await login(client, "alice")
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    await customer_writes(browser, "hello")
    offer = await pending_offer(services, await agent_id_of(services, "alice"))
    await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    client.cookies.clear()
    await login(client, "bob")
    peek = await client.get(f"/console/interactions/{offer.interaction_id}", headers=hx(client))
    assert peek.status_code == 403
    hijack = await client.post(
        f"/console/interactions/{offer.interaction_id}/reply",
        data={"reply": "hijack"},
        headers=hx(client),
    )
    assert hijack.status_code == 403


async def test_link_unknown_contact_merges_and_audits(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    async with services.sessionmaker() as db:
        known = Contact(name="Kim Known", vip_level=3, known=True)
        db.add(known)
        await db.commit()
        known_id = known.id
    await login(client, "alice")
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    await customer_writes(browser, "it's me, Kim")
    offer = await pending_offer(services, await agent_id_of(services, "alice"))
    await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    found = await client.get(
        "/console/contacts/search", params={"q": "kim kn", "interaction": offer.interaction_id}
    )
    assert "Kim Known" in found.text
    linked = await client.post(
        f"/console/interactions/{offer.interaction_id}/link",
        data={"contact_id": str(known_id)},
        headers=hx(client),
    )
    assert linked.status_code == 200
    assert "VIP 3" in linked.text
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, offer.interaction_id)
        assert interaction is not None and interaction.contact_id == known_id
        entry = (
            await db.exec(select(AuditEntry).where(AuditEntry.action == "contact.merge"))
        ).one()
        assert entry.before is not None and entry.before["keep"]["name"] == "Kim Known"


async def test_supervisor_actions_are_audited_and_force_logout_ends_the_session(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    bob = await agent_id_of(services, "bob")
    await login(browser, "bob")
    await browser.post("/console/presence", data={"state": "ready"}, headers=hx(browser))
    await login(client, "sam")
    forced = await client.post(
        f"/supervisor/agents/{bob}/not-ready", data={"reason": "meeting"}, headers=hx(client)
    )
    assert forced.status_code == 200
    message = await client.post(
        f"/supervisor/agents/{bob}/message", data={"text": "call me"}, headers=hx(client)
    )
    assert message.status_code == 200
    out = await client.post(f"/supervisor/agents/{bob}/logout", headers=hx(client))
    assert out.status_code == 200
    async with services.sessionmaker() as db:
        entries = (await db.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
        agent = await db.get(Agent, bob)
    by_action = {e.action: e for e in reversed(entries)}  # the first of each action
    assert by_action["force-presence"].before["presence"] == "ready"  # type: ignore[index]
    assert by_action["force-presence"].after["presence"] == "not_ready"  # type: ignore[index]
    assert by_action["supervisor-message"].after == {"text": "call me"}
    assert by_action["force-logout"].before["presence"] == "not_ready"  # type: ignore[index]
    assert agent is not None and agent.presence == "offline"
    after = await browser.get("/console", headers={"hx-request": "true"})
    assert after.status_code == 401


async def test_console_stream_renders_events_for_its_agent_escaped(
    app: Litestar, client: httpx.AsyncClient
):
    services: Services = app.state.services
    env = app.template_engine.engine  # type: ignore[attr-defined]
    alice = await agent_id_of(services, "alice")
    user = CurrentUser(
        id=1, username="alice", display_name="Alice", role=Role.AGENT, agent_id=alice
    )
    stream = run_stream(services, ConsoleStream(services, env, user), heartbeat=0.2)
    first = await anext(stream)
    assert first.comment == "connected"
    synced = [await anext(stream) for _ in range(3)]
    assert [m.event for m in synced] == ["offer", "conversation", "presence"]
    await services.bus.publish(
        agent_topic(alice), "supervisor-message", text="<script>x()</script>", **{"from": "Sam"}
    )
    popup = await anext(stream)
    while popup.event is None:  # heartbeats may come first
        popup = await anext(stream)
    assert popup.event == "supervisor-message"
    assert "&lt;script&gt;x()&lt;/script&gt;" in str(popup.data)
    await services.bus.publish(agent_topic(alice), "force-logout")
    last = await anext(stream)
    while last.event is None:
        last = await anext(stream)
    assert last.event == "force-logout"
    assert [m async for m in stream] == []  # the stream ends after a forced logout


async def test_messages_for_held_conversations_arrive_on_the_stream(
    app: Litestar, client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    await login(client, "alice")
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    await customer_writes(browser, "first")
    offer = await pending_offer(services, await agent_id_of(services, "alice"))
    await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    env = app.template_engine.engine  # type: ignore[attr-defined]
    alice = await agent_id_of(services, "alice")
    user = CurrentUser(
        id=1, username="alice", display_name="Alice", role=Role.AGENT, agent_id=alice
    )
    stream = run_stream(services, ConsoleStream(services, env, user), heartbeat=0.2)
    for _ in range(4):
        await anext(stream)
    await browser.post(
        "/chat/messages",
        data={"body": "second <i>msg</i>", "source_id": uuid.uuid4().hex},
        headers=hx(browser),
    )
    seen = ""
    names: list[str | None] = []
    for _ in range(30):
        event = await anext(stream)
        names.append(event.event)
        if event.event == "message":
            seen = str(event.data)
        if seen and event.event == "conversation":
            break
    assert re.search(r'hx-swap-oob="beforeend:#messages-\d+"', seen)
    assert "second &lt;i&gt;msg&lt;/i&gt;" in seen
    # A customer message must not re-render the actions (it would wipe a half-typed reply).
    assert "state" not in names
    async with services.sessionmaker() as db:
        assert (await db.exec(select(Message).where(Message.body == "second <i>msg</i>"))).one()
    await stream.aclose()


async def test_transfer_to_another_queue_leaves_the_console_with_a_note(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    await login(client, "alice")
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    await customer_writes(browser, "billing question")
    offer = await pending_offer(services, await agent_id_of(services, "alice"))
    await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    await client.post("/console/presence", data={"state": "not_ready:break"}, headers=hx(client))
    async with services.sessionmaker() as db:
        billing = (await db.exec(select(Queue).where(Queue.name == "Billing"))).one()
    moved = await client.post(
        f"/console/interactions/{offer.interaction_id}/transfer",
        data={"target": f"queue:{billing.id}", "note": "needs a refund"},
        headers=hx(client),
    )
    assert moved.status_code == 200
    assert "Transferred" in moved.text
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, offer.interaction_id)
        assert interaction is not None and interaction.queue_id == billing.id
        assert interaction.agent_id is None
        notes = (await db.exec(select(Message).where(col(Message.private).is_(True)))).all()
    assert [n.body for n in notes] == ["needs a refund"]
    bad = await client.post(
        f"/console/interactions/{offer.interaction_id}/transfer",
        data={"target": f"queue:{billing.id}"},
        headers=hx(client),
    )
    assert bad.status_code == 403  # no longer this agent's conversation


async def test_create_contact_from_the_screen_pop(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    await login(client, "alice")
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    await customer_writes(browser, "new here")
    offer = await pending_offer(services, await agent_id_of(services, "alice"))
    await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    bad = await client.post(
        f"/console/interactions/{offer.interaction_id}/contact",
        data={"name": "Pat", "email": "not-an-email"},
        headers=hx(client),
    )
    assert bad.status_code == 422
    made = await client.post(
        f"/console/interactions/{offer.interaction_id}/contact",
        data={"name": "Pat Doe", "email": "Pat@Example.com", "vip_level": "2"},
        headers=hx(client),
    )
    assert made.status_code == 200
    assert "pat@example.com" in made.text and "Create or link contact" not in made.text
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, offer.interaction_id)
        contact = await db.get(Contact, interaction.contact_id)  # type: ignore[union-attr]
        entry = (
            await db.exec(select(AuditEntry).where(AuditEntry.action == "contact.create"))
        ).one()
    assert contact is not None and (contact.name, contact.vip_level, contact.known) == (
        "Pat Doe",
        2,
        True,
    )
    assert entry.before is not None and entry.before["known"] is False


async def test_customer_sees_queue_position_and_an_agent_picks_up_a_left_message(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    await login(client, "alice")
    await client.post("/console/presence", data={"state": "not_ready:break"}, headers=hx(client))
    await browser.get("/chat")
    first = await browser.post(
        "/chat/messages",
        data={"body": "waiting patiently", "source_id": uuid.uuid4().hex},
        headers=hx(browser),
    )
    assert "You are number <strong" in first.text
    # Alice is logged in but on a break: nobody is taking chats, so no wait is promised.
    assert "We cannot estimate the wait right now" in first.text
    assert "less than a minute" not in first.text and "Estimated wait" not in first.text
    left = await browser.post("/chat/leave-message", headers=hx(browser))
    assert left.status_code == 200
    listing = await client.get("/console/left-messages")
    assert "waiting patiently" in listing.text
    iid = int(re.search(r"/console/interactions/(\d+)/pick-up", listing.text).group(1))  # type: ignore[union-attr]
    picked = await client.post(f"/console/interactions/{iid}/pick-up", headers=hx(client))
    assert picked.status_code == 200
    assert "waiting patiently" in picked.text
    transcript = await browser.get("/chat")
    assert "Alice has joined the chat." in transcript.text


async def test_pages_forbid_inline_scripts(client: httpx.AsyncClient):
    page = await client.get("/chat")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]


async def test_a_supervisor_looking_in_follows_that_conversation_live(
    app: Litestar, client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    await login(client, "alice")
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    await customer_writes(browser, "hello there")
    offer = await pending_offer(services, await agent_id_of(services, "alice"))
    await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    client.cookies.clear()
    await login(client, "sam")
    page = await client.get(f"/console?interaction={offer.interaction_id}")
    assert f"watch={offer.interaction_id}" in page.text
    assert "Handled by Alice Martin" in page.text
    sam = await agent_id_of(services, "sam")
    user = CurrentUser(id=6, username="sam", display_name="Sam", role=Role.SUPERVISOR, agent_id=sam)
    env = app.template_engine.engine  # type: ignore[attr-defined]
    stream = run_stream(
        services, ConsoleStream(services, env, user, watch=offer.interaction_id), heartbeat=0.2
    )
    for _ in range(4):
        await anext(stream)
    await browser.post(
        "/chat/messages",
        data={"body": "are you there?", "source_id": uuid.uuid4().hex},
        headers=hx(browser),
    )
    seen = ""
    for _ in range(20):
        event = await anext(stream)
        if event.event == "message":
            seen = str(event.data)
            break
    assert "are you there?" in seen
    await stream.aclose()


async def test_every_page_renders_in_every_state_of_a_conversation(
    app: Litestar, client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    """Full page loads (a reload) and partials, for agent, supervisor and customer."""
    sup = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
    await login(sup, "sam")
    await login(client, "alice")

    async def all_pages_ok(iid: int | None) -> None:
        paths = ["/console", "/console/left-messages", "/chat"]
        if iid is not None:
            paths += [f"/console?interaction={iid}"]
        for path in paths:
            who = browser if path.startswith("/chat") else client
            response = await who.get(path)
            assert response.status_code == 200, (path, response.text[:300])
        if iid is not None:
            partial = await client.get(f"/console/interactions/{iid}", headers=hx(client))
            assert partial.status_code == 200, partial.text[:300]
            looking = await sup.get(f"/console?interaction={iid}")
            assert looking.status_code == 200, looking.text[:300]
        wallboard = await sup.get("/supervisor")
        assert wallboard.status_code == 200, wallboard.text[:300]

    await all_pages_ok(None)
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    await customer_writes(browser, "states please")
    offer = await pending_offer(services, await agent_id_of(services, "alice"))
    iid = offer.interaction_id
    await all_pages_ok(iid)  # offered
    await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    await all_pages_ok(iid)  # active
    await client.post(f"/console/interactions/{iid}/end", headers=hx(client))
    await all_pages_ok(iid)  # wrap-up
    async with services.sessionmaker() as db:
        disposition = (await db.exec(select(Disposition))).first()
    await client.post(
        f"/console/interactions/{iid}/close",
        data={"disposition_id": str(disposition.id), "notes": "", "next": "ready"},  # type: ignore[union-attr]
        headers=hx(client),
    )
    await all_pages_ok(iid)  # closed
    await sup.aclose()


async def test_the_offer_preview_is_the_customers_last_message(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    """Not an auto-reply or another agent's text that came after it."""
    await login(client, "alice")
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    await customer_writes(browser, "Where is my refund?")
    offer = await pending_offer(services, await agent_id_of(services, "alice"))
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, offer.interaction_id)
        assert interaction is not None
        db.add(
            Message(
                interaction_id=interaction.id,
                inbox_id=interaction.inbox_id,
                direction="out",
                sender_kind="system",
                body="Thanks! An agent will be with you shortly.",
            )
        )
        await db.commit()
    console = (await client.get("/console")).text
    offers = console.split('id="offers"', 1)[1]
    assert '<p class="preview">Where is my refund?</p>' in offers
    assert "An agent will be with you shortly" not in offers


async def test_force_logout_hands_the_chat_back_and_the_supervisor_reassigns_it(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    bob, alice = await agent_id_of(services, "bob"), await agent_id_of(services, "alice")
    await login(browser, "bob")
    await browser.post("/console/presence", data={"state": "ready"}, headers=hx(browser))
    async with httpx.AsyncClient(
        transport=browser._transport, base_url=BASE_URL, timeout=20
    ) as customer:
        await customer_writes(customer, "My card was charged twice")
        offer = await pending_offer(services, bob)
        accepted = await browser.post(f"/console/offers/{offer.id}/accept", headers=hx(browser))
        assert accepted.status_code == 200
        iid = offer.interaction_id
        # From here on only the supervisor moves work (the dispatcher would offer the
        # handed-back chat to the first agent who is ready).
        await services.routing.stop()

        await login(client, "sam")
        out = await client.post(f"/supervisor/agents/{bob}/logout", headers=hx(client))
        assert "went back to their queues" in out.text
        async with services.sessionmaker() as db:
            back = await db.get(Interaction, iid)
        assert back is not None and (back.state, back.agent_id) == ("queued", None)

        wallboard = await client.get("/supervisor")
        assert f'id="work-row-{iid}"' in wallboard.text
        panel = await client.get(f"/supervisor/interactions/{iid}/panel")
        assert "Alice Martin" not in panel.text  # Alice is not taking work yet
        refused = await client.post(
            f"/supervisor/interactions/{iid}/reassign",
            data={"target": f"agent:{alice}"},
            headers=hx(client),
        )
        assert refused.status_code == 422
        assert "Alice Martin is not taking work now" in refused.text

        await services.presence.set_presence(alice, "not_ready", "break")
        await services.presence.set_presence(alice, "ready")
        panel = await client.get(f"/supervisor/interactions/{iid}/panel")
        assert f'value="agent:{alice}"' in panel.text
        moved = await client.post(
            f"/supervisor/interactions/{iid}/reassign",
            data={"target": f"agent:{alice}"},
            headers=hx(client),
        )
        assert moved.status_code == 200, moved.text
        assert "offered to Alice Martin" in moved.text
        offer = await pending_offer(services, alice)
        assert offer.interaction_id == iid
        async with services.sessionmaker() as db:
            entry = (await db.exec(select(AuditEntry).where(AuditEntry.action == "reassign"))).one()
        assert entry.entity_id == str(iid)


async def test_a_console_stream_keeps_its_agent_present_until_its_keepalive_ends_it(
    app: Litestar, client: httpx.AsyncClient
):
    from hub.presence import CONSOLE
    from web.sse import Message as SSE

    services: Services = app.state.services
    env = app.template_engine.engine  # type: ignore[attr-defined]
    alice = await agent_id_of(services, "alice")
    user = CurrentUser(
        id=1, username="alice", display_name="Alice", role=Role.AGENT, agent_id=alice
    )
    calls = 0

    async def keepalive() -> SSE | None:
        nonlocal calls
        calls += 1
        if calls == 3:  # the session expired
            return SSE(event="session-expired", data="expired")
        await services.presence.console_alive(alice)
        return None

    stream = run_stream(
        services,
        ConsoleStream(services, env, user),
        heartbeat=5,
        keepalive=keepalive,
        keepalive_every=0.05,
    )
    messages = [m async for m in stream]
    assert messages[-1].event == "session-expired"
    assert calls == 3
    grace = services.settings.presence_grace_seconds
    assert await services.presence.marks.present(CONSOLE, alice, grace)


async def test_the_wallboard_counts_a_contact_going_past_the_target_without_any_event(
    app: Litestar, browser: httpx.AsyncClient
):
    from datetime import timedelta

    from models import utcnow
    from web.supervisor import SupervisorStream

    services: Services = app.state.services
    env = app.template_engine.engine  # type: ignore[attr-defined]
    await customer_writes(browser, "still waiting")  # General's target is 30 s
    sam = CurrentUser(id=6, username="sam", display_name="Sam", role=Role.SUPERVISOR, agent_id=None)
    wallboard = SupervisorStream(services, env, sam)
    stream = run_stream(services, wallboard, heartbeat=0.1, on_idle=wallboard.tick)
    assert (await anext(stream)).comment == "connected"
    synced = {m.event: str(m.data) for m in [await anext(stream) for _ in range(3)]}
    general = re.search(r'data-queue="General">.*?</tr>', synced["queues"], re.S)
    assert general is not None and "%" not in general.group(0)  # nothing counts yet

    async with services.sessionmaker() as db:  # 40 s pass, quietly
        waiting = (await db.exec(select(Interaction))).one()
        waiting.queued_at = utcnow() - timedelta(seconds=40)
        db.add(waiting)
        await db.commit()
    for _ in range(100):  # the next quiet tick renders it (no event was published)
        message = await anext(stream)
        if message.event == "queues":
            general = re.search(r'data-queue="General">.*?</tr>', str(message.data), re.S)
            if general is not None and "0 %" in general.group(0):
                break
    else:
        raise AssertionError("the wallboard never counted the late contact as a miss")
    await stream.aclose()
