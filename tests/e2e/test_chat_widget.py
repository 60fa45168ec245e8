"""The embeddable chat widget on customers' own sites, in Chromium against a real hub.

The hub runs on 127.0.0.1 and the customer's pages on ``localhost``: another site, so the
hub's iframe is third-party there and the widget must work without its cookies.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.hub_process import free_port, hub_server

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


class _Site:
    """A customer's site: one page holding the widget's snippet, on its own origin."""

    def __init__(self, html: str) -> None:
        body = html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.origin = f"http://localhost:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _admin(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=True, timeout=30)
    client.get("/login")
    client.post(
        "/login",
        data={
            "username": "admin",
            "password": "admin-pass",
            "_csrf_token": client.cookies.get("csrftoken", ""),
        },
    )
    client.headers["x-csrftoken"] = client.cookies.get("csrftoken", "")
    return client


def _query(db: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def widget_hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[dict]:
    var = tmp_path_factory.mktemp("widget") / "var"
    with hub_server(var, seeded_db) as (base, _process):
        db = var / "hub.sqlite3"
        inbox_id = _query(db, "SELECT id FROM inbox WHERE kind = 'webchat' ORDER BY id")[0][0]
        snippet = f'<script src="{base}/static/widget.js" data-inbox="{inbox_id}" async></script>'
        allowed = _Site(f"<!doctype html><title>Shop</title><h1>Shop</h1>{snippet}")
        other = _Site(f"<!doctype html><title>Other</title><h1>Other</h1>{snippet}")
        framed = f'<!doctype html><iframe id="direct" src="{base}/chat/w/{inbox_id}"></iframe>'
        framing, framing_denied = _Site(framed), _Site(framed)
        admin = _admin(base)
        try:
            page = admin.post(
                f"/admin/widgets/{inbox_id}",
                data={"origins": f"{allowed.origin}\n{framing.origin}/\n", "new_secret": "1"},
            )
            assert page.status_code == 200, page.text
            secret = re.search(r'id="new-secret">.*?<code>([^<]+)</code>', page.text, re.S)
            assert secret is not None, "the new secret is shown once"
            again = admin.get("/admin/widgets").text
            assert secret.group(1) not in again, "the secret is write-only"
            assert snippet in again.replace("&lt;", "<").replace("&gt;", ">").replace("&#34;", '"')
        finally:
            admin.close()
        try:
            yield {
                "base": base,
                "db": db,
                "inbox": inbox_id,
                "secret": secret.group(1),
                "allowed": allowed,
                "other": other,
                "framing": framing,
                "framing_denied": framing_denied,
            }
        finally:
            for site in (allowed, other, framing, framing_denied):
                site.close()


def test_a_visitor_chats_from_an_allowed_site_and_is_known_again_without_cookies(
    widget_hub: dict, chromium
) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(widget_hub["allowed"].origin)
    page.click("#contacthub-launcher")
    frame = page.frame_locator("#contacthub-frame")
    frame.locator("#chat-body").fill("Hello from the shop <b>page</b>")
    frame.locator("#chat-send").click()
    frame.locator("#transcript").get_by_text("Hello from the shop <b>page</b>").wait_for()
    # The chat's stream carries the token too: a message from the visitor's other tab
    # reaches this one live.
    key = f"contacthub-visitor-{widget_hub['base']}-{widget_hub['inbox']}"
    token = page.evaluate("key => localStorage.getItem(key)", key)
    sent = httpx.post(
        f"{widget_hub['base']}/chat/w/{widget_hub['inbox']}/messages",
        data={"body": "And from my other tab", "source_id": "other-tab-0001"},
        headers={"X-Hub-Visitor": token},
    )
    assert sent.status_code == 200, sent.text
    frame.locator("#transcript").get_by_text("And from my other tab").wait_for()
    rows = _query(
        widget_hub["db"],
        "SELECT i.inbox_id, i.channel FROM message m JOIN interaction i ON i.id = m.interaction_id"
        " WHERE m.body = ?",
        "Hello from the shop <b>page</b>",
    )
    assert rows == [(widget_hub["inbox"], "webchat")]
    assert not [c for c in context.cookies() if c["name"] == "hub_visitor"]

    # Another visit: the token in the site's storage finds the same chat.
    page.reload()
    page.click("#contacthub-launcher")
    frame = page.frame_locator("#contacthub-frame")
    frame.locator("#transcript").get_by_text("Hello from the shop <b>page</b>").wait_for()
    context.close()


def test_a_site_not_on_the_list_gets_no_chat(widget_hub: dict, chromium) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(widget_hub["other"].origin)
    page.click("#contacthub-launcher")
    page.locator("#contacthub-error").wait_for()
    assert page.locator("#contacthub-frame").count() == 0

    # Framing the chat directly is refused by the browser (frame-ancestors) on a site that
    # is not listed, and works on one that is.
    page.goto(widget_hub["framing"].origin)
    page.frame_locator("#direct").locator("#chat-embed").wait_for(state="attached")
    page.goto(widget_hub["framing_denied"].origin)  # "load" waits for the frame as well
    assert page.frame_locator("#direct").locator("#chat-embed").count() == 0
    context.close()


def test_a_signed_user_joins_their_contact_and_a_bad_signature_is_refused(
    widget_hub: dict,
) -> None:
    base, inbox, origin = widget_hub["base"], widget_hub["inbox"], widget_hub["allowed"].origin
    user, email = "customer-42", "Ada@Example.com"
    mac = hmac.new(widget_hub["secret"].encode(), f"{user}\n{email}".encode(), hashlib.sha256)
    form = {"user_id": user, "email": email, "name": "Ada", "signature": mac.hexdigest()}
    with httpx.Client(base_url=base, timeout=30) as client:
        first = client.post(f"/chat/w/{inbox}/session", data=form, headers={"Origin": origin})
        assert first.status_code == 200, first.text
        assert first.headers["access-control-allow-origin"] == origin
        second = client.post(f"/chat/w/{inbox}/session", data=form, headers={"Origin": origin})
        assert second.json()["token"] == first.json()["token"], "one identity on every device"

        forged = client.post(
            f"/chat/w/{inbox}/session",
            data={**form, "email": "someone@else.example"},
            headers={"Origin": origin},
        )
        assert forged.status_code == 403
        assert "does not verify" in forged.json()["detail"]
        stranger = client.post(
            f"/chat/w/{inbox}/session", data={}, headers={"Origin": "http://evil.example"}
        )
        assert stranger.status_code == 403
        assert "http://evil.example may not embed" in stranger.json()["detail"]

        token = first.json()["token"]
        sent = client.post(
            f"/chat/w/{inbox}/messages",
            data={"body": "Where is my order?", "source_id": "signed-user-0001"},
            headers={"X-Hub-Visitor": token},
        )
        assert sent.status_code == 200, sent.text
        no_token = client.post(
            f"/chat/w/{inbox}/messages",
            data={"body": "hi", "source_id": "signed-user-0002"},
        )
        assert no_token.status_code == 400
        assert "session is missing" in no_token.json()["detail"]
    owners = _query(
        widget_hub["db"],
        "SELECT ci.kind, ci.address FROM contactidentity ci WHERE ci.contact_id = ("
        " SELECT i.contact_id FROM message m JOIN interaction i ON i.id = m.interaction_id"
        " WHERE m.body = 'Where is my order?')"
        " ORDER BY ci.kind",
    )
    assert [kind for kind, _ in owners] == ["email", "webchat"]
    assert owners[0][1] == "ada@example.com"
