"""Webhook mode through the real app: the Litestar route, the secret token header, 200 only
after commit, duplicates, and a reply out through the Bot API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import col, select

from channels.base import DeliveryStatus
from hub.app import create_app
from hub.services import Services
from hub.settings import Settings
from models import Direction, Inbox, Message
from tests.channels.telegram.botapi import CHAT, LocalBotApi, text_update
from tests.channels.telegram.conftest import TOKEN

SECRET = "s3cret-Token_for-webhooks"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture
async def client(
    services: Services,
    bot_api: LocalBotApi,
    telegram_inbox: Inbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[AsyncTestClient]:
    for key, value in {
        "HUB_TELEGRAM_TOKEN": TOKEN,
        "HUB_TELEGRAM_MODE": "webhook",
        "HUB_TELEGRAM_SECRET_TOKEN": SECRET,
        "HUB_TELEGRAM_API_BASE_URL": bot_api.url,
        "HUB_TELEGRAM_WEBHOOK_URL": "https://hub.example.org/webhooks/telegram/5",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HUB_SMS_SMPP_HOST", raising=False)
    monkeypatch.delenv("HUB_SMS_TWILIO_ACCOUNT_SID", raising=False)
    app = create_app(
        Settings(var_dir=tmp_path / "app-var", database_url=services.settings.database_url)
    )
    async with AsyncTestClient(app) as test_client:
        yield test_client


def url(inbox: Inbox) -> str:
    return f"/webhooks/telegram/{inbox.id}"


async def messages(services: Services) -> list[Message]:
    async with services.sessionmaker() as db:
        return list(
            (
                await db.exec(
                    select(Message)
                    .where(Message.direction == Direction.INBOUND)
                    .order_by(col(Message.id))
                )
            ).all()
        )


async def test_update_in_and_reply_out(
    services: Services, client: AsyncTestClient, bot_api: LocalBotApi, telegram_inbox: Inbox
) -> None:
    (set_webhook,) = bot_api.calls_to("setWebhook")
    assert set_webhook.params["secret_token"] == SECRET

    update = text_update(700001, 12, "Hello from Telegram")
    resp = await client.post(url(telegram_inbox), json=update, headers={HEADER: SECRET})
    assert resp.status_code == 200
    (stored,) = await messages(services)  # committed before the 200
    assert stored.body == "Hello from Telegram"
    assert stored.source_id == f"{CHAT['id']}:12"

    # Telegram retries when it missed our 200: stored once.
    again = await client.post(url(telegram_inbox), json=update, headers={HEADER: SECRET})
    assert again.status_code == 200
    assert len(await messages(services)) == 1

    # The app (and its bot) live on the test client's portal loop: reply from there.
    hub_services = client.app.state.services

    async def agent_replies() -> Message:
        return await hub_services.outbox.reply(stored.interaction_id, body="Hi Ana!", agent_id=None)

    reply = await asyncio.to_thread(client.blocking_portal.call, agent_replies)
    for _ in range(200):
        async with services.sessionmaker() as db:
            current = await db.get(Message, reply.id)
        if current.delivery_status != DeliveryStatus.PENDING:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.05)
    assert current.delivery_status == DeliveryStatus.SENT, current.status_detail  # type: ignore[union-attr]
    (call,) = bot_api.calls_to("sendMessage")
    assert (call.params["chat_id"], call.params["text"]) == (str(CHAT["id"]), "Hi Ana!")


async def test_refusals_say_why(
    services: Services, client: AsyncTestClient, telegram_inbox: Inbox
) -> None:
    spoofed = text_update(700002, 13, "spoofed")
    missing = await client.post(url(telegram_inbox), json=spoofed)
    assert missing.status_code == 403
    assert "header is missing" in missing.json()["detail"]
    wrong = await client.post(url(telegram_inbox), json=spoofed, headers={HEADER: "guess"})
    assert wrong.status_code == 403
    assert "header is wrong" in wrong.json()["detail"]
    assert await messages(services) == []

    garbage = await client.post(url(telegram_inbox), content=b"{not json", headers={HEADER: SECRET})
    assert garbage.status_code == 400
    other = await client.post("/webhooks/telegram/999", json=spoofed, headers={HEADER: SECRET})
    assert other.status_code == 404
    assert "no Telegram bot serves inbox 999" in other.json()["detail"]


async def test_commit_failure_is_500_so_telegram_retries(
    services: Services, client: AsyncTestClient, telegram_inbox: Inbox
) -> None:
    async with services.sessionmaker() as db:
        inbox = await db.get(Inbox, telegram_inbox.id)
        inbox.active = False  # type: ignore[union-attr]
        db.add(inbox)
        await db.commit()
    update = text_update(700003, 14, "are you there?")
    resp = await client.post(url(telegram_inbox), json=update, headers={HEADER: SECRET})
    assert resp.status_code == 500
    assert await messages(services) == []


async def test_a_polling_bot_takes_no_webhook_posts(
    services: Services,
    bot_api: LocalBotApi,
    telegram_inbox: Inbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUB_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("HUB_TELEGRAM_MODE", "polling")
    monkeypatch.setenv("HUB_TELEGRAM_API_BASE_URL", bot_api.url)
    monkeypatch.setenv("HUB_TELEGRAM_POLL_TIMEOUT", "1")
    app = create_app(
        Settings(var_dir=tmp_path / "app-var", database_url=services.settings.database_url)
    )
    async with AsyncTestClient(app) as polling_client:
        resp = await polling_client.post(
            url(telegram_inbox), json=text_update(700009, 19, "forged"), headers={HEADER: ""}
        )
    assert resp.status_code == 404
    assert "long polling" in resp.json()["detail"]
    assert await messages(services) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"update_id": "7"}, "no integer update_id"),
        ({**text_update(700010, 20, "x"), "message": [1, 2]}, "message is not an object"),
        (
            {"update_id": 700011, "message": {**text_update(0, 21, "x")["message"], "chat": "x"}},
            "message.chat.id",
        ),
        (
            {"update_id": 700012, "message": {**text_update(0, 22, "x")["message"], "text": 5}},
            "message.text is not a string",
        ),
        (
            {"update_id": 700013, "message": {**text_update(0, 23, "x")["message"], "photo": "x"}},
            "wrong type or shape",
        ),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
        (
            b'{"update_id": 700014, "message": ' + b'{"a":' * 20_000 + b"1" + b"}" * 20_001,
            "nested too deeply",
        ),
    ],
)
async def test_bad_updates_get_400_with_a_reason_and_the_hub_keeps_serving(
    services: Services,
    client: AsyncTestClient,
    telegram_inbox: Inbox,
    body: dict | bytes,
    reason: str,
) -> None:
    """Input that will never be valid is a 4xx: a 5xx would make Telegram send it forever."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = await client.post(
        url(telegram_inbox),
        content=content,
        headers={HEADER: SECRET, "content-type": "application/json"},
    )
    assert resp.status_code == 400, resp.text
    assert reason in resp.json()["detail"]
    assert await messages(services) == []
    ok = await client.post(
        url(telegram_inbox), json=text_update(700099, 99, "still here"), headers={HEADER: SECRET}
    )
    assert ok.status_code == 200
