"""Bad input on the SMS webhooks, through the real app on SQLite and PostgreSQL: input that
will never be valid gets a 4xx with its reason, a message that is only partly damaged is
kept with a note, never a 500 (which makes the provider retry forever), and the hub keeps
serving the next request."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from hub.services import Services
from models import Inbox
from tests.channels.sms.test_twilio import (  # noqa: F401 - fixtures
    SID,
    client,
    inbound,
    inbound_form,
    post_signed,
    twilio_api,
)

REFUSED = [
    ({"NumMedia": "many"}, "NumMedia"),
    ({"NumMedia": "-3"}, "NumMedia"),
    ({"MessageSid": "SM" + "9" * 400}, "MessageSid"),
    ({"MessageSid": "SM\x00abc"}, "MessageSid"),
    ({"From": "+1555\x001234567"}, "From"),
    ({"From": ""}, "From"),
]


@pytest.mark.parametrize(("fields", "reason"), REFUSED, ids=[r for _, r in REFUSED])
async def test_inbound_input_that_is_never_valid_is_refused_with_a_reason(
    services: Services,
    client: AsyncTestClient,  # noqa: F811
    sms_inbox: Inbox,
    fields: dict,
    reason: str,
) -> None:
    path = f"/webhooks/sms/twilio/{sms_inbox.id}"
    response = await post_signed(client, path, inbound_form("SM" + "1" * 32, "hello", **fields))
    assert response.status_code == 400, response.text  # type: ignore[attr-defined]
    assert reason in response.text  # type: ignore[attr-defined]
    assert await inbound(services) == []
    good = await post_signed(client, path, inbound_form("SM" + "2" * 32, "still here?"))
    assert good.status_code == 200  # type: ignore[attr-defined]
    assert [m.body for m in await inbound(services)] == ["still here?"]


async def test_a_damaged_message_is_kept_with_notes(
    services: Services,
    client: AsyncTestClient,  # noqa: F811
    sms_inbox: Inbox,
) -> None:
    """A NUL in the text (PostgreSQL's text cannot hold it) and a media URL that is not a
    URL: the customer's words are stored, and the agent sees what was wrong."""
    form = inbound_form(
        "SM" + "3" * 32,
        "call me\x00 back",
        NumMedia="1",
        MediaUrl0="http://[not-a-host/media",
        MediaContentType0="image/png",
    )
    response = await post_signed(client, f"/webhooks/sms/twilio/{sms_inbox.id}", form)
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    [stored] = await inbound(services)
    assert stored.body == "call me\ufffd back"
    problems = " ".join(stored.meta["problems"])
    assert "media 0 not downloaded" in problems and "NUL" in problems


async def test_status_callbacks_that_are_never_valid_are_refused_with_a_reason(
    client: AsyncTestClient,  # noqa: F811
    sms_inbox: Inbox,
) -> None:
    path = f"/webhooks/sms/twilio/{sms_inbox.id}/status"
    bad = {"MessageSid": "SM\x00x", "MessageStatus": "delivered", "AccountSid": SID}
    response = await post_signed(client, path, bad)
    assert response.status_code == 400, response.text  # type: ignore[attr-defined]
    assert "MessageSid" in response.text  # type: ignore[attr-defined]
    # An unknown message with a long error text: nothing to update, and no fault.
    unknown = {
        "MessageSid": "SM" + "4" * 32,
        "MessageStatus": "failed",
        "ErrorCode": "3" * 2000,
        "AccountSid": SID,
    }
    response = await post_signed(client, path, unknown)
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]


async def test_a_body_that_is_not_a_form_is_refused(
    client: AsyncTestClient,  # noqa: F811
    sms_inbox: Inbox,
) -> None:
    path = f"/webhooks/sms/twilio/{sms_inbox.id}"
    response = await client.post(
        path,
        content=b"\xff\xfe{" * 1000,
        headers={"Content-Type": "application/json", "X-Twilio-Signature": "abc"},
    )
    assert response.status_code == 403
    assert "does not match" in response.text
