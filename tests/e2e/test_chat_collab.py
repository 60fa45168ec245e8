"""Two agents on one web chat, in Chromium against one real hub process:

- a consult: private notes between the agents, live in both consoles, none of it on the
  customer's page; closed once, then turned into a transfer;
- a conference: both agents see each other's replies and the customer's messages live and
  both write to the customer; one leaves; one interaction with a segment per agent;
- what the console missed while its stream was down, or while a click was in flight.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.hub_process import hub_server
from tests.e2e.test_console_browser import (
    REPLAY_STATE_EVENT,
    REPLAY_WORKSPACE,
    chat_send,
    go_ready,
    log_in,
    open_chat,
)

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def collab_hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[dict]:
    var = tmp_path_factory.mktemp("collab") / "var"
    with hub_server(var, seeded_db) as (base, _process):
        yield {"base": base, "db": var / "hub.sqlite3"}


def _query(db: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql, args).fetchall()


def _accepted_chat(hub: str, agent_ctx, customer_ctx, text: str):
    """Alice takes a new web chat; returns (alice's page, the customer's page, its id)."""
    agent = log_in(agent_ctx, hub, "alice")
    go_ready(agent)
    customer = open_chat(customer_ctx, hub)
    customer.fill("input[name=name]", "Nora Customer")
    chat_send(customer, text)
    offer = agent.locator("#offers .offer")
    offer.wait_for()
    offer.get_by_role("button", name="Accept").click()
    agent.locator(".messages .msg.in", has_text=text).wait_for()
    iid = int(agent.locator(".conv").first.get_attribute("data-iid") or 0)
    customer.locator("#transcript .cnotice", has_text="Alice has joined the chat.").wait_for()
    return agent, customer, iid


def _second_agent(ctx, hub: str, iid: int):
    bob = log_in(ctx, hub, "bob")
    go_ready(bob)
    return bob


def _open_in_list(page, iid: int) -> None:
    """The conversation appears in the console's list live (SSE), and opens from there."""
    link = page.locator(f"#conversations a[data-iid='{iid}']")
    link.wait_for()
    link.click()
    page.locator(f"#conv-{iid}").wait_for()


def _close(page, iid: int, next_state: str = "offline", late_redraws: bool = False) -> None:
    page.locator(f"#actions-{iid}").get_by_role("button", name="End conversation").click()
    wrapup = page.locator("form.wrapup")
    wrapup.wait_for()
    wrapup.locator("select[name=disposition_id]").select_option(label="Resolved")
    wrapup.locator("select[name=next]").select_option(next_state)
    if late_redraws:  # they arrive after the agent chose: the choices stay
        page.evaluate(REPLAY_STATE_EVENT, iid)
        page.evaluate(REPLAY_WORKSPACE, iid)
        page.locator(f"#conv-{iid}:not([data-before])").wait_for()
        assert wrapup.locator("select[name=next]").input_value() == next_state
        assert wrapup.locator("select[name=disposition_id] option:checked").inner_text() == (
            "Resolved"
        )
    wrapup.get_by_role("button", name="Close conversation").click()
    page.locator(".empty-workspace", has_text="Closed.").wait_for()


