"""The screen pop's history: a past interaction opens whole and read-only for the agent who
holds the customer's current one, and for nobody else without a reason to see it."""

from __future__ import annotations

import httpx
from litestar import Litestar
from sqlmodel import select

from hub.services import Services
from models import Disposition
from tests.web.conftest import BASE_URL, hx, login
from tests.web.test_console import agent_id_of, customer_writes, pending_offer


async def test_a_past_interaction_opens_read_only_for_the_agent_holding_the_customer(
    app: Litestar, client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    await login(client, "alice")
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    await customer_writes(browser, "My router <blinks> red")
    first = await pending_offer(services, await agent_id_of(services, "alice"))
    await client.post(f"/console/offers/{first.id}/accept", headers=hx(client))
    past = first.interaction_id
    await client.post(
        f"/console/interactions/{past}/reply", data={"reply": "Unplug it."}, headers=hx(client)
    )
    await client.post(
        f"/console/interactions/{past}/note", data={"note": "firmware 2.1"}, headers=hx(client)
    )
    await client.post(f"/console/interactions/{past}/end", headers=hx(client))
    async with services.sessionmaker() as db:
        resolved = (await db.exec(select(Disposition).where(Disposition.code == "resolved"))).one()
    await client.post(
        f"/console/interactions/{past}/close",
        data={"disposition_id": str(resolved.id), "notes": "power cycle", "next": "offline"},
        headers=hx(client),
    )

    bob = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
    carol = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
    async with bob, carol:
        await login(bob, "bob")
        await login(carol, "carol")
        before = await bob.get(f"/console/history/{past}", headers=hx(bob))
        assert before.status_code == 403  # bob holds nothing of this customer yet
        await bob.post("/console/presence", data={"state": "ready"}, headers=hx(bob))
        await customer_writes(browser, "Still red")
        second = await pending_offer(services, await agent_id_of(services, "bob"))
        workspace = await bob.post(f"/console/offers/{second.id}/accept", headers=hx(bob))
        assert f'hx-get="/console/history/{past}"' in workspace.text

        view = await bob.get(f"/console/history/{past}", headers=hx(bob))
        assert view.status_code == 200
        text = view.text
        assert "My router &lt;blinks&gt; red" in text
        assert "Unplug it." in text
        assert "firmware 2.1" in text and "private note" in text
        assert "power cycle" in text
        assert f"<dd>{resolved.label}</dd>" in text
        assert "read-only" in text
        assert "<textarea" not in text and "hx-post" not in text  # nothing to act with

        other = await carol.get(f"/console/history/{past}", headers=hx(carol))
        assert other.status_code == 403
        assert "while you hold one of theirs" in other.json()["detail"]
