"""The agent's console in Debian Chromium against a real hub process: accepting with the
keyboard, a canned response with its variables filled in, a file the customer sees, the
shortcut overlay, switching conversations, and a reply that outlives its session."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.test_console_browser import TIMEOUT_MS, chat_send, go_ready, log_in, open_chat

pytestmark = pytest.mark.browser


def label_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def add_canned_response(context, base: str) -> None:
    """The admin writes a canned response for the General queue in the admin pages."""
    admin = log_in(context, base, "admin")
    admin.goto(f"{base}/admin/canned")
    admin.click("#new-canned")
    admin.fill("input[name=shortcut]", "parcel")
    admin.fill("input[name=title]", "Parcel found")
    admin.select_option("select[name=queue_id]", label="General")
    admin.fill(
        "textarea[name=body]",
        "Hello {{customer.first_name}}, {{agent.first_name}} from {{queue.name}} here: "
        "your parcel is found.",
    )
    admin.get_by_role("button", name="Save").click()
    admin.locator(".notice.ok", has_text="Saved canned responses").wait_for()
    admin.locator("td", has_text="/parcel").wait_for()


def composer_value(page) -> str:
    return page.input_value("#workspace form.composer textarea[name=reply]")


def assert_a_late_event_adds_no_second_copy(agent, message_id: str) -> None:
    """The view was rendered after the message was committed, and the stream's event for
    it comes after: the live append (the stream's out-of-band fragment) is dropped, and a
    new message in the same fragment is still appended."""
    shown = agent.evaluate(
        """id => {
            const msg = document.getElementById(id);
            const box = msg.parentElement;
            const fresh = msg.cloneNode(true);
            fresh.id = "m-999999999";
            htmx.swap(document.body, `<div hx-swap-oob="beforeend:#${box.id}">`
                + msg.outerHTML + fresh.outerHTML + "</div>", {swapStyle: "none"});
            return [document.querySelectorAll(`[id="${id}"]`).length,
                    document.querySelectorAll("#m-999999999").length];
        }""",
        message_id,
    )
    assert shown == [1, 1]
    agent.evaluate("document.getElementById('m-999999999').remove()")


def test_keyboard_accept_canned_response_and_a_file_reach_the_customer(hub: str, chromium):
    contexts = [chromium.new_context() for _ in range(5)]
    admin_ctx, agent_ctx, customer_ctx, second_ctx, third_ctx = contexts
    for ctx in contexts:
        ctx.set_default_timeout(TIMEOUT_MS)
    try:
        add_canned_response(admin_ctx, hub)
        agent = log_in(agent_ctx, hub, "alice")
        go_ready(agent)
        customer = open_chat(customer_ctx, hub)
        customer.fill("input[name=name]", "Nora Customer")
        chat_send(customer, "Where is my parcel?")

        agent.locator("#offers .offer", has_text="Nora Customer").wait_for()
        agent.keyboard.press("Alt+KeyA")  # accept the newest offer
        asked = agent.locator(".messages .msg.in", has_text="Where is my parcel?")
        asked.wait_for()
        assert_a_late_event_adds_no_second_copy(agent, asked.get_attribute("id"))
        # The composer has the focus: the agent types on.
        agent.wait_for_function("document.activeElement && document.activeElement.name === 'reply'")

        agent.keyboard.type("/parc")
        suggestion = agent.locator("#workspace .canned-item.active")
        suggestion.wait_for()
        assert "Parcel found" in suggestion.inner_text()
        agent.keyboard.press("Enter")  # insert the chosen response
        filled = "Hello Nora, Alice from General here: your parcel is found."
        agent.wait_for_function(
            "text => document.querySelector('#workspace textarea[name=reply]').value === text",
            arg=filled,
        )
        assert agent.locator("#workspace .canned-item").count() == 0  # the list closed
        picture = label_png()
        agent.set_input_files(
            "#workspace form.composer input[name=file]",
            files=[{"name": "label.png", "mimeType": "image/png", "buffer": picture}],
        )
        agent.keyboard.press("Control+Enter")  # send
        sent = agent.locator(".messages .msg.out", has_text="your parcel is found")
        sent.wait_for()
        sent.locator(".attachment", has_text="label.png").wait_for()
        assert composer_value(agent) == ""

        # The customer sees the text and the picture, live, and can open it.
        line = customer.locator("#transcript .cmsg.them", has_text=filled)
        line.wait_for()
        thumb = line.locator("img.thumb")
        thumb.wait_for()
        customer.wait_for_function(
            "img => img.complete && img.naturalWidth === 64", arg=thumb.element_handle()
        )
        download = customer.request.get(hub + thumb.get_attribute("src"))
        assert download.ok and download.body() == picture

        # "?" (not typing in a field) lists every shortcut; Escape closes the list.
        agent.evaluate("document.activeElement.blur()")
        agent.keyboard.press("?")
        overlay = agent.locator("#keys-help")
        overlay.wait_for(state="visible")
        for text in ("Ctrl+Enter", "Alt+A", "Alt+R", "Accept the newest offer", "conversation"):
            assert text in overlay.inner_text()
        agent.keyboard.press("Escape")
        overlay.wait_for(state="hidden")

        # A second customer: Alt+A again, then Alt+Up / Alt+Down move between the two.
        second = open_chat(second_ctx, hub)
        second.fill("input[name=name]", "Omar Second")
        chat_send(second, "Hello from Omar")
        agent.locator("#offers .offer", has_text="Omar Second").wait_for()
        agent.keyboard.press("Alt+KeyA")
        agent.locator("#workspace .conv-head", has_text="Omar Second").wait_for()
        agent.keyboard.press("Alt+ArrowUp")
        agent.locator("#workspace .conv-head", has_text="Nora Customer").wait_for()
        agent.keyboard.press("Alt+ArrowDown")
        agent.locator("#workspace .conv-head", has_text="Omar Second").wait_for()

        # A third customer's offer: Alt+R rejects it (whatever the router does next, that
        # offer is gone from the console).
        chat_send(second, "Still there?")  # keeps Omar's conversation busy; not an offer
        third = open_chat(third_ctx, hub)
        third.fill("input[name=name]", "Tara Third")
        chat_send(third, "Hi from Tara")
        offer = agent.locator("#offers .offer", has_text="Tara Third")
        offer.wait_for()
        offer_id = offer.get_attribute("id")
        agent.keyboard.press("Alt+KeyR")
        agent.locator(f"#{offer_id}").wait_for(state="detached")
        agent.locator("#workspace .conv-head", has_text="Omar Second").wait_for()
    finally:
        for ctx in contexts:
            ctx.close()


def test_the_session_ends_mid_reply_and_the_draft_survives_the_next_login(
    hub: str, chromium, tmp_path: Path
):
    agent_ctx, customer_ctx = chromium.new_context(), chromium.new_context()
    agent_ctx.set_default_timeout(TIMEOUT_MS)
    customer_ctx.set_default_timeout(TIMEOUT_MS)
    draft = "I am checking your order right now:\nit left our warehouse on Monday."
    try:
        agent = log_in(agent_ctx, hub, "alice")
        go_ready(agent)
        customer = open_chat(customer_ctx, hub)
        chat_send(customer, "My order is late")
        agent.locator("#offers .offer").wait_for()
        agent.get_by_role("button", name="Accept").click()
        agent.locator(".messages .msg.in", has_text="My order is late").wait_for()
        iid = agent.locator("#workspace .conv").get_attribute("data-iid")
        reply = agent.locator("#workspace form.composer textarea[name=reply]")
        reply.click()
        reply.press_sequentially(draft[:20])
        reply.fill(draft)

        # The hub forgets the session (as when it expires): the server-side files go.
        sessions = tmp_path / "var" / "sessions"
        removed = [path for path in sessions.iterdir() if path.is_file()]
        assert removed, "the hub keeps its sessions in files under its var dir"
        for path in removed:
            path.unlink()

        reply.press("Control+Enter")
        banner = agent.locator("#session-expired")
        banner.wait_for(state="visible")
        assert "Your session has ended" in banner.inner_text()
        assert "reply you were typing is kept" in banner.inner_text()
        assert agent.url.endswith("/console")  # the page and the text stay on screen
        assert reply.input_value() == draft
        assert "warehouse" not in customer.locator("#transcript").inner_text()

        banner.get_by_role("link", name="Log in again").click()
        agent.wait_for_url("**/login?next=*")
        agent.fill("input[name=username]", "alice")
        agent.fill("input[name=password]", "alice-pass")
        agent.click("button[type=submit]")
        agent.wait_for_url(f"**/console?interaction={iid}")
        restored = agent.locator(f"#conv-{iid} form.composer textarea[name=reply]")
        agent.locator(f"#conv-{iid} form.composer, #conv-{iid} .actions .notice").first.wait_for()
        if not restored.count():
            # The hub handed the conversation back when the session ended (presence follows
            # the session): the agent takes it again, and the draft comes back with it.
            go_ready(agent)
            agent.locator("#offers .offer").wait_for()
            agent.keyboard.press("Alt+KeyA")
        restored.wait_for()
        agent.wait_for_function(
            "([sel, text]) => document.querySelector(sel).value === text",
            arg=[f"#conv-{iid} form.composer textarea[name=reply]", draft],
        )
        agent.locator(f"#conv-{iid} .draft-note", has_text="unsent reply was kept").wait_for()

        restored.press("Control+Enter")
        customer.locator("#transcript .cmsg.them", has_text="left our warehouse").wait_for()
        agent.locator(".messages .msg.out", has_text="left our warehouse").wait_for()
        keys = agent.evaluate("Object.keys(localStorage).filter(k => k.startsWith('hub-draft:'))")
        assert keys == []  # sent: the draft is gone
        agent.reload()
        agent.locator(f"#conv-{iid} form.composer textarea[name=reply]").wait_for()
        assert agent.input_value(f"#conv-{iid} form.composer textarea[name=reply]") == ""
    finally:
        agent_ctx.close()
        customer_ctx.close()
