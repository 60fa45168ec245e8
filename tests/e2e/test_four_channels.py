"""The issue's acceptance check, end to end in Debian Chromium: one agent sees customers on
four channels (web chat, email, SMS, Telegram) in one console and answers each, and every
answer leaves through its own channel. A fifth, fax (an upload from a fax gateway), comes
along as a bonus.

The hub is a real process (``hub_server``) with its channels switched on by ``HUB_*``
settings; what lies beyond the hub is played by the channel tests' local stand-ins: a real
SMTP server (aiosmtpd, the email tests' ``Sink``) as the outbound relay, a server speaking
Twilio's REST ``Messages.json`` shape, and one speaking the Telegram Bot API wire format.
Customers come in the way they would in production: a browser on ``/chat``, mail over SMTP to
the hub's listener, a signed Twilio webhook, a Telegram webhook with the secret header, and
a TIFF posted to the fax upload API; the fax reply is checked in the outgoing fax spool.
"""

from __future__ import annotations

import json
import re
import smtplib
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

import httpx
import pytest
from aiosmtpd.controller import Controller

from channels.sms.twilio import signature
from tests.channels.email.conftest import Sink
from tests.channels.email.helpers import customer_mail
from tests.channels.fax.pages import FINE, page, tiff
from tests.channels.sms.twilio_api import LocalTwilio
from tests.channels.telegram.botapi import CHAT, LocalBotApi, text_update
from tests.e2e.hub_process import free_port, hub_server
from tests.e2e.test_console_browser import go_ready, log_in, open_chat
from tests.support import require_tool

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000
T = TypeVar("T")

TWILIO_SID, TWILIO_TOKEN = "AC0123456789abcdef0123456789abcdef", "f00dfeedf00dfeedf00dfeedf00dfeed"
HUB_NUMBER, CUSTOMER_NUMBER = "+15550001000", "+15551234567"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TELEGRAM_SECRET = "e2e-telegram-secret"
CUSTOMER_MAIL = "carla@customer.test"
CUSTOMER_MESSAGE_ID = "<e2e-four-channels-1@customer.test>"
FAX_SECRET = "e2e-fax-secret"
FAX_NUMBER = "+14155550190"


