"""Inboxes in the admin pages, in Chromium against a real hub process: an admin creates a
mailbox and an SMS inbox, "Test connection" succeeds against a local SMTP server
(aiosmtpd, with AUTH) and SMSC (smpp34), and names the failure once they are down. The
saved SMS inbox binds to the SMSC at once (no restart), and secrets never come back."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import smpp34
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.e2e.hub_process import free_port, hub_server
from tests.e2e.test_console_browser import log_in

pytestmark = pytest.mark.browser

TIMEOUT_MS = 20_000
SMTP_PASSWORD = "relay-secret-42"
SMPP_PASSWORD = "smpp-pw"


class _Sink:
    async def handle_DATA(self, *_args: object) -> str:
        return "250 OK"


def _authenticator(_server, _session, _envelope, _mechanism, data: object) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


class SmscThread:
    """smpp34's SMSC on its own event loop in a thread; keeps the system_id of each bind."""

    def __init__(self) -> None:
        self.port = free_port()
        self.system_ids: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        self.server = smpp34.Server(host="127.0.0.1", port=self.port, system_id="E2ESMSC")
        await self.server.start()
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            event = await self.server.next()
            if isinstance(event, smpp34.Esme):
                self.system_ids.append(event.system_id)

    def stop(self) -> None:
        if not self.loop.is_running():
            return

        async def stop() -> None:
            self.pump.cancel()
            await asyncio.wait_for(self.server.stop(), 5)

        # smpp34 has been seen hanging at shutdown
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def inbox_hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[dict]:
    var = tmp_path_factory.mktemp("inboxes") / "var"
    with hub_server(var, seeded_db, HUB_INBOX_TEST_TIMEOUT_SECONDS="5") as (base, _process):
        yield {"base": base, "db": var / "hub.sqlite3"}


def _query(db: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def _admin_page(chromium, base: str):
    context = chromium.new_context()
    return context, log_in(context, base, "admin", TIMEOUT_MS)


def _test_connection(page) -> str:
    page.locator("#test-result").evaluate("el => el.innerHTML = ''")
    page.click("#test-connection")
    result = page.locator("#test-result .probe-result").first
    result.wait_for()
    return result.inner_text()


def _open_inbox(page, base: str, name: str) -> None:
    page.goto(f"{base}/admin/inboxes")
    page.get_by_role("link", name=name, exact=True).click()
    page.wait_for_selector("#inbox-form")


def test_smtp_inbox_tests_ok_then_names_the_refused_connection(inbox_hub: dict, chromium) -> None:
    base, db = inbox_hub["base"], inbox_hub["db"]
    smtp_port = free_port()
    smtp = Controller(
        _Sink(),
        hostname="127.0.0.1",
        port=smtp_port,
        authenticator=_authenticator,
        auth_require_tls=False,
    )
    smtp.start()
    context, page = _admin_page(chromium, base)
    try:
        page.goto(f"{base}/admin/inboxes")
        page.click("#new-email")
        page.fill("input[name=name]", "Relay mailbox")
        page.fill("textarea[name=email_addresses]", "help@example.com")
        page.fill("input[name=relay_host]", "127.0.0.1")
        page.fill("input[name=relay_port]", str(smtp_port))
        page.fill("input[name=relay_username]", "hub")
        page.fill("input[name=relay_password]", SMTP_PASSWORD)
        dialog_id = _query(db, "SELECT id FROM dialog ORDER BY id")[0][0]
        page.select_option("select[name=dialog_id]", str(dialog_id))
        page.click("#save-inbox")
        page.wait_for_selector("text=Saved Relay mailbox.")
        assert SMTP_PASSWORD not in page.content()

        _open_inbox(page, base, "Relay mailbox")
        assert page.input_value("input[name=relay_password]") == ""  # never rendered back
        assert "(set)" in page.locator(".secret-state").first.inner_text()
        assert SMTP_PASSWORD not in page.content()
        ok = _test_connection(page)
        assert "SMTP: OK" in ok and "login as hub" in ok, ok

        # a blank password keeps the stored one: the test still logs in
        page.fill("input[name=relay_username]", "hub")
        page.click("#save-inbox")
        page.wait_for_selector("text=Saved Relay mailbox.")
        _open_inbox(page, base, "Relay mailbox")
        assert "SMTP: OK" in _test_connection(page)

        smtp.stop()
        failed = _test_connection(page)
        assert f"SMTP: failed: connection refused on 127.0.0.1:{smtp_port}" in failed, failed
    finally:
        context.close()
        if smtp._thread is not None:
            smtp.stop()
    assert _query(db, "SELECT dialog_id FROM inbox WHERE name = 'Relay mailbox'") == [(dialog_id,)]
    audit = _query(db, "SELECT before, after FROM auditentry WHERE entity = 'inbox'")
    assert audit and all(SMTP_PASSWORD not in str(row) for row in audit)


def test_sms_inbox_binds_at_once_and_tests_against_the_smsc(inbox_hub: dict, chromium) -> None:
    base = inbox_hub["base"]
    smsc = SmscThread()
    context, page = _admin_page(chromium, base)
    try:
        page.goto(f"{base}/admin/inboxes")
        page.click("#new-sms")
        page.fill("input[name=name]", "Carrier SMPP")
        page.select_option("select[name=provider]", "smpp")
        page.fill("input[name=smpp_host]", "127.0.0.1")
        page.fill("input[name=smpp_port]", str(smsc.port))
        page.fill("input[name=smpp_system_id]", "hub-e2e")
        page.fill("input[name=smpp_password]", SMPP_PASSWORD)
        page.click("#save-inbox")
        page.wait_for_selector("text=Saved Carrier SMPP.")
        # the hub's adapter bound with the saved settings, without a restart
        for _ in range(100):
            if "hub-e2e" in smsc.system_ids:
                break
            page.wait_for_timeout(100)
        assert smsc.system_ids.count("hub-e2e") == 1, smsc.system_ids

        _open_inbox(page, base, "Carrier SMPP")
        ok = _test_connection(page)
        assert "SMPP: OK" in ok and f"127.0.0.1:{smsc.port}" in ok, ok

        smsc.stop()
        failed = _test_connection(page)
        assert f"SMPP: failed: connection refused on 127.0.0.1:{smsc.port}" in failed, failed

        # a bad value is refused with its field named, and nothing is lost
        page.fill("input[name=smpp_port]", "not-a-port")
        page.click("#save-inbox")
        assert "SMPP port" in page.locator("#inbox-error").inner_text()
    finally:
        context.close()
        smsc.stop()
