"""A supervisor on a web chat: a whisper only the agent sees, live, and a barge that
reaches the customer's chat page; both audited. Real hub, Chromium for all three."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.e2e.test_console_browser import (
    REPLAY_STATE_EVENT,
    chat_send,
    go_ready,
    log_in,
    open_chat,
)

pytestmark = [pytest.mark.browser]


def test_supervisor_whispers_to_the_agent_and_barges_into_a_web_chat(
    hub: str, chromium, tmp_path: Path
) -> None:
    contexts = [chromium.new_context() for _ in range(3)]
    agent_ctx, customer_ctx, sam_ctx = contexts
    try:
        agent = log_in(agent_ctx, hub, "alice")
        go_ready(agent)
        customer = open_chat(customer_ctx, hub)
        customer.fill("input[name=name]", "Nora Customer")
        chat_send(customer, "Can I get a refund?")
        offer = agent.locator("#offers .offer")
        offer.wait_for()
        offer.get_by_role("button", name="Accept").click()
        agent.locator(".messages .msg.in", has_text="Can I get a refund?").wait_for()
        iid = int(agent.locator(".conv").first.get_attribute("data-iid") or 0)

        sam = log_in(sam_ctx, hub, "sam")
        sam.goto(f"{hub}/supervisor")
        sam.locator(f"#work-row-{iid} [data-open='{iid}']").click()
        sam.locator(".messages .msg.in", has_text="Can I get a refund?").wait_for()

        whisper = sam.locator("form[data-supervise=whisper]")
        whisper.locator("textarea").fill("Offer store credit <first>")
        sam.evaluate(REPLAY_STATE_EVENT, iid)  # a late redraw keeps what he wrote
        whisper.get_by_role("button", name="Whisper to agent").click()
        sam.get_by_text("Whispered to the agent.").wait_for()
        # the agent sees it live, escaped; the customer never does
        agent.locator(
            f"#messages-{iid}", has_text="Whisper from Sam Supervisor: Offer store credit <first>"
        ).wait_for()

        barge = sam.locator("form[data-supervise=barge]")
        barge.locator("textarea").fill("Hello Nora, a supervisor here.")
        barge.get_by_role("button", name="Write to customer").click()
        customer.locator("#transcript .cmsg.them", has_text="a supervisor here").wait_for()
        agent.locator(f"#messages-{iid}", has_text="Hello Nora, a supervisor here.").wait_for()
        assert "store credit" not in customer.locator("#transcript").inner_text()

        db = tmp_path / "var" / "hub.sqlite3"  # the hub fixture's database
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            actions = conn.execute(
                "SELECT action FROM auditentry WHERE entity = 'interaction' AND entity_id = ?"
                " ORDER BY id",
                (str(iid),),
            ).fetchall()
        assert actions == [("chat.whisper",), ("chat.barge",)]
    finally:
        for context in contexts:
            context.close()