def eventually(check: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Poll ``check`` until it returns something truthy; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {timeout} s: {what}")
        time.sleep(0.05)


@pytest.fixture
def smtp_sink() -> Iterator[Sink]:
    """The email tests' Sink, served by aiosmtpd's threaded controller (its own loop), so it
    runs beside Playwright's sync API."""
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def twilio_api() -> Iterator[LocalTwilio]:
    api = LocalTwilio(TWILIO_SID, TWILIO_TOKEN).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def bot_api() -> Iterator[LocalBotApi]:
    api = LocalBotApi(BOT_TOKEN).start()
    try:
        yield api
    finally:
        api.stop()


def inbox_ids(database: Path) -> dict[str, int]:
    """Channel kind → id of its seeded inbox (the webhook URLs name the inbox)."""
    with sqlite3.connect(database) as db:
        return {kind: id_ for id_, kind in db.execute("SELECT id, kind FROM inbox ORDER BY id")}


def test_agent_answers_every_channel_in_one_console(
    tmp_path: Path,
    seeded_db: Path,
    chromium,
    smtp_sink: Sink,
    twilio_api: LocalTwilio,
    bot_api: LocalBotApi,
) -> None:
    tesseract = require_tool("tesseract")  # the hub OCRs faxes; we read the sent one
    inboxes = inbox_ids(seeded_db)
    var_dir = tmp_path / "var"
    smtp_port = free_port()
    env = {
        # email: our SMTP listener in, the sink as the relay out
        "HUB_EMAIL_LISTEN": "1",
        "HUB_EMAIL_BIND": "127.0.0.1",
        "HUB_EMAIL_PORT": str(smtp_port),
        "HUB_EMAIL_HOSTNAME": "hub.test",
        "HUB_EMAIL_DOMAINS": "example.com",
        "HUB_EMAIL_ROUTES": "support=Support email",
        "HUB_EMAIL_RELAY_HOST": "127.0.0.1",
        "HUB_EMAIL_RELAY_PORT": str(smtp_sink.port),
        "HUB_EMAIL_BACKOFF_SECONDS": "0.1",
        # SMS through the Twilio-shaped provider (and no SMPP account)
        "HUB_SMS_SMPP_HOST": "",
        "HUB_SMS_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "HUB_SMS_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "HUB_SMS_TWILIO_BASE_URL": twilio_api.url,
        "HUB_SMS_TWILIO_FROM": HUB_NUMBER,
        # Telegram in webhook mode against the local Bot API
        "HUB_TELEGRAM_TOKEN": BOT_TOKEN,
        "HUB_TELEGRAM_MODE": "webhook",
        "HUB_TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
        "HUB_TELEGRAM_API_BASE_URL": bot_api.url,
        # fax: the gateway upload API in; replies go to <var>/fax/outgoing (no sendfax)
        "HUB_FAX_UPLOAD_SECRET": FAX_SECRET,
        "HUB_FAX_SENDFAX": "",
    }
    with hub_server(var_dir, seeded_db, **env) as (hub, _process):
        agent_ctx = chromium.new_context()
        customer_ctx = chromium.new_context(viewport={"width": 420, "height": 720})
        agent_ctx.set_default_timeout(TIMEOUT_MS)
        customer_ctx.set_default_timeout(TIMEOUT_MS)
        try:
            agent = log_in(agent_ctx, hub, "alice")
            go_ready(agent)

            # Five customers, five channels, all at once.
            chat = open_chat(customer_ctx, hub)
            chat.fill("input[name=name]", "Wendy Webchat")
            chat.fill("#chat-body", "Web chat: where is my parcel?")
            chat.click("#chat-send")
            chat.locator("#transcript .cmsg.me", has_text="where is my parcel?").wait_for()

            mail = customer_mail(
                "Invoice 88 is wrong",
                "Email: invoice 88 charges me twice.",
                message_id=CUSTOMER_MESSAGE_ID,
                sender=f"Carla Customer <{CUSTOMER_MAIL}>",
                to="support@example.com",
            )
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=15) as smtp:
                refused = smtp.send_message(
                    mail, from_addr=CUSTOMER_MAIL, to_addrs=["support@example.com"]
                )
            assert refused == {}

            sms_path = f"/webhooks/sms/twilio/{inboxes['sms']}"
            sms_form = {
                "MessageSid": "SM" + "e" * 32,
                "SmsSid": "SM" + "e" * 32,
                "AccountSid": TWILIO_SID,
                "From": CUSTOMER_NUMBER,
                "To": HUB_NUMBER,
                "Body": "SMS: can I change my delivery address?",
                "NumMedia": "0",
                "NumSegments": "1",
                "SmsStatus": "received",
                "ApiVersion": "2010-04-01",
            }
            sms = httpx.post(
                hub + sms_path,
                content=urlencode(sms_form),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature(TWILIO_TOKEN, hub + sms_path, sms_form.items()),
                },
                timeout=15,
            )
            assert sms.status_code == 200, sms.text

            telegram = httpx.post(
                f"{hub}/webhooks/telegram/{inboxes['telegram']}",
                json=text_update(900001, 41, "Telegram: is the shop open on Sunday?"),
                headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
                timeout=15,
            )
            assert telegram.status_code == 200, telegram.text

            fax = httpx.post(
                f"{hub}/webhooks/fax/{inboxes['fax']}",
                headers={"X-Fax-Secret": FAX_SECRET},
                files={
                    "file": (
                        "fax.tif",
                        tiff([(page(["Fax: please send the warranty form"]), FINE)]),
                        "image/tiff",
                    )
                },
                data={"from": FAX_NUMBER, "id": "e2e-fax-1"},
                timeout=60,
            )
            assert fax.status_code == 201, fax.text

            # One console: an offer from each channel, each labelled with its channel.
            offers = agent.locator("#offers .offer")
            for channel in ("webchat", "email", "sms", "telegram", "fax"):
                offer_for(agent, channel).wait_for()
            assert offers.count() == 5

            replies = {
                "webchat": ("where is my parcel?", "Web chat reply: it leaves today."),
                "email": ("charges me twice", "Email reply: refund for invoice 88 is on its way."),
                "sms": ("change my delivery address", "SMS reply: yes, send me the new one."),
                "telegram": ("open on Sunday", "Telegram reply: yes, 10 to 16."),
                "fax": ("warranty form", "Fax reply: the warranty form is enclosed."),
            }
            for channel, (inbound, reply) in replies.items():
                offer_for(agent, channel).get_by_role("button", name="Accept").click()
                conv = agent.locator("#workspace .conv")
                conv.locator(".conv-head .chip", has_text=exact(channel)).wait_for()
                conv.locator(".messages .msg.in", has_text=inbound).wait_for()
                conv.locator("textarea[name=reply]").fill(reply)
                if channel == "fax":
                    # The preview swaps into its own box (it must not inherit the
                    # composer's hx-swap="none"): a cover and the reply's page.
                    conv.get_by_role("button", name="Preview fax pages").click()
                    # rendered on the fax channel's worker pool: on a loaded CI machine
                    # (both xdist workers busy) it once took over 15 s
                    conv.locator("[id^=fax-preview-] img").nth(1).wait_for(timeout=60_000)
                # The send button's label depends on the channel; it is the composer's submit.
                conv.locator("form.composer button[type=submit]").click()
                sent = conv.locator(".messages .msg.out", has_text=reply)
                # The agent sees the channel take it (the status updates live).
                sent.locator(".status", has_text=re.compile(r"^(sent|delivered)$")).wait_for()

            # All five are the agent's conversations, side by side in the one list.
            held = agent.locator("#conversations li")
            for channel in replies:
                held.filter(has=agent.locator(".chip", has_text=exact(channel))).wait_for()
            assert held.count() == 5
            assert agent.locator("#offers", has_text="No offers right now.").is_visible()
            agent.screenshot(path="/tmp/four-channels-console.png", full_page=True)

            # Each answer reached the customer through its own channel.
            chat.locator("#transcript .cmsg.them", has_text=replies["webchat"][1]).wait_for()

            def reply_mail():
                for envelope, message in list(smtp_sink.received):
                    plain = message.get_body(("plain",))
                    if plain is not None and replies["email"][1] in plain.get_content():
                        return envelope, message
                return None

            envelope, message = eventually(reply_mail, "the email reply reached the relay")
            assert envelope.rcpt_tos == [CUSTOMER_MAIL]
            assert CUSTOMER_MAIL in message["To"]
            assert message["In-Reply-To"] == CUSTOMER_MESSAGE_ID
            assert CUSTOMER_MESSAGE_ID in message["References"]
            assert message["Subject"].startswith("Re: Invoice 88 is wrong")  # + [#reference]

            sent_sms = eventually(
                lambda: [m for m in twilio_api.sent if m["Body"] == replies["sms"][1]],
                "the SMS reply reached the provider's Messages.json",
            )
            assert [(m["To"], m["From"]) for m in sent_sms] == [(CUSTOMER_NUMBER, HUB_NUMBER)]

            sent_telegram = eventually(
                lambda: [
                    c.params
                    for c in bot_api.calls_to("sendMessage")
                    if c.params.get("text") == replies["telegram"][1]
                ],
                "the Telegram reply reached the Bot API's sendMessage",
            )
            assert [int(p["chat_id"]) for p in sent_telegram] == [CHAT["id"]]

            outgoing = var_dir / "fax" / "outgoing"
            (sidecar,) = eventually(
                lambda: list(outgoing.glob("*.json")), "the fax reply reached the outgoing spool"
            )
            sent_fax = json.loads(sidecar.read_text())
            assert sent_fax["to"] == FAX_NUMBER
            rendered = outgoing / sent_fax["file"]
            text = subprocess.run(
                [tesseract, str(rendered), "stdout"],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
            assert "warranty form is enclosed" in " ".join(text.split()), text
        finally:
            agent_ctx.close()
            customer_ctx.close()


def exact(text: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(text)}\s*$")


def offer_for(page, channel: str):
    return page.locator("#offers .offer").filter(
        has=page.locator(".offer-head .chip", has_text=exact(channel))
    )
