"""Admin → Queues: the "when nobody can answer" fields are saved, audited and checked."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from hub.services import Services
from models import Queue
from tests.web.conftest import hx, login

BASE = {
    "name": "General",
    "channels": ["voice"],
    "strategy": "longest_idle",
    "sla_seconds": "30",
    "offer_timeout_seconds": "20",
    "wrapup_seconds": "60",
    "active": "on",
}


async def _general(services: Services) -> Queue:
    async with services.sessionmaker() as db:
        return (await db.exec(select(Queue).where(Queue.name == "General"))).one()


async def test_the_queue_form_saves_maximum_wait_callbacks_and_the_on_duty_number(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "admin")
    general = await _general(services)
    response = await client.post(
        f"/admin/queues/{general.id}",
        data={
            **BASE,
            "max_wait_seconds": "120",
            "max_wait_action": "callback",
            "callback_key": "9",
            "callback_retry_seconds": "600",
            "callback_max_tries": "4",
            "onduty_number": "+1 415 555 0142",
        },
        headers=hx(client),
    )
    assert response.status_code == 200, response.text
    saved = await _general(services)
    assert (saved.max_wait_seconds, saved.max_wait_action, saved.callback_key) == (
        120,
        "callback",
        "9",
    )
    assert (saved.callback_retry_seconds, saved.callback_max_tries) == (600, 4)
    assert saved.onduty_number == "+14155550142"
    form = await client.get(f"/admin/queues/{general.id}/edit", headers=hx(client))
    assert form.status_code == 200
    assert 'name="max_wait_seconds"' in form.text and "+14155550142" in form.text


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"callback_key": "99"}, "one key"),
        ({"max_wait_action": "hang_up"}, "maximum wait"),
        ({"onduty_number": "4155550142"}, "country code"),
        ({"onduty_number": "+1 555"}, "On-duty number"),
        ({"max_wait_seconds": "60", "max_wait_action": "overflow"}, "overflow queue"),
    ],
)
async def test_bad_fields_get_a_reason_and_change_nothing(
    client: httpx.AsyncClient, services: Services, fields: dict[str, str], reason: str
):
    await login(client, "admin")
    general = await _general(services)
    response = await client.post(
        f"/admin/queues/{general.id}", data={**BASE, **fields}, headers=hx(client)
    )
    assert response.status_code == 422
    assert reason in response.text
    assert (await _general(services)).model_dump() == general.model_dump()
