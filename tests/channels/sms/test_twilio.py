"""The Twilio-compatible provider through the real app: signed webhooks in (200 after
commit, 403 with a reason), replies out through the REST shape, status callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import col, select

from channels.base import DeliveryStatus
from channels.sms.mo import MoText
from channels.sms.settings import SmsSettings
from channels.sms.smpp_channel import SmppChannel
from channels.sms.smpp_client import SmppConfig
from channels.sms.twilio import TwilioChannel, signature, valid_signature
from hub.app import create_app
from hub.services import Services
from hub.settings import Settings
from models import Direction, Inbox, Message
from tests.channels.sms.twilio_api import INVALID_TO, LocalTwilio

SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "f00dfeedf00dfeedf00dfeedf00dfeed"
PUBLIC = "https://hub.example.org"


def test_signature_matches_twilios_documented_example() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signature("12345", url, params.items()) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert valid_signature("12345", url, list(params.items()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not valid_signature("12345", url, list(params.items()), "RSOYDt4T1cUTdK1PDd93/VVr8B9=")
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert valid_signature("12345", with_port, list(params.items()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


@pytest.fixture
def twilio_api() -> Iterator[LocalTwilio]:
    api = LocalTwilio(SID, TOKEN).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
async def client(
    services: Services,
    twilio_api: LocalTwilio,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[AsyncTestClient]:
    for key, value in {
        "HUB_SMS_TWILIO_ACCOUNT_SID": SID,
        "HUB_SMS_TWILIO_AUTH_TOKEN": TOKEN,
        "HUB_SMS_TWILIO_BASE_URL": twilio_api.url,
        "HUB_SMS_TWILIO_FROM": "+15550001000",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HUB_SMS_SMPP_HOST", raising=False)
    monkeypatch.delenv("HUB_TELEGRAM_TOKEN", raising=False)
    app = create_app(
        Settings(
            var_dir=services.settings.var_dir,
            database_url=services.settings.database_url,
            public_url=PUBLIC,
        )
    )
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def post_signed(
    client: AsyncTestClient, path: str, form: dict[str, str], token: str = TOKEN
) -> object:
    body = urlencode(form)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature(token, PUBLIC + path, form.items()),
    }
    return await client.post(path, content=body, headers=headers)


def inbound_form(sid: str, body: str, **extra: str) -> dict[str, str]:
    return {
        "ToCountry": "US",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": "+15550001000",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": SID,
        "From": "+15551234567",
        "ApiVersion": "2010-04-01",
        **extra,
    }


async def inbound(services: Services) -> list[Message]:
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


async def test_inbound_reply_and_status_callback(
    services: Services, client: AsyncTestClient, twilio_api: LocalTwilio, sms_inbox: Inbox
) -> None:
    path = f"/webhooks/sms/twilio/{sms_inbox.id}"
    form = inbound_form("SM" + "a" * 32, "Is my order shipped?")
    resp = await post_signed(client, path, form)
    assert resp.status_code == 200  # type: ignore[attr-defined]
    assert "<Response></Response>" in resp.text  # type: ignore[attr-defined]
    (stored,) = await inbound(services)
    assert (stored.body, stored.source_id) == ("Is my order shipped?", "SM" + "a" * 32)

    again = await post_signed(client, path, form)  # the provider retried
    assert again.status_code == 200  # type: ignore[attr-defined]
    assert len(await inbound(services)) == 1

    hub = client.app.state.services

    async def agent_replies() -> Message:
        return await hub.outbox.reply(stored.interaction_id, body="Yes, today.", agent_id=None)

    reply = await asyncio.to_thread(client.blocking_portal.call, agent_replies)
    for _ in range(200):
        async with services.sessionmaker() as db:
            current = await db.get(Message, reply.id)
        if current.delivery_status != DeliveryStatus.PENDING:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.05)
    assert current.delivery_status == DeliveryStatus.SENT, current.status_detail  # type: ignore[union-attr]
    (sent,) = twilio_api.sent
    assert sent == {
        "To": "+15551234567",
        "From": "+15550001000",
        "Body": "Yes, today.",
        "StatusCallback": f"{PUBLIC}/webhooks/sms/twilio/{sms_inbox.id}/status",
    }
    sid = current.source_id  # type: ignore[union-attr]
    assert sid and sid.startswith("SM")

    status_path = f"/webhooks/sms/twilio/{sms_inbox.id}/status"
    for status in ("sent", "delivered"):
        callback = {"MessageSid": sid, "MessageStatus": status, "AccountSid": SID}
        resp = await post_signed(client, status_path, callback)
        assert resp.status_code == 200  # type: ignore[attr-defined]
    async with services.sessionmaker() as db:
        final = await db.get(Message, reply.id)
    assert final.delivery_status == DeliveryStatus.DELIVERED  # type: ignore[union-attr]


async def test_mms_media_is_fetched_with_the_account_credentials(
    services: Services, client: AsyncTestClient, twilio_api: LocalTwilio, sms_inbox: Inbox
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"pixels" * 10
    twilio_api.media["ME1"] = ("image/png", png)
    form = inbound_form(
        "SM" + "b" * 32,
        "",
        NumMedia="1",
        MediaUrl0=f"{twilio_api.url}/2010-04-01/Accounts/{SID}/Messages/SMb/Media/ME1",
        MediaContentType0="image/png",
    )
    resp = await post_signed(client, f"/webhooks/sms/twilio/{sms_inbox.id}", form)
    assert resp.status_code == 200  # type: ignore[attr-defined]
    (stored,) = await inbound(services)
    assert stored.content_type == "image"
    assert services.attachments.get(stored.attachments[0]["sha256"]) == png


async def test_bad_signature_is_403_with_a_reason(
    services: Services, client: AsyncTestClient, sms_inbox: Inbox
) -> None:
    path = f"/webhooks/sms/twilio/{sms_inbox.id}"
    form = inbound_form("SM" + "c" * 32, "spoofed")
    unsigned = await client.post(
        path, content=urlencode(form), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert unsigned.status_code == 403
    assert "header is missing" in unsigned.text
    forged = await post_signed(client, path, form, token="not-the-token")
    assert forged.status_code == 403  # type: ignore[attr-defined]
    assert "does not match" in forged.text  # type: ignore[attr-defined]
    tampered = dict(form, Body="send the refund elsewhere")
    body = urlencode(tampered)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature(TOKEN, PUBLIC + path, form.items()),
    }
    assert (await client.post(path, content=body, headers=headers)).status_code == 403
    assert await inbound(services) == []


async def test_provider_error_fails_the_reply_with_its_message(
    services: Services, client: AsyncTestClient, sms_inbox: Inbox
) -> None:
    form = inbound_form("SM" + "d" * 32, "hi", From=INVALID_TO)
    assert (
        await post_signed(client, f"/webhooks/sms/twilio/{sms_inbox.id}", form)
    ).status_code == 200  # type: ignore[attr-defined]
    (stored,) = await inbound(services)
    hub = client.app.state.services

    async def agent_replies() -> Message:
        return await hub.outbox.reply(stored.interaction_id, body="hello", agent_id=None)

    reply = await asyncio.to_thread(client.blocking_portal.call, agent_replies)
    for _ in range(200):
        async with services.sessionmaker() as db:
            current = await db.get(Message, reply.id)
        if current.delivery_status != DeliveryStatus.PENDING:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.05)
    assert current.delivery_status == DeliveryStatus.FAILED  # type: ignore[union-attr]
    assert "21211" in (current.status_detail or "")  # type: ignore[union-attr]


async def test_smpp_and_twilio_from_one_number_reach_one_contact(
    services: Services, sms_inbox: Inbox
) -> None:
    """E.164 normalization: a national SMPP number and Twilio's +E.164 are one customer."""
    smpp = SmppChannel(
        services.ingest,
        sms_inbox.id,
        SmppConfig("127.0.0.1", 1, "x", "y"),  # type: ignore[arg-type]
        default_region="GB",
    )
    national = MoText("07700 900123", "1000", "hello", 0, "d1", None, 1)
    via_smpp = await services.ingest.ingest(smpp.inbound_message(national))
    twilio = TwilioChannel(services.ingest, sms_inbox.id, SmsSettings())  # type: ignore[arg-type]
    try:
        message = await twilio.inbound_message(
            {"From": "+447700900123", "Body": "again", "MessageSid": "SM1"}
        )
    finally:
        await twilio.close()
    via_twilio = await services.ingest.ingest(message)
    assert via_smpp.contact_id == via_twilio.contact_id
    assert message.sender.value == "+447700900123"
