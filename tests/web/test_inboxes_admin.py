"""The inbox admin pages over HTTP: admins only, names escaped, bad input named, a bad
save re-shows the form without the secret, and an inbox with nothing to reach says so."""

from __future__ import annotations

import httpx
from sqlmodel import select

from hub.services import Services
from models import Inbox
from tests.web.conftest import hx, login


def _form(client: httpx.AsyncClient, **fields: str) -> dict[str, str]:
    return {"_csrf_token": client.cookies.get("csrftoken", ""), **fields}


async def test_admins_only(client: httpx.AsyncClient) -> None:
    await login(client, "alice")
    response = await client.get("/admin/inboxes", headers={"accept": "text/html"})
    assert response.status_code == 403


async def test_create_escape_refuse_and_keep_secrets(
    client: httpx.AsyncClient, services: Services
) -> None:
    await login(client, "admin")
    assert (await client.get("/admin/inboxes/new?kind=pager")).status_code == 422
    response = await client.post(
        "/admin/inboxes",
        data=_form(
            client,
            kind="telegram",
            name="<b>Bot</b>",
            active="on",
            api_base_url="http://127.0.0.1:9",
            token="123:very-secret",
        ),
    )
    assert response.status_code == 303, response.text
    page = (await client.get("/admin/inboxes")).text
    assert "&lt;b&gt;Bot&lt;/b&gt;" in page and "<b>Bot</b>" not in page
    async with services.sessionmaker() as db:
        inbox = (await db.exec(select(Inbox).where(Inbox.name == "<b>Bot</b>"))).one()
    assert inbox.config["token"] == "123:very-secret"

    edit = (await client.get(f"/admin/inboxes/{inbox.id}")).text
    assert "very-secret" not in edit and "(set)" in edit

    bad = await client.post(
        f"/admin/inboxes/{inbox.id}",
        data=_form(client, name="<b>Bot</b>", api_base_url="ftp://bots", token="other-secret"),
    )
    assert bad.status_code == 422
    assert "must start with http" in bad.text
    assert "other-secret" not in bad.text and "very-secret" not in bad.text
    async with services.sessionmaker() as db:
        assert (await db.get(Inbox, inbox.id)).config["api_base_url"] == "http://127.0.0.1:9"

    result = await client.post(f"/admin/inboxes/{inbox.id}/test", headers=hx(client))
    assert "Telegram:" in result.text and "failed: connection refused on 127.0.0.1:9" in result.text


async def test_nothing_to_connect_to_and_deactivate(
    client: httpx.AsyncClient, services: Services
) -> None:
    await login(client, "admin")
    async with services.sessionmaker() as db:
        fax = (await db.exec(select(Inbox).where(Inbox.kind == "fax"))).first()
    result = await client.post(f"/admin/inboxes/{fax.id}/test", headers=hx(client))
    assert "Nothing to connect to" in result.text
    response = await client.post(f"/admin/inboxes/{fax.id}/active", data=_form(client, active="0"))
    assert response.status_code == 303
    async with services.sessionmaker() as db:
        assert (await db.get(Inbox, fax.id)).active is False
