"""End to end in Debian Chromium: customer ↔ agent over web chat, the supervisor's
force not-ready, and customer HTML shown as text with no script running."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


# The two late draws of a conversation's actions that can come after the agent started
# filling them in, replayed: the "state" SSE event (the actions block drawn again, swapped in
# out of band) and a response drawing the whole workspace again. What the agent entered stays.
REPLAY_STATE_EVENT = """(iid) => {
  const el = document.getElementById("actions-" + iid);
  const html = el.outerHTML.replace('class="actions"', 'hx-swap-oob="true" class="actions"');
  htmx.swap(document.body, html, {swapStyle: "none"});
}"""
REPLAY_WORKSPACE = """(iid) => {
  document.getElementById("conv-" + iid).dataset.before = "redraw";
  return htmx.ajax("GET", "/console/interactions/" + iid, "#workspace");
}"""


def log_in(context, base: str, username: str, timeout_ms: int = TIMEOUT_MS):
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-pass")
    page.click("button[type=submit]")
    # Wait for the new page to finish loading, so htmx has wired its controls up.
    page.wait_for_url(lambda url: "/login" not in url)
    page.wait_for_load_state("load")
    return page


def go_ready(page) -> None:
    """Choose Ready in the presence widget, as an agent does after logging in.

    Once, with no retry: the change is posted by the ``#presence`` section, which htmx binds
    at page load, so a choice made while a live event swaps the widget is not lost.
    """
    page.locator("body[data-live]").wait_for(state="attached")  # the tab's stream has synced
    page.select_option("#presence-select", "ready")
    page.locator("#presence-state").filter(has_text="Ready").wait_for()


def open_chat(context, base: str):
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/chat")
    return page


def chat_send(page, text: str) -> None:
    page.fill("#chat-body", text)
    page.click("#chat-send")


def test_customer_writes_agent_accepts_replies_and_wraps_up(hub: str, chromium):
    agent_ctx, customer_ctx = (
        chromium.new_context(),
        chromium.new_context(viewport={"width": 420, "height": 720}),
    )
    agent_ctx.set_default_timeout(TIMEOUT_MS)
    try:
        agent = log_in(agent_ctx, hub, "alice")
        assert agent.url.endswith("/console")
        go_ready(agent)

        customer = open_chat(customer_ctx, hub)
        customer.fill("input[name=name]", "Nora Customer")
        chat_send(customer, "Hello, my parcel never arrived")
        customer.locator("#transcript .cmsg.me", has_text="my parcel never arrived").wait_for()

        offer = agent.locator("#offers .offer")
        offer.wait_for()
        assert re.search(r"\d+ s", offer.locator(".countdown").inner_text())
        assert "Nora Customer" in offer.inner_text()
        offer.get_by_role("button", name="Accept").click()
        agent.locator(".messages .msg.in", has_text="my parcel never arrived").wait_for()
        agent.locator(".customer", has_text="Create or link contact").wait_for()

        # A reload keeps the conversation on screen (and its live stream).
        agent.reload()
        agent.locator(".messages .msg.in", has_text="my parcel never arrived").wait_for()

        customer.locator("#chat-status", has_text="You are chatting with Alice").wait_for()
        customer.locator("#transcript .cnotice", has_text="Alice has joined the chat.").wait_for()

        agent.fill("textarea[name=reply]", "Sorry about that! Let me look it up.")
        agent.get_by_role("button", name="Send reply").click()
        agent.locator(".messages .msg.out", has_text="Let me look it up.").wait_for()
        # The customer sees the reply live, without a reload.
        customer.locator("#transcript .cmsg.them", has_text="Let me look it up.").wait_for()

        # A file that only claims to be an image is refused, and the page says why.
        customer.set_input_files(
            "input[name=file]",
            files=[{"name": "cat.png", "mimeType": "image/png", "buffer": b"not a picture"}],
        )
        customer.click("#chat-send")
        customer.locator("#toasts .toast", has_text="file type is not accepted").wait_for()
        customer.set_input_files("input[name=file]", files=[])

        agent.fill("textarea[name=reply]", "Half-typed draft")
        chat_send(customer, "Order 4711, thanks")
        agent.locator(".messages .msg.in", has_text="Order 4711").wait_for()
        # The customer's message arrived live without wiping what the agent was typing.
        assert agent.input_value("textarea[name=reply]") == "Half-typed draft"
        agent.fill("textarea[name=reply]", "")
        agent.locator("details.tool summary", has_text="Private note").click()
        agent.fill("textarea[name=note]", "Carrier lost it")
        agent.get_by_role("button", name="Add note").click()
        agent.locator(".messages .msg.note", has_text="Carrier lost it").wait_for()
        agent.screenshot(path="/tmp/console.png", full_page=True)
        customer.screenshot(path="/tmp/chat.png")

        agent.get_by_role("button", name="End conversation").click()
        wrapup = agent.locator("form.wrapup")
        wrapup.wait_for()
        wrapup.locator("select[name=disposition_id]").select_option(label="Resolved")
        wrapup.locator("textarea[name=notes]").fill("Reshipped order 4711")
        wrapup.locator("select[name=next]").select_option("not_ready:break")
        wrapup.get_by_role("button", name="Close conversation").click()
        agent.locator(".empty-workspace", has_text="Closed.").wait_for()
        agent.locator("#presence-state", has_text="Not ready").wait_for()

        customer.locator("#transcript .cnotice", has_text="The conversation has ended.").wait_for()
        assert "private" not in customer.locator("#transcript").inner_text().lower()
        assert "Carrier lost it" not in customer.content()
        # The transcript stays after a reload.
        customer.reload()
        customer.locator("#transcript", has_text="Let me look it up.").wait_for()
    finally:
        agent_ctx.close()
        customer_ctx.close()


def test_supervisor_sees_the_queue_and_forces_not_ready(hub: str, chromium):
    sup_ctx, agent_ctx, customer_ctx = (chromium.new_context() for _ in range(3))
    try:
        supervisor = log_in(sup_ctx, hub, "sam")
        assert supervisor.url.endswith("/supervisor")
        general = supervisor.locator("#queue-table tr[data-queue=General]")
        general.wait_for()

        customer = open_chat(customer_ctx, hub)
        chat_send(customer, "Is anybody there?")
        customer.locator("#leave-message").wait_for()  # nobody is logged in yet
        # The wallboard updates live: one customer waiting in General.
        general.locator("td.waiting", has_text="1").wait_for()

        agent = log_in(agent_ctx, hub, "bob")
        go_ready(agent)
        agent.locator("#offers .offer").wait_for()
        row = supervisor.locator("tr[data-agent='Bob Okafor']")
        row.locator(".presence-chip", has_text="ready").wait_for()

        row.get_by_role("button", name="Not ready…").click()
        panel = supervisor.locator("#action-panel")
        panel.locator("select[name=reason]").select_option("meeting")
        panel.get_by_role("button", name="Force not ready").click()
        panel.locator(".notice.ok", has_text="not ready").wait_for()

        # Bob's console shows it live, and his pending offer is withdrawn.
        agent.locator("#presence-state", has_text="Not ready").wait_for()
        agent.locator("#presence", has_text="meeting").wait_for()
        agent.locator("#offers", has_text="No offers right now.").wait_for()
        row.locator(".presence-chip", has_text="not ready: meeting").wait_for()

        row.get_by_role("button", name="Message…").click()
        panel.locator("textarea[name=text]").fill("Please join the huddle")
        panel.get_by_role("button", name="Send message").click()
        agent.locator(".popup", has_text="Please join the huddle").wait_for()
        supervisor.screenshot(path="/tmp/supervisor.png", full_page=True)

        # Force logout: the agent's tab is sent to the login page and the session is gone.
        supervisor.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Log out").click()
        agent.wait_for_url("**/login?reason=forced")
        agent.get_by_text("A supervisor ended your session.").wait_for()
        agent.goto(f"{hub}/console")
        assert "/login" in agent.url
    finally:
        for ctx in (sup_ctx, agent_ctx, customer_ctx):
            ctx.close()


def test_customer_html_is_shown_as_text_and_never_runs(hub: str, chromium):
    agent_ctx, customer_ctx = chromium.new_context(), chromium.new_context()
    payload = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
    try:
        agent = log_in(agent_ctx, hub, "carol")
        go_ready(agent)
        customer = open_chat(customer_ctx, hub)
        customer.fill("input[name=name]", "<b>Mallory</b>")
        chat_send(customer, payload)
        customer.locator(
            "#transcript .cmsg.me", has_text="<script>window.__pwned=1</script>"
        ).wait_for()

        offer = agent.locator("#offers .offer")
        offer.wait_for()
        assert "<b>Mallory</b>" in offer.inner_text()
        offer.get_by_role("button", name="Accept").click()
        shown = agent.locator(".messages .msg.in .body")
        shown.first.wait_for()
        assert shown.first.inner_text() == payload
        agent.locator(".conv-head h2", has_text="<b>Mallory</b>").wait_for()

        agent.fill("textarea[name=reply]", '<img src=y onerror="window.__pwned=3">hi')
        agent.get_by_role("button", name="Send reply").click()
        customer.locator("#transcript .cmsg.them", has_text="onerror").wait_for()

        for page in (agent, customer):
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert page.locator("img[src=x]").count() == 0
            assert page.locator("img[src=y]").count() == 0
    finally:
        agent_ctx.close()
        customer_ctx.close()
