"""Blocking from the screen pop: an agent blocks with a reason, the customer's next contact
is kept but closed and listed for supervisors with the reason, a supervisor unblocks."""

from __future__ import annotations

import httpx
from litestar import Litestar
from sqlmodel import col, select

from hub.services import Services
from models import AuditEntry, Contact, Disposition, Interaction, InteractionState
from tests.web.conftest import BASE_URL, hx, login
from tests.web.test_console import agent_id_of, customer_writes, pending_offer


async def test_block_keep_list_and_unblock(
    app: Litestar, client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    await login(client, "alice")
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    await customer_writes(browser, "You are all useless")
    offer = await pending_offer(services, await agent_id_of(services, "alice"))
    await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    iid = offer.interaction_id

    no_reason = await client.post(
        f"/console/interactions/{iid}/block", data={"reason": " "}, headers=hx(client)
    )
    assert no_reason.status_code == 422
    assert "Say why" in no_reason.json()["detail"]
    blocked = await client.post(
        f"/console/interactions/{iid}/block",
        data={"reason": "Threats <b>to staff</b>"},
        headers=hx(client),
    )
    assert blocked.status_code == 200
    assert "Blocked: Threats &lt;b&gt;to staff&lt;/b&gt;" in blocked.text
    assert "Unblock this customer" in blocked.text

    # The agent finishes; the customer writes again: kept, closed at once, nobody offered.
    await client.post(f"/console/interactions/{iid}/end", headers=hx(client))
    async with services.sessionmaker() as db:
        resolved = (await db.exec(select(Disposition).where(Disposition.code == "resolved"))).one()
    await client.post(
        f"/console/interactions/{iid}/close",
        data={"disposition_id": str(resolved.id), "next": "ready"},
        headers=hx(client),
    )
    await customer_writes(browser, "Hello again")
    async with services.sessionmaker() as db:
        first = await db.get(Interaction, iid)
        assert first is not None
        later = (
            await db.exec(
                select(Interaction)
                .where(Interaction.contact_id == first.contact_id, col(Interaction.id) > iid)
                .order_by(col(Interaction.id))
            )
        ).all()
    assert [i.state for i in later] == [InteractionState.CLOSED]

    supervisor = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
    async with supervisor:
        await login(supervisor, "sam")
        listing = await supervisor.get("/blocked")
        assert listing.status_code == 200
        assert "Threats &lt;b&gt;to staff&lt;/b&gt;" in listing.text
        assert listing.text.count('<span class="chip">webchat</span>') == 1  # the kept one
        agent_view = await client.get("/blocked")
        assert agent_view.status_code == 403  # agents block; supervisors see the list
        unblocked = await supervisor.post(
            f"/blocked/contacts/{first.contact_id}/unblock", headers=hx(supervisor)
        )
        assert unblocked.status_code == 200
        assert "Nobody is blocked." in unblocked.text
    async with services.sessionmaker() as db:
        contact = await db.get(Contact, first.contact_id)
        entries = (
            await db.exec(
                select(AuditEntry)
                .where(col(AuditEntry.action).startswith("contact."))
                .order_by(col(AuditEntry.id))
            )
        ).all()
    assert contact is not None and not contact.blocked and contact.blocked_reason == ""
    assert [(e.action, (e.after or {}).get("blocked_reason")) for e in entries] == [
        ("contact.block", "Threats <b>to staff</b>"),
        ("contact.unblock", ""),
    ]
