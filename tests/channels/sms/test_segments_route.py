"""The console's SMS segment counter, through the real app as a signed-in agent."""

from __future__ import annotations

import httpx

from tests.web.conftest import app, client, login, web_database_url  # noqa: F401


async def test_counter_as_json_and_as_an_htmx_fragment(client: httpx.AsyncClient) -> None:  # noqa: F811
    anonymous = await client.get("/sms/segments", params={"text": "hi"})
    assert anonymous.status_code == 401
    await login(client, "alice")
    resp = await client.get("/sms/segments", params={"text": "Привет" * 12})
    assert resp.json() == {
        "encoding": "ucs2",
        "segments": 2,
        "units": 72,
        "per_segment": 67,
        "remaining": 62,
        "non_gsm_chars": ["П", "р", "и", "в", "е", "т"],
    }
    fragment = await client.get(
        "/sms/segments", params={"text": "<b>€</b>"}, headers={"hx-request": "true"}
    )
    assert fragment.text.startswith('<span class="sms-segments" data-segments="1"')
    assert "GSM-7 · 1 SMS · 151 left" in fragment.text
    why = await client.get(
        "/sms/segments", params={"text": "café ✓ ok"}, headers={"hx-request": "true"}
    )
    assert 'title="UCS-2 because of: ✓"' in why.text  # é is GSM-7; the tick is not
    assert "UCS-2 · 1 SMS · 61 left" in why.text
