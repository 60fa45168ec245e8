"""Login, role guards and CSRF: who may see and change what."""

from __future__ import annotations

import httpx

from tests.web.conftest import hx, login


async def test_login_sends_each_role_to_its_home_page(client: httpx.AsyncClient):
    for username, home in (
        ("alice", "/console"),
        ("sam", "/supervisor"),
        ("admin", "/admin"),
        ("quinn", "/qa"),
    ):
        client.cookies.clear()
        await client.get("/login")
        response = await client.post(
            "/login",
            data={
                "username": username,
                "password": f"{username}-pass",
                "_csrf_token": client.cookies.get("csrftoken", ""),
            },
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == home
        landing = await client.get(home, follow_redirects=True)
        assert landing.status_code == 200


async def test_wrong_password_shows_a_reason_and_no_session(client: httpx.AsyncClient):
    await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "username": "alice",
            "password": "nope",
            "_csrf_token": client.cookies.get("csrftoken", ""),
        },
    )
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    page = await client.get("/console", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.status_code in (302, 303, 307)
    assert page.headers["location"].startswith("/login")


async def test_login_page_never_redirects_off_site(client: httpx.AsyncClient):
    await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "username": "alice",
            "password": "alice-pass",
            "next": "//evil.example/",
            "_csrf_token": client.cookies.get("csrftoken", ""),
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/console"


async def test_each_page_is_guarded_by_role(client: httpx.AsyncClient):
    expected = {
        "alice": {"/console": 200, "/supervisor": 403, "/admin/queues": 403},
        "sam": {"/console": 200, "/supervisor": 200, "/admin/queues": 403},
        "quinn": {"/console": 403, "/supervisor": 403, "/admin/queues": 403},
        "admin": {"/supervisor": 200, "/admin/queues": 200},
    }
    for username, pages in expected.items():
        client.cookies.clear()
        await login(client, username)
        for path, status in pages.items():
            response = await client.get(path)
            assert response.status_code == status, (username, path, response.text[:200])
            if status == 403:
                assert "role" in response.json()["detail"] or "agent" in response.json()["detail"]


async def test_htmx_request_without_login_is_sent_to_the_login_page(client: httpx.AsyncClient):
    response = await client.get("/console", headers={"hx-request": "true"})
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/login"


async def test_state_changes_need_the_csrf_token(client: httpx.AsyncClient):
    await login(client, "alice")
    without = await client.post("/console/presence", data={"state": "not_ready:break"})
    assert without.status_code == 403
    assert "CSRF" in without.json()["detail"]
    with_token = await client.post(
        "/console/presence", data={"state": "not_ready:break"}, headers=hx(client)
    )
    assert with_token.status_code == 200
    assert "Not ready" in with_token.text


async def test_logout_ends_the_session(client: httpx.AsyncClient):
    await login(client, "alice")
    response = await client.post("/logout", headers=hx(client), follow_redirects=False)
    assert response.status_code == 303
    again = await client.get("/console", headers={"accept": "text/html"}, follow_redirects=False)
    assert again.headers["location"].startswith("/login")
