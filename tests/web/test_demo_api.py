"""The demo account API the demo phone menu's lookup asks: open to the hub itself (loopback)
without a login, closed to everyone else unless the operator opens it."""

from __future__ import annotations

import httpx
from litestar import Litestar

from tests.web.conftest import BASE_URL


async def test_loopback_gets_the_account_and_others_are_refused(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    found = await client.get("/demo/accounts/123456")  # ASGI client: 127.0.0.1, no login
    assert found.status_code == 200
    assert found.json() == {
        "account": "123456",
        "name": "Ada Lovelace",
        "plan": "Fibre 500",
        "balance": 42.5,
    }
    assert (await client.get("/demo/accounts/000000")).status_code == 404

    outside = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=outside, base_url=BASE_URL) as stranger:
        refused = await stranger.get("/demo/accounts/123456")
        assert refused.status_code == 403
        assert "Ada" not in refused.text
        app.state.services.settings.demo_api_public = True  # HUB_DEMO_API_PUBLIC=1
        assert (await stranger.get("/demo/accounts/123456")).status_code == 200
        app.state.services.settings.seed_demo = False  # no demo, no demo API
        assert (await stranger.get("/demo/accounts/123456")).status_code == 404