def test_consult_with_private_notes_closed_then_turned_into_a_transfer(
    collab_hub: dict, chromium
) -> None:
    hub, db = collab_hub["base"], collab_hub["db"]
    contexts = [chromium.new_context() for _ in range(3)]
    alice_ctx, bob_ctx, customer_ctx = contexts
    try:
        alice, customer, iid = _accepted_chat(hub, alice_ctx, customer_ctx, "My invoice is wrong")
        bob = _second_agent(bob_ctx, hub, iid)
        assert bob.locator(f"#conversations a[data-iid='{iid}']").count() == 0

        alice.locator("details.tool summary", has_text="Consult an agent").click()
        form = alice.locator("form[data-collab-start=consult]")
        form.locator("input[name=note]").fill("Is a credit <allowed>?")
        form.locator("select[name=agent_id]").select_option(label="Bob Okafor")
        form.get_by_role("button", name="Consult").click()
        alice.locator(".collab-status", has_text="Consulting Bob Okafor").wait_for()

        # Bob's console gets the consult live, with the conversation's history.
        _open_in_list(bob, iid)
        bob.locator(".collab-status", has_text="Alice Martin asked you for a consult").wait_for()
        bob.locator(f"#messages-{iid} .msg.in", has_text="My invoice is wrong").wait_for()
        bob.locator(f"#messages-{iid} .msg.note", has_text="Is a credit <allowed>?").wait_for()
        assert bob.locator(f"#actions-{iid} textarea[name=reply]").count() == 0  # notes only

        # Private notes both ways, live; the customer's message reaches both.
        bob.locator(f"#actions-{iid} textarea[name=note]").fill("Yes, up to 20 euros")
        bob.evaluate(REPLAY_STATE_EVENT, iid)  # a late redraw keeps his unsent note
        bob.locator(f"#actions-{iid}").get_by_role("button", name="Add note").click()
        alice.locator(f"#messages-{iid} .msg.note", has_text="Yes, up to 20 euros").wait_for()
        alice.locator(f"#actions-{iid} textarea[name=note]").fill("Thanks, doing that")
        alice.locator(f"#actions-{iid}").get_by_role("button", name="Add note").click()
        bob.locator(f"#messages-{iid} .msg.note", has_text="Thanks, doing that").wait_for()
        chat_send(customer, "Are you still there?")
        bob.locator(f"#messages-{iid} .msg.in", has_text="Are you still there?").wait_for()

        # Alice closes the consult: it leaves Bob's console at once.
        alice.locator(f"#actions-{iid}").get_by_role("button", name="End consult").click()
        bob.locator(f"#actions-{iid}", has_text="The consult or conference has ended.").wait_for()
        bob.locator(f"#conversations a[data-iid='{iid}']").wait_for(state="detached")
        alice.locator(f"#actions-{iid} .collab-status").wait_for(state="detached")

        # A second consult becomes a transfer: Bob has the conversation and writes to Nora.
        alice.locator("details.tool summary", has_text="Consult an agent").click()
        form = alice.locator("form[data-collab-start=consult]")
        form.locator("select[name=agent_id]").select_option(label="Bob Okafor")
        form.get_by_role("button", name="Consult").click()
        # Bob's click on it is slow to come back: the page gets it only after the transfer.
        held: list = []
        bob.route(
            f"**/console/interactions/{iid}",
            lambda r: r.continue_() if held else held.append((r, r.fetch())),
        )
        _open_in_list(bob, iid)
        bob.locator(".collab-status", has_text="asked you for a consult").wait_for()
        alice.locator(f"#actions-{iid}").get_by_role(
            "button", name="Transfer to Bob Okafor"
        ).click()
        alice.locator(f"#actions-{iid}", has_text="moved to another agent").wait_for()
        bob.locator(f"#actions-{iid} textarea[name=reply]").wait_for()  # the live event
        bob.evaluate("iid => document.getElementById('conv-' + iid).dataset.before = 1", iid)
        route, consult_view = held[0]  # drawn while Bob was only consulted
        route.fulfill(response=consult_view)
        bob.locator(f"#conv-{iid}:not([data-before])").wait_for()
        bob.locator(f"#actions-{iid} textarea[name=reply]").wait_for()  # drawn again, fresh
        bob.unroute(f"**/console/interactions/{iid}")
        customer.locator("#transcript .cnotice", has_text="Bob has joined the chat.").wait_for()
        bob.locator(f"#actions-{iid} textarea[name=reply]").fill(
            "Bob here: a credit is on its way."
        )
        bob.get_by_role("button", name="Send reply").click()
        customer.locator("#transcript .cmsg.them", has_text="credit is on its way").wait_for()

        # The customer never saw any of the notes.
        transcript = customer.locator("#transcript").inner_text()
        for private in ("up to 20 euros", "Thanks, doing that", "Is a credit", "consult"):
            assert private not in transcript
        customer.reload()
        customer.locator("#transcript", has_text="credit is on its way").wait_for()
        assert "up to 20 euros" not in customer.locator("#transcript").inner_text()

        kinds = _query(
            db, "SELECT kind FROM controlevent WHERE interaction_id = ? ORDER BY id", iid
        )
        assert [k for (k,) in kinds] == ["consult", "consult_cancel", "consult", "consult_complete"]
        parts = _query(
            db,
            "SELECT u.username, s.role, s.ended_at IS NULL FROM interactionsegment s"
            " JOIN agent a ON a.id = s.agent_id JOIN user u ON u.id = a.user_id"
            " WHERE s.interaction_id = ? ORDER BY s.id",
            iid,
        )
        assert parts == [
            ("alice", "agent", 0),
            ("bob", "consult", 0),
            ("bob", "consult", 0),
            ("bob", "agent", 1),
        ]
        assert _query(db, "SELECT COUNT(*) FROM interaction WHERE id = ?", iid) == [(1,)]
        _close(bob, iid, late_redraws=True)
        alice.locator("#presence-select").select_option("offline")
    finally:
        for context in contexts:
            context.close()


