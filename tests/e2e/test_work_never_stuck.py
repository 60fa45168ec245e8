"""End to end in Debian Chromium against a real hub process: work never gets stuck.

- An agent's browser is closed while Ready: within the grace period they go offline and the
  next chat goes to another agent (offers time out only after 10 minutes here, so only
  presence can move it).
- A forced logout hands the active chat back, and the supervisor reassigns it to an agent.
- A customer who ends a chat while waiting, or whose page is gone past the grace period,
  is recorded as abandoned.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.hub_process import hub_server
from tests.e2e.test_console_browser import chat_send, go_ready, log_in, open_chat

pytestmark = pytest.mark.browser

GRACE_SECONDS = "2"  # HUB_PRESENCE_GRACE_SECONDS and HUB_CHAT_ABANDON_GRACE_SECONDS
OFFER_TIMEOUT_SECONDS = 600  # far longer than any wait below


@pytest.fixture
def hub_db(tmp_path: Path, seeded_db: Path) -> Iterator[tuple[str, Path]]:
    """A hub with short presence and abandonment grace periods; (base URL, its database)."""
    var = tmp_path / "var"
    var.mkdir()
    database = var / "seeded.sqlite3"
    shutil.copyfile(seeded_db, database)
    with sqlite3.connect(database) as db:
        db.execute("UPDATE queue SET offer_timeout_seconds = ?", (OFFER_TIMEOUT_SECONDS,))
    with hub_server(
        var,
        database,
        HUB_PRESENCE_GRACE_SECONDS=GRACE_SECONDS,
        HUB_CHAT_ABANDON_GRACE_SECONDS=GRACE_SECONDS,
    ) as (base, _process):
        yield base, var / "hub.sqlite3"


def query(database: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database, timeout=10) as db:
        return db.execute(sql, params).fetchall()


def eventually(check: Callable[[], Any], what: str, limit: float = 30.0) -> Any:
    """Poll a condition the hub reaches on its own timers (bounded; no timing asserted)."""
    deadline = time.monotonic() + limit
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.2)


def presence_of(database: Path, username: str) -> tuple[str, str | None]:
    (row,) = query(
        database,
        "SELECT agent.presence, agent.presence_reason FROM agent "
        "JOIN user ON user.id = agent.user_id WHERE user.username = ?",
        username,
    )
    return row


def test_a_closed_browser_goes_offline_and_the_next_chat_goes_to_another_agent(
    hub_db: tuple[str, Path], chromium
):
    hub, database = hub_db
    alice_ctx, bob_ctx, sup_ctx, customer_ctx = (chromium.new_context() for _ in range(4))
    try:
        alice = log_in(alice_ctx, hub, "alice")
        go_ready(alice)  # Alice is ready first: the longest idle, so first in line
        bob = log_in(bob_ctx, hub, "bob")
        go_ready(bob)
        supervisor = log_in(sup_ctx, hub, "sam")
        alice_row = supervisor.locator("tr[data-agent='Alice Martin']")
        alice_row.locator(".presence-chip", has_text="ready").wait_for()

        alice_ctx.close()  # the browser is closed while Ready
        customer = open_chat(customer_ctx, hub)
        chat_send(customer, "Hello? Anyone?")

        # Bob gets the chat (an offer stuck with Alice would wait 10 minutes to time out).
        offer = bob.locator("#offers .offer")
        offer.wait_for(timeout=30_000)
        offer.get_by_role("button", name="Accept").click()
        bob.locator(".messages .msg.in", has_text="Hello? Anyone?").wait_for()
        customer.locator("#chat-status", has_text="You are chatting with Bob").wait_for()

        # The wallboard says Alice is offline, and her presence history says why.
        alice_row.locator(".presence-chip", has_text="offline").wait_for()
        assert presence_of(database, "alice") == ("offline", "console closed")
        outcomes = {row[0] for row in query(database, "SELECT outcome FROM offer")}
        assert "timeout" not in outcomes  # nobody waited for a ring-no-answer
        assert presence_of(database, "bob")[0] == "busy"  # Bob's open tab keeps him present
    finally:
        for ctx in (bob_ctx, sup_ctx, customer_ctx):
            ctx.close()


def test_an_agent_whose_session_expires_goes_offline(hub_db: tuple[str, Path], chromium):
    hub, database = hub_db
    context = chromium.new_context()
    try:
        carol = log_in(context, hub, "carol")
        go_ready(carol)
        # The session store forgets the session, as it does when the session expires. A
        # request still in flight writes the session it loaded back when it answers (a CI
        # run found the file there again), so the store forgets it until the tab notices.
        toast = carol.locator("#toasts .toast", has_text="Your session has expired")
        for _ in range(10):
            for stored in (database.parent / "sessions").iterdir():
                stored.unlink(missing_ok=True)
            with contextlib.suppress(PlaywrightTimeout):
                toast.wait_for(timeout=3000)
                break
        else:
            raise AssertionError("the console never said the session had expired")
        eventually(
            lambda: presence_of(database, "carol") == ("offline", "console closed"),
            "Carol offline once her session is gone",
        )
    finally:
        context.close()


def test_a_forced_logout_hands_the_chat_back_and_the_supervisor_reassigns_it(
    hub_db: tuple[str, Path], chromium
):
    hub, database = hub_db
    bob_ctx, erin_ctx, sup_ctx, customer_ctx = (chromium.new_context() for _ in range(4))
    try:
        bob = log_in(bob_ctx, hub, "bob")
        go_ready(bob)
        # Erin works Billing and Spanish: routing never gives her a General chat by itself.
        erin = log_in(erin_ctx, hub, "erin")
        go_ready(erin)

        customer = open_chat(customer_ctx, hub)
        customer.fill("input[name=name]", "Rita Refund")
        chat_send(customer, "I was charged twice")
        offer = bob.locator("#offers .offer")
        offer.wait_for()
        offer.get_by_role("button", name="Accept").click()
        bob.fill("textarea[name=reply]", "Looking into it now.")
        bob.get_by_role("button", name="Send reply").click()
        customer.locator("#transcript .cmsg.them", has_text="Looking into it now.").wait_for()

        supervisor = log_in(sup_ctx, hub, "sam")
        work = supervisor.locator("#work-table tr", has_text="Rita Refund")
        work.locator(".chip", has_text="active").wait_for()
        supervisor.once("dialog", lambda dialog: dialog.accept())
        supervisor.locator("tr[data-agent='Bob Okafor']").get_by_role(
            "button", name="Log out"
        ).click()
        supervisor.locator("#action-panel", has_text="went back to their queues").wait_for()
        bob.wait_for_url("**/login?reason=forced")

        # The chat is back in its queue, waiting: the wallboard and the customer see it live
        # (nobody who works General is logged in now, and the customer is told so).
        work.locator(".chip", has_text="queued").wait_for()
        customer.locator("#chat-status", has_text="No agent is available right now").wait_for()
        assert presence_of(database, "bob") == ("offline", "forced logout")

        work.get_by_role("button", name="Reassign…").click()
        panel = supervisor.locator("#action-panel")
        panel.locator("select[name=target]").select_option(label="Erin Schmidt")
        panel.get_by_role("button", name="Reassign").click()
        panel.locator(".notice.ok", has_text="offered to Erin Schmidt").wait_for()

        offer = erin.locator("#offers .offer", has_text="Rita Refund")
        offer.wait_for()
        offer.get_by_role("button", name="Accept").click()
        # Erin sees the whole conversation so far, and the customer sees her join.
        erin.locator(".messages .msg.out", has_text="Looking into it now.").wait_for()
        customer.locator("#chat-status", has_text="You are chatting with Erin").wait_for()
        work.locator(".chip", has_text="active").wait_for()
        (audited,) = query(database, "SELECT user_id FROM auditentry WHERE action = 'reassign'")
        assert audited[0] is not None
    finally:
        for ctx in (bob_ctx, erin_ctx, sup_ctx, customer_ctx):
            ctx.close()


def test_a_customer_who_leaves_while_waiting_is_recorded_as_abandoned(
    hub_db: tuple[str, Path], chromium
):
    hub, database = hub_db
    ender_ctx, leaver_ctx = chromium.new_context(), chromium.new_context()
    try:
        ender = open_chat(ender_ctx, hub)
        chat_send(ender, "Never mind, I found it")
        ender.locator("#end-chat").wait_for()
        ender.once("dialog", lambda dialog: dialog.accept())
        ender.locator("#end-chat").click()
        ender.locator("#chat-status", has_text="You ended the chat").wait_for()
        ender.locator("#transcript .cnotice", has_text="You ended the chat").wait_for()

        leaver = open_chat(leaver_ctx, hub)
        with leaver.expect_request(lambda request: "/chat/events" in request.url):
            chat_send(leaver, "Hello, I will wait")  # the panel opens the chat's stream
        leaver.locator("#chat-status", has_text="No agent is available").wait_for()
        leaver_ctx.close()  # the page is gone, and does not come back

        def abandoned() -> list[tuple[Any, ...]]:
            return query(
                database,
                "SELECT interaction.id, interactionevent.reason, interaction.closed_at "
                "FROM interaction JOIN interactionevent "
                "ON interactionevent.interaction_id = interaction.id "
                "WHERE interaction.state = 'abandoned' "
                "AND interactionevent.to_state = 'abandoned' "
                "ORDER BY interaction.id",
            )

        rows = eventually(lambda: len(abandoned()) == 2 and abandoned(), "both abandoned")
        assert [reason for _id, reason, _at in rows] == [
            "customer ended the chat",
            "customer left the chat page",
        ]
        assert all(closed_at for _id, _reason, closed_at in rows)  # with the time
    finally:
        ender_ctx.close()
        if leaver_ctx.pages:
            leaver_ctx.close()
