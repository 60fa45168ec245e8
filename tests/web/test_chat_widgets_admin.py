"""The chat-widget admin page: origins are checked, saved, audited without the secret."""

from __future__ import annotations

import httpx
from sqlmodel import col, select

from hub.services import Services
from models import AuditEntry, Inbox
from tests.web.conftest import hx, login


async def _webchat(services: Services) -> Inbox:
    async with services.sessionmaker() as db:
        return (await db.exec(select(Inbox).where(Inbox.kind == "webchat"))).first()  # type: ignore[return-value]


async def test_origins_that_are_not_origins_get_a_reason(
    client: httpx.AsyncClient, services: Services
) -> None:
    await login(client, "admin")
    inbox = await _webchat(services)
    for bad, why in (
        ("shop.example", "is not an origin"),
        ("https://shop.example/contact", "is not an origin"),
        ("https://*.shop.example", "is not an origin"),
        ("https://shop.example:99999", "bad port"),
    ):
        response = await client.post(
            f"/admin/widgets/{inbox.id}", data={"origins": bad}, headers=hx(client)
        )
        assert response.status_code == 422, bad
        assert why in response.json()["detail"], bad
    assert (await _webchat(services)).config.get("allowed_origins") is None


async def test_saved_origins_are_normalized_and_audited_without_the_secret(
    client: httpx.AsyncClient, services: Services
) -> None:
    await login(client, "admin")
    inbox = await _webchat(services)
    response = await client.post(
        f"/admin/widgets/{inbox.id}",
        data={
            "origins": "https://Shop.Example/\nhttp://localhost:8080, https://shop.example",
            "new_secret": "1",
        },
        headers=hx(client),
    )
    assert response.status_code == 200, response.text
    config = (await _webchat(services)).config
    assert config["allowed_origins"] == ["https://shop.example", "http://localhost:8080"]
    secret = config["identity_secret"]
    assert secret in response.text  # shown once
    async with services.sessionmaker() as db:
        entry = (
            await db.exec(
                select(AuditEntry)
                .where(AuditEntry.entity == "widget")
                .order_by(col(AuditEntry.id).desc())
            )
        ).first()
    assert entry is not None
    assert entry.after == {"allowed_origins": config["allowed_origins"], "identity_secret": True}
    assert secret not in str(entry.before) + str(entry.after)
    assert secret not in (await client.get("/admin/widgets")).text
