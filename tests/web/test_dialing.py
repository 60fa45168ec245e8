"""Click to dial's HTTP answers in the running app (voice on, no trunk): the console page
offers the number field, and a call that cannot start is refused with its reason."""

from __future__ import annotations

import httpx

from tests.web.conftest import hx, login


async def test_the_console_offers_a_number_field(client: httpx.AsyncClient) -> None:
    await login(client, "alice")
    page = await client.get("/console")
    assert 'hx-post="/console/dial"' in page.text and 'name="number"' in page.text


async def test_without_a_trunk_the_console_is_told_so_and_bad_numbers_are_named(
    client: httpx.AsyncClient,
) -> None:
    await login(client, "alice")
    refused = await client.post(
        "/console/dial", data={"number": "+14155550123"}, headers=hx(client)
    )
    assert refused.status_code == 409
    assert "No SIP trunk is configured" in refused.text


async def test_only_agents_dial(client: httpx.AsyncClient) -> None:
    await login(client, "quinn")  # QA, not an agent
    refused = await client.post(
        "/console/dial", data={"number": "+14155550123"}, headers=hx(client)
    )
    assert refused.status_code == 403
