"""Admins design dialogs in Chromium against a real hub: a problem appears at its line as
they type, the tests run, a version is published and rolled back (each step audited), the
diagram draws every node, and the simulator answers the menu as a chat."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.hub_process import hub_server
from tests.e2e.test_console_browser import log_in

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def dialog_hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[dict]:
    var = tmp_path_factory.mktemp("dialogs") / "var"
    with hub_server(var, seeded_db) as (base, _process):
        yield {"base": base, "db": var / "hub.sqlite3"}


def _query(db: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def _admin_page(chromium, base: str):
    context = chromium.new_context()
    return context, log_in(context, base, "admin", TIMEOUT_MS)


def test_edit_check_test_publish_and_roll_back(dialog_hub: dict, chromium) -> None:
    base, db = dialog_hub["base"], dialog_hub["db"]
    (dialog_id,) = _query(db, "SELECT id FROM dialog WHERE name = 'demo_phone_menu'")[0]
    context, page = _admin_page(chromium, base)
    page.goto(f"{base}/admin/dialogs")
    page.click("text=demo_phone_menu")
    page.locator("#diagram svg").wait_for()
    assert page.locator("#diagram svg g.node").count() >= 8  # every node drawn
    page.locator("#no-problems").wait_for()
    editor = page.locator(".cm-content")  # CodeMirror, bundled at set-up

    # A typo in a node's target: the problem appears, naming its line.
    source = page.input_value("#source")
    broken = source.replace("next: ask_account", "next: ask_acount", 1)
    line = source[: source.index("next: ask_account")].count("\n") + 1
    editor.fill(broken)
    problem = page.locator("#check-problems a[data-goto-line]").first
    problem.wait_for()
    assert problem.get_attribute("data-goto-line") == str(line)
    assert "ask_acount" in page.locator("#check-problems").inner_text()
    problem.click()  # the editor goes to the line, marked in its gutter by the same check
    page.locator(".cm-activeLine").get_by_text("next: ask_acount").wait_for()
    page.locator(".cm-lint-marker-error").wait_for()

    # Fixed, with a new greeting whose test now fails, then passes once the test is updated.
    fixed = source.replace("Thank you for calling Acme.", "Welcome to Acme.", 1)
    editor.fill(fixed)
    page.locator("#no-problems").wait_for()
    page.click("#run-tests")
    page.locator("#tests-summary").wait_for()
    assert "test(s) pass" in page.inner_text("#tests-summary")
    page.fill("input[name=note]", "friendlier greeting")
    page.click("#save-version")
    page.locator("#saved").get_by_text("Saved version 2.").wait_for()
    page.locator("#version-2 button.publish").click()
    page.locator("#saved").get_by_text("Version 2 is published.").wait_for()
    published = _query(
        db,
        "SELECT v.number FROM dialog d JOIN dialogversion v ON v.id = d.published_version_id"
        " WHERE d.id = ?",
        dialog_id,
    )
    assert published == [(2,)]

    # A version naming a queue the hub does not have is saved, but not published.
    editor.fill(fixed.replace("queue: general", "queue: nowhere", 1))
    page.locator("#check-problems").get_by_text(
        "there is no queue 'nowhere' in this hub"
    ).wait_for()
    page.click("#save-version")
    page.locator("#saved").get_by_text("Saved version 3.").wait_for()
    page.locator("#version-3 button.publish").click()
    page.locator("#refused").get_by_text("there is no queue 'nowhere'").wait_for()

    # Roll back to version 1: a new version 4, equal to 1, published.
    page.on("dialog", lambda d: d.accept())
    page.locator("#version-1 button.rollback").click()
    page.locator("#saved").get_by_text("version 4 equals version 1").wait_for()
    rows = _query(
        db,
        "SELECT number, source FROM dialogversion WHERE dialog_id = ? ORDER BY number",
        dialog_id,
    )
    assert rows[3][1] == rows[0][1]
    actions = [
        a
        for (a,) in _query(db, "SELECT action FROM auditentry WHERE entity = 'dialog' ORDER BY id")
    ]
    assert actions == ["update", "publish", "update", "rollback"]

    # The changes between versions 1 and 2.
    page.goto(f"{base}/admin/dialogs/{dialog_id}/diff?a=1&b=2")
    assert "+    prompt: Welcome to Acme." in page.inner_text("#diff")
    context.close()


def test_the_simulator_answers_the_menu_as_a_chat(dialog_hub: dict, chromium) -> None:
    base, db = dialog_hub["base"], dialog_hub["db"]
    (dialog_id,) = _query(db, "SELECT id FROM dialog WHERE name = 'demo_phone_menu'")[0]
    context, page = _admin_page(chromium, base)
    page.goto(f"{base}/admin/dialogs/{dialog_id}/simulate?version=1")
    page.locator("#sim-lines .sim-dialog").get_by_text("2. Billing").wait_for()
    page.fill("#sim-text", "billing please")
    page.click("#sim-send")
    page.locator("#sim-lines").get_by_text("key in your account number").wait_for()
    page.fill("#sim-text", "123456#")
    page.click("#sim-send")
    # The lookup reaches the hub's own demo account endpoint.
    page.locator("#sim-done").wait_for()
    text = page.inner_text("#sim-lines")
    assert "GET /demo/accounts/123456 → 200" in text
    assert "Connecting you to billing" in text
    assert "main → ask_account → lookup_account → billing_queue" in page.inner_text("#sim-done")
    context.close()