def test_conference_two_agents_write_to_the_customer_then_one_leaves(
    collab_hub: dict, chromium
) -> None:
    hub, db = collab_hub["base"], collab_hub["db"]
    contexts = [chromium.new_context() for _ in range(3)]
    alice_ctx, bob_ctx, customer_ctx = contexts
    try:
        alice, customer, iid = _accepted_chat(hub, alice_ctx, customer_ctx, "Two questions")
        bob = _second_agent(bob_ctx, hub, iid)

        alice.locator("details.tool summary", has_text="Add an agent").click()
        form = alice.locator("form[data-collab-start=conference]")
        form.locator("select[name=agent_id]").select_option(label="Bob Okafor")
        form.get_by_role("button", name="Add to conversation").click()
        alice.locator(".collab-status", has_text="Bob Okafor is in the conversation").wait_for()
        _open_in_list(bob, iid)
        bob.locator(".collab-status", has_text="You are in this conversation with Alice").wait_for()
        bob.locator(f"#messages-{iid} .msg.in", has_text="Two questions").wait_for()

        # Capacity counts on both: each holds a web chat slot now.
        loads = _query(
            db,
            "SELECT u.username FROM interactionsegment s JOIN agent a ON a.id = s.agent_id"
            " JOIN user u ON u.id = a.user_id WHERE s.interaction_id = ? AND s.ended_at IS NULL"
            " ORDER BY s.id",
            iid,
        )
        assert loads == [("alice",), ("bob",)]

        chat_send(customer, "First: delivery times?")
        alice.locator(f"#messages-{iid} .msg.in", has_text="delivery times").wait_for()
        bob.locator(f"#messages-{iid} .msg.in", has_text="delivery times").wait_for()

        bob.locator(f"#actions-{iid} textarea[name=reply]").fill("Bob: two days.")
        bob.get_by_role("button", name="Send reply").click()
        customer.locator("#transcript .cmsg.them", has_text="Bob: two days.").wait_for()
        alice.locator(f"#messages-{iid} .msg.out", has_text="Bob: two days.").wait_for()

        alice.locator(f"#actions-{iid} textarea[name=reply]").fill("Alice: and returns are free.")
        alice.get_by_role("button", name="Send reply").click()
        customer.locator("#transcript .cmsg.them", has_text="returns are free").wait_for()
        bob.locator(f"#messages-{iid} .msg.out", has_text="returns are free").wait_for()

        # Bob leaves: Alice keeps the customer, and Bob's console drops the conversation.
        bob.locator(f"#actions-{iid}").get_by_role("button", name="Leave conversation").click()
        bob.locator(f"#conversations a[data-iid='{iid}']").wait_for(state="detached")
        bob.locator(f"#actions-{iid}", has_text="The consult or conference has ended.").wait_for()
        alice.locator(f"#actions-{iid} .collab-status").wait_for(state="detached")
        alice.locator(f"#messages-{iid} .msg.note", has_text="Bob Okafor left").wait_for()

        # Added again, then Alice leaves and Bob keeps the customer.
        alice.locator("details.tool summary", has_text="Add an agent").click()
        form = alice.locator("form[data-collab-start=conference]")
        form.locator("select[name=agent_id]").select_option(label="Bob Okafor")
        form.get_by_role("button", name="Add to conversation").click()
        _open_in_list(bob, iid)
        alice.locator(f"#actions-{iid}").get_by_role(
            "button", name="Leave (Bob Okafor keeps the customer)"
        ).click()
        alice.locator(f"#actions-{iid}", has_text="moved to another agent").wait_for()
        bob.locator(f"#actions-{iid}").get_by_role("button", name="End conversation").wait_for()
        chat_send(customer, "Thanks both")
        bob.locator(f"#messages-{iid} .msg.in", has_text="Thanks both").wait_for()
        assert "left" not in customer.locator("#transcript").inner_text()

        parts = _query(
            db,
            "SELECT u.username, s.role, s.end_reason FROM interactionsegment s"
            " JOIN agent a ON a.id = s.agent_id JOIN user u ON u.id = a.user_id"
            " WHERE s.interaction_id = ? ORDER BY s.id",
            iid,
        )
        assert parts == [
            ("alice", "agent", "transferred"),
            ("bob", "conference", "left"),
            ("bob", "conference", "took the conversation"),
            ("bob", "agent", None),
        ]
        _close(bob, iid)
        alice.locator("#presence-select").select_option("offline")
    finally:
        for context in contexts:
            context.close()


# The console's stream drops as a network failure drops it: closed, then its error
# handler, which reports the loss and connects again (htmx's SSE extension).
DROP_STREAM = """() => {
  const source = document.querySelector("[sse-connect]")["htmx-internal-data"].sseEventSource;
  source.close();
  source.onerror(new Event("error"));
}"""


def test_a_console_whose_stream_dropped_shows_what_came_meanwhile(collab_hub: dict, chromium):
    """The console's stream drops; the customer writes before it is back. Once it is, the
    open conversation shows the message it never got live."""
    hub = collab_hub["base"]
    alice_ctx, customer_ctx = contexts = [chromium.new_context() for _ in range(2)]
    try:
        alice, customer, iid = _accepted_chat(hub, alice_ctx, customer_ctx, "Are you there?")
        held: list = []  # the stream's reconnection waits until the customer has written
        alice.route("**/events?*", lambda r: r.continue_() if held else held.append(r))
        alice.evaluate(DROP_STREAM)
        alice.locator("body.sse-down").wait_for(state="attached")
        chat_send(customer, "Hello again, while you were away")
        customer.locator("#transcript", has_text="while you were away").wait_for()
        for _ in range(150):  # the extension connects again after its back-off
            if held:
                break
            alice.wait_for_timeout(100)
        assert held, "the console never connected its stream again"
        held[0].continue_()
        alice.unroute("**/events?*")
        alice.locator(f"#messages-{iid} .msg.in", has_text="while you were away").wait_for()
        assert alice.locator("body.sse-down").count() == 0
        _close(alice, iid)
    finally:
        for context in contexts:
            context.close()
