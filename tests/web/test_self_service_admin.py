"""Admin settings of back to self-service and the post-call survey: which dialog steps
agents are offered, and a queue's survey dialog; bad input gets a 422 with a reason."""

from __future__ import annotations

import httpx
from sqlmodel import select

from hub.services import Services
from models import Dialog, Queue
from tests.web.conftest import hx, login


async def _dialog(services: Services, name: str) -> Dialog:
    async with services.sessionmaker() as db:
        return (await db.exec(select(Dialog).where(Dialog.name == name))).one()


async def test_an_admin_offers_steps_of_the_published_version_only(
    client: httpx.AsyncClient, services: Services
) -> None:
    await login(client, "admin")
    menu = await _dialog(services, "demo_phone_menu")
    url = f"/admin/dialogs/{menu.id}/agent-nodes"
    page = await client.get(f"/admin/dialogs/{menu.id}")
    assert 'name="node" value="ask_account"' in page.text
    bad = await client.post(url, data={"node": ["ask_account", "<b>x</b>"]}, headers=hx(client))
    assert bad.status_code == 422
    assert "The published version has no node '<b>x</b>'." in bad.json()["detail"]
    assert (await _dialog(services, "demo_phone_menu")).agent_nodes == []
    ok = await client.post(url, data={"node": ["ask_account"]}, headers=hx(client))
    assert ok.status_code == 200
    assert "Agents may send callers to: ask_account." in ok.text
    assert (await _dialog(services, "demo_phone_menu")).agent_nodes == ["ask_account"]
    cleared = await client.post(url, data={}, headers=hx(client))
    assert "No node of this dialog is offered to agents." in cleared.text
    assert (await _dialog(services, "demo_phone_menu")).agent_nodes == []


async def test_a_queues_survey_must_be_a_published_dialog(
    client: httpx.AsyncClient, services: Services
) -> None:
    await login(client, "admin")
    survey = await _dialog(services, "satisfaction_survey")
    async with services.sessionmaker() as db:
        general = (await db.exec(select(Queue).where(Queue.name == "General"))).one()
    form = {
        "name": "General",
        "channels": ["voice"],
        "strategy": "longest_idle",
        "priority": "0",
        "sla_seconds": "30",
        "offer_timeout_seconds": "20",
        "wrapup_seconds": "60",
        "active": "on",
    }
    edit = await client.get(f"/admin/queues/{general.id}/edit", headers=hx(client))
    assert "satisfaction_survey" in edit.text
    bad = await client.post(
        f"/admin/queues/{general.id}", data={**form, "survey_dialog_id": "9999"}, headers=hx(client)
    )
    assert bad.status_code == 422 and "must be a published dialog" in bad.text
    ok = await client.post(
        f"/admin/queues/{general.id}",
        data={**form, "survey_dialog_id": str(survey.id)},
        headers=hx(client),
    )
    assert ok.status_code == 200, ok.text
    async with services.sessionmaker() as db:
        queue = await db.get(Queue, general.id)
    assert queue is not None and queue.survey_dialog_id == survey.id
