"""Errors for people and for programs: a page in the app's style with a way back for a
browser, JSON for an API client, the reason in htmx's JSON for the page it came from."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from hub.services import Services
from tests.web.conftest import hx, login

PAGE = {"accept": "text/html,application/xhtml+xml"}


async def test_a_browser_gets_404_and_403_as_pages_with_a_way_back(client: httpx.AsyncClient):
    await login(client, "alice")
    missing = await client.get("/no/such/<script>page", headers=PAGE)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in missing.text
    assert 'href="/">Back to the start page' in missing.text
    assert "<script>page" not in missing.text and "&lt;script&gt;page" in missing.text

    forbidden = await client.get("/admin/queues", headers=PAGE)
    assert forbidden.status_code == 403
    assert "<h1>Not for your role</h1>" in forbidden.text
    assert "This page is for the admin role." in forbidden.text
    assert 'href="/console"' in forbidden.text  # the app's own navigation, as the user


async def test_api_clients_and_htmx_get_json(client: httpx.AsyncClient):
    await login(client, "alice")
    api = await client.get("/no/such/page", headers={"accept": "application/json"})
    assert api.status_code == 404
    assert api.json() == {"status_code": 404, "detail": "Not Found"}
    swap = await client.get("/admin/queues", headers={**PAGE, **hx(client)})
    assert swap.status_code == 403
    assert swap.json()["detail"] == "This page is for the admin role."


async def test_a_fault_of_ours_is_a_500_page_that_leaks_nothing(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "admin")
    async with services.engine.begin() as conn:  # a real fault: the table is gone
        await conn.execute(sa.text("DROP TABLE notreadyreason"))
    broken = await client.get("/admin/reasons", headers=PAGE)
    assert broken.status_code == 500
    assert "<h1>Something went wrong</h1>" in broken.text
    assert "It has been logged" in broken.text
    assert "notreadyreason" not in broken.text.lower() and "Traceback" not in broken.text
    as_json = await client.get("/admin/reasons")
    assert as_json.status_code == 500
    assert "notreadyreason" not in as_json.text.lower()


async def test_a_logged_out_browser_still_goes_to_the_login_page(client: httpx.AsyncClient):
    response = await client.get("/console", headers=PAGE, follow_redirects=False)
    assert response.status_code in (302, 303, 307)
    assert response.headers["location"].startswith("/login")
