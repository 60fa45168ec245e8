"""Files from agents in the running hub, in Debian Chromium: a picture on a Telegram reply
reaches the Bot API as a photo, and a PDF on a fax reply is previewed and faxed as pages
after the reply's text (in the outgoing fax spool)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageSequence

from tests.channels.fax.pages import FINE, page, tiff
from tests.channels.telegram.botapi import LocalBotApi, text_update
from tests.e2e.hub_process import hub_server
from tests.e2e.test_console_browser import (
    REPLAY_STATE_EVENT,
    REPLAY_WORKSPACE,
    TIMEOUT_MS,
    go_ready,
    log_in,
)
from tests.e2e.test_console_keys import label_png
from tests.e2e.test_four_channels import inbox_ids
from tests.web.test_reply_attachments import dark_share, pdf_with_marks

pytestmark = pytest.mark.browser

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TELEGRAM_SECRET = "e2e-telegram-files"
FAX_SECRET = "e2e-fax-files"


@pytest.fixture
def bot_api() -> Iterator[LocalBotApi]:
    api = LocalBotApi(BOT_TOKEN).start()
    try:
        yield api
    finally:
        api.stop()


def test_agent_sends_a_picture_by_telegram_and_a_pdf_by_fax(
    tmp_path: Path, seeded_db: Path, chromium, bot_api: LocalBotApi
) -> None:
    inboxes = inbox_ids(seeded_db)
    var_dir = tmp_path / "var"
    env = {
        "HUB_TELEGRAM_TOKEN": BOT_TOKEN,
        "HUB_TELEGRAM_MODE": "webhook",
        "HUB_TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
        "HUB_TELEGRAM_API_BASE_URL": bot_api.url,
        "HUB_FAX_UPLOAD_SECRET": FAX_SECRET,
        "HUB_FAX_SENDFAX": "",
    }
    with hub_server(var_dir, seeded_db, **env) as (hub, _process):
        context = chromium.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        try:
            agent = log_in(context, hub, "alice")
            go_ready(agent)

            # Telegram: the picture goes as a photo, then the text.
            update = httpx.post(
                f"{hub}/webhooks/telegram/{inboxes['telegram']}",
                json=text_update(910001, 61, "Can you send me the label?"),
                headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
                timeout=15,
            )
            assert update.status_code == 200, update.text
            agent.locator("#offers .offer", has_text="telegram").wait_for()
            agent.keyboard.press("Alt+KeyA")
            conv = agent.locator("#workspace .conv")
            conv.locator(".messages .msg.in", has_text="send me the label").wait_for()
            picture = label_png()
            conv.locator("textarea[name=reply]").fill("Here is your label.")
            conv.locator("input[name=file]").set_input_files(
                files=[{"name": "label.png", "mimeType": "image/png", "buffer": picture}]
            )
            conv.locator("textarea[name=reply]").press("Control+Enter")
            sent = conv.locator(".messages .msg.out", has_text="Here is your label.")
            sent.locator(".status", has_text="sent").wait_for()
            sent.locator(".attachment", has_text="label.png").wait_for()
            (photo,) = bot_api.calls_to("sendPhoto")
            assert photo.files["photo"] == ("label.png", picture)
            assert [c.params["text"] for c in bot_api.calls_to("sendMessage")] == [
                "Here is your label."
            ]

            # Fax: the customer's fax arrives through the gateway upload API.
            fax = httpx.post(
                f"{hub}/webhooks/fax/{inboxes['fax']}",
                headers={"X-Fax-Secret": FAX_SECRET},
                files={
                    "file": ("fax.tif", tiff([(page(["Please fax the form"]), FINE)]), "image/tiff")
                },
                data={"from": "+14155550190", "id": "e2e-fax-files-1"},
                timeout=60,
            )
            assert fax.status_code == 201, fax.text
            agent.locator("#offers .offer", has_text="fax").wait_for()
            agent.keyboard.press("Alt+KeyA")
            conv.locator(".conv-head .chip", has_text=re.compile(r"^fax$")).wait_for()
            conv.locator("textarea[name=reply]").fill("The form is attached.")
            conv.locator("input[name=file]").set_input_files(
                files=[
                    {"name": "form.pdf", "mimeType": "application/pdf", "buffer": pdf_with_marks()}
                ]
            )
            # A late redraw of the conversation (its "state" event, a workspace response)
            # keeps the reply and the file the agent chose (CI: the accept's event came after
            # the file was picked, and the preview then had no PDF in it).
            iid = int(conv.get_attribute("data-iid"))
            agent.evaluate(REPLAY_STATE_EVENT, iid)
            agent.evaluate(REPLAY_WORKSPACE, iid)
            agent.locator(f"#conv-{iid}:not([data-before])").wait_for()
            assert conv.locator("textarea[name=reply]").input_value() == "The form is attached."
            assert conv.locator("input[name=file]").evaluate("f => f.files.length") == 1
            conv.get_by_role("button", name="Preview fax pages").click()
            preview = conv.locator("[id^=fax-preview-] figure")
            preview.nth(3).wait_for()  # cover, the text, the PDF's two pages
            assert preview.count() == 4
            assert "4/4" in preview.nth(3).inner_text()
            conv.get_by_role("button", name="Send fax").click()
            faxed = conv.locator(".messages .msg.out", has_text="The form is attached.")
            faxed.locator(".status", has_text="sent").wait_for()

            outgoing = var_dir / "fax" / "outgoing"
            deadline = time.monotonic() + 15
            while not list(outgoing.glob("*.json")) and time.monotonic() < deadline:
                time.sleep(0.05)
            (rendered,) = outgoing.glob("*.tif")
            with Image.open(rendered) as document:
                pages = [frame.copy() for frame in ImageSequence.Iterator(document)]
            assert len(pages) == 4
            assert dark_share(pages[2], (0.15, 0.08, 0.85, 0.25)) > 0.9  # the PDF's page 1
            assert dark_share(pages[3], (0.15, 0.75, 0.85, 0.92)) > 0.9  # and its page 2
        finally:
            context.close()
