"""Canned responses: admins keep them per queue (and global ones); agents get them filled in
for the conversation in the composer's ``/word`` list, with customer text escaped."""

from __future__ import annotations

import html
import re
import uuid

import httpx
from sqlmodel import select

from hub.services import Services
from models import AuditEntry, CannedResponse, Queue
from tests.web.conftest import hx, login
from tests.web.test_console import agent_id_of, pending_offer


async def queue_id(services: Services, name: str) -> int:
    async with services.sessionmaker() as db:
        return (await db.exec(select(Queue).where(Queue.name == name))).one().id  # type: ignore[return-value]


async def create(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    data = {"active": "on", "queue_id": "", **fields}
    return await client.post("/admin/canned", data=data, headers=hx(client))


async def test_admins_create_edit_and_delete_canned_responses_with_an_audit_trail(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "admin")
    general = await queue_id(services, "General")
    page = await client.get("/admin/canned")
    assert page.status_code == 200 and "Canned responses" in page.text
    form = await client.get("/admin/canned/new", headers=hx(client))
    assert "{{customer.name}}" in form.text  # the form lists the variables
    assert 'value="">All queues</option>' in form.text

    made = await create(
        client,
        shortcut="/Refund",
        title="Refund on its way",
        body="Hi {{customer.first_name}}, {{agent.name}} here: your refund is on its way.",
        queue_id=str(general),
    )
    assert made.status_code == 200, made.text
    assert "/refund" in made.text and "Refund on its way" in made.text and "General" in made.text
    glob = await create(client, shortcut="thanks", title="Thanks", body="Thank you!")
    assert "all queues" in glob.text
    async with services.sessionmaker() as db:
        rows = {r.shortcut: r for r in (await db.exec(select(CannedResponse))).all()}
    assert rows["refund"].queue_id == general and rows["thanks"].queue_id is None

    # The same shortcut twice in one scope is refused; in another queue it is fine.
    again = await create(client, shortcut="thanks", title="Again", body="Thanks again")
    assert again.status_code == 409
    billing = await queue_id(services, "Billing")
    other = await create(
        client, shortcut="refund", title="Billing refund", body="x", queue_id=str(billing)
    )
    assert other.status_code == 200, other.text

    # Bad input gets a 422 that names the problem, and nothing changes.
    typo = await create(client, shortcut="typo", title="Typo", body="Hi {{customer.nmae}}")
    assert typo.status_code == 422 and "{{customer.nmae}}" in typo.json()["detail"]
    spaces = await create(client, shortcut="two words", title="T", body="x")
    assert spaces.status_code == 422 and "Shortcut" in spaces.json()["detail"]
    nowhere = await create(client, shortcut="lost", title="T", body="x", queue_id="999")
    assert nowhere.status_code == 422

    edit = await client.get(f"/admin/canned/{rows['refund'].id}/edit", headers=hx(client))
    assert edit.status_code == 200 and "your refund is on its way" in edit.text
    updated = await client.post(
        f"/admin/canned/{rows['refund'].id}",
        data={
            "shortcut": "refund",
            "title": "Refund sent",
            "body": "Your refund was sent today.",
            "queue_id": str(general),
        },  # no "active": switched off
        headers=hx(client),
    )
    assert updated.status_code == 200, updated.text
    deleted = await client.post(f"/admin/canned/{rows['thanks'].id}/delete", headers=hx(client))
    assert deleted.status_code == 200
    async with services.sessionmaker() as db:
        refund = await db.get(CannedResponse, rows["refund"].id)
        assert refund is not None and (refund.title, refund.active) == ("Refund sent", False)
        assert await db.get(CannedResponse, rows["thanks"].id) is None
        entries = (await db.exec(select(AuditEntry).where(AuditEntry.entity == "canned"))).all()
    actions = [e.action for e in entries]
    assert actions.count("create") == 3 and "update" in actions and "delete" in actions
    change = next(e for e in entries if e.action == "update")
    assert change.before["title"] == "Refund on its way"  # type: ignore[index]
    assert change.after["title"] == "Refund sent"  # type: ignore[index]

    # Only admins keep them.
    client.cookies.clear()
    await login(client, "alice")
    assert (await client.get("/admin/canned")).status_code == 403


async def test_deleting_a_queue_lists_its_canned_responses_and_asks_again(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "admin")
    made = await client.post(
        "/admin/queues",
        data={
            "name": "Returns",
            "channels": "webchat",
            "strategy": "longest_idle",
            "sla_seconds": "60",
            "offer_timeout_seconds": "20",
            "wrapup_seconds": "30",
            "active": "on",
        },
        headers=hx(client),
    )
    assert made.status_code == 200, made.text
    returns = await queue_id(services, "Returns")
    await create(client, shortcut="label", title="Label", body="x", queue_id=str(returns))
    asked = await client.post(f"/admin/queues/{returns}/delete", headers=hx(client))
    assert "canned response(s) /label" in asked.text and "Delete anyway" in asked.text
    gone = await client.post(
        f"/admin/queues/{returns}/delete", data={"confirm": "1"}, headers=hx(client)
    )
    assert gone.status_code == 200, gone.text
    async with services.sessionmaker() as db:
        assert (await db.exec(select(CannedResponse))).all() == []


async def chat_offer_accepted(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services, name: str
) -> int:
    """A web chat customer called ``name`` writes; Alice accepts; the interaction id."""
    await login(client, "alice")
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    await browser.get("/chat")
    sent = await browser.post(
        "/chat/messages",
        data={"body": "Where is my money?", "name": name, "source_id": uuid.uuid4().hex},
        headers=hx(browser),
    )
    assert sent.status_code == 200, sent.text
    offer = await pending_offer(services, await agent_id_of(services, "alice"))
    accepted = await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    assert accepted.status_code == 200
    assert f'hx-get="/console/interactions/{offer.interaction_id}/canned"' in accepted.text
    return offer.interaction_id


def suggested_texts(page: str) -> list[str]:
    """The text each suggestion would insert (its attribute, unescaped as a browser does)."""
    return [html.unescape(t) for t in re.findall(r'data-text="([^"]*)"', page)]


async def seed_responses(services: Services) -> None:
    general, billing = await queue_id(services, "General"), await queue_id(services, "Billing")
    async with services.sessionmaker() as db:
        db.add_all(
            [
                CannedResponse(
                    queue_id=general,
                    shortcut="refund",
                    title="Refund on its way",
                    body=(
                        "Hello {{customer.name}} ({{ customer.first_name }}), this is "
                        "{{agent.first_name}} of {{queue.name}}, ref #{{interaction.id}}."
                    ),
                ),
                CannedResponse(
                    queue_id=None, shortcut="refer", title="Referral", body="Global: refer."
                ),
                CannedResponse(
                    queue_id=billing, shortcut="refund-billing", title="Billing", body="B"
                ),
                CannedResponse(
                    queue_id=general, shortcut="refund-old", title="Old", body="O", active=False
                ),
                CannedResponse(queue_id=None, shortcut="bye", title="Goodbye", body="Bye!"),
            ]
        )
        await db.commit()


async def test_the_composer_suggests_this_queues_responses_with_variables_filled_in(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    await seed_responses(services)
    iid = await chat_offer_accepted(client, browser, services, "Nora Quinn")
    found = await client.get(
        f"/console/interactions/{iid}/canned", params={"canned_q": "ref"}, headers=hx(client)
    )
    assert found.status_code == 200
    texts = suggested_texts(found.text)
    # The queue's own first, then the global one; other queues' and inactive ones never.
    assert texts == [
        f"Hello Nora Quinn (Nora), this is Alice of General, ref #{iid}.",
        "Global: refer.",
    ]
    assert 'role="listbox"' in found.text and "/refund" in found.text
    everything = await client.get(f"/console/interactions/{iid}/canned", headers=hx(client))
    assert len(suggested_texts(everything.text)) == 3  # refund, refer, bye
    by_title = await client.get(
        f"/console/interactions/{iid}/canned", params={"canned_q": "goodb"}, headers=hx(client)
    )
    assert suggested_texts(by_title.text) == ["Bye!"]
    none = await client.get(
        f"/console/interactions/{iid}/canned", params={"canned_q": "zzz"}, headers=hx(client)
    )
    assert "No canned response matches “/zzz”" in none.text

    # Someone else's conversation: no suggestions (and no customer names) for Bob.
    browser.cookies.clear()
    await login(browser, "bob")
    other = await browser.get(f"/console/interactions/{iid}/canned", headers=hx(browser))
    assert other.status_code == 403


async def test_a_customer_name_with_html_and_braces_is_inserted_as_plain_text(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    await seed_responses(services)
    iid = await chat_offer_accepted(
        client, browser, services, '<img src=x onerror="alert(1)"> {{agent.name}}'
    )
    found = await client.get(
        f"/console/interactions/{iid}/canned", params={"canned_q": "refund"}, headers=hx(client)
    )
    assert "<img" not in found.text and 'onerror="alert' not in found.text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in found.text
    # Inserted as the customer wrote it: escaped for the page, never expanded again.
    assert suggested_texts(found.text)[0].startswith(
        'Hello <img src=x onerror="alert(1)"> {{agent.name}} (<img), this is Alice'
    )


async def test_a_variable_without_a_value_stays_visible(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    await seed_responses(services)
    iid = await chat_offer_accepted(client, browser, services, "")  # no name given
    found = await client.get(
        f"/console/interactions/{iid}/canned", params={"canned_q": "refund"}, headers=hx(client)
    )
    text = suggested_texts(found.text)[0]
    assert text.startswith("Hello {{customer.name}} ({{ customer.first_name }}), this is Alice")
