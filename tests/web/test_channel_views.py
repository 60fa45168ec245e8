"""Each channel shows and is answered in its own form in the one console: email subject,
sanitized HTML and quoting, SMS segment counter, fax page previews, voice notes."""

from __future__ import annotations

import io

import httpx
import numpy as np
from PIL import Image
from sqlmodel import select

from channels.base import Address, AddressKind, ChannelKind, InboundAttachment, InboundMessage
from hub.services import Services
from models import Inbox, Message
from tests.web.conftest import hx, login
from tests.web.test_console import agent_id_of, pending_offer


async def inbox_of(services: Services, kind: ChannelKind) -> int:
    async with services.sessionmaker() as db:
        return (await db.exec(select(Inbox).where(Inbox.kind == kind.value))).one().id  # type: ignore[return-value]


async def accepted(client: httpx.AsyncClient, services: Services, message: InboundMessage) -> str:
    """Alice (Ready) is offered the customer's message and accepts it; the workspace HTML."""
    await login(client, "alice")
    ready = await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    assert ready.status_code == 200
    await services.ingest.ingest(message)
    offer = await pending_offer(services, await agent_id_of(services, "alice"))
    response = await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    assert response.status_code == 200, response.text
    return response.text


def png_bytes(color: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (40, 60), color).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_email_shows_subject_and_sanitized_html_and_replies_with_a_subject(
    client: httpx.AsyncClient, services: Services
):
    inbox = await inbox_of(services, ChannelKind.EMAIL)
    html = (
        "<p>Hello <b>team</b></p><script>window.__pwned=1</script>"
        '<img src="x" onerror="window.__pwned=2"><a href="javascript:alert(1)">x</a>'
    )
    workspace = await accepted(
        client,
        services,
        InboundMessage(
            inbox,
            ChannelKind.EMAIL,
            Address(AddressKind.EMAIL, "jane@example.com", "Jane"),
            "Hello team",
            source_id="<v1@example.com>",
            subject="Refund for order 42",
            html=html,
            problems=("unknown charset x-klingon, decoded as latin-1",),
        ),
    )
    assert "Refund for order 42" in workspace
    assert "unknown charset x-klingon" in workspace
    assert "<iframe sandbox" in workspace
    frame = workspace.split('srcdoc="', 1)[1].split('"', 1)[0]
    assert "&lt;b&gt;team&lt;/b&gt;" in frame  # kept formatting, escaped into the attribute
    for hostile in ("script", "onerror", "javascript:"):
        assert hostile not in frame
    interaction_id = int(workspace.split('id="conv-', 1)[1].split('"', 1)[0])
    assert f'value="Re: Refund for order 42 [#{interaction_id}]"' in workspace

    sent = await client.post(
        f"/console/interactions/{interaction_id}/reply",
        data={"reply": "Refunded.", "subject": f"Re: Your refund [#{interaction_id}]"},
        headers=hx(client),
    )
    assert sent.status_code == 200
    async with services.sessionmaker() as db:
        reply = (
            await db.exec(
                select(Message).where(
                    Message.interaction_id == interaction_id, Message.direction == "out"
                )
            )
        ).one()
    assert reply.subject == f"Re: Your refund [#{interaction_id}]"


async def test_sms_composer_counts_segments_as_the_agent_types(
    client: httpx.AsyncClient, services: Services
):
    inbox = await inbox_of(services, ChannelKind.SMS)
    workspace = await accepted(
        client,
        services,
        InboundMessage(
            inbox, ChannelKind.SMS, Address(AddressKind.PHONE, "+14155550199"), "hi", "sms-v1"
        ),
    )
    assert 'hx-get="/sms/segments"' in workspace and "segments-" in workspace
    counted = await client.get(
        "/sms/segments", params={"reply": "Привет! " * 20}, headers=hx(client)
    )
    assert counted.status_code == 200
    assert 'data-segments="3"' in counted.text and 'data-encoding="ucs2"' in counted.text


async def test_fax_pages_show_as_thumbnails_and_a_reply_is_previewed_as_pages(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    thumb, full = png_bytes(200), png_bytes(50)
    pages = [
        {
            "page": 1,
            "image": services.attachments.put(full),
            "thumbnail": services.attachments.put(thumb),
        }
    ]
    inbox = await inbox_of(services, ChannelKind.FAX)
    workspace = await accepted(
        client,
        services,
        InboundMessage(
            inbox,
            ChannelKind.FAX,
            Address(AddressKind.PHONE, "+14155550198"),
            "Please cancel my subscription",
            source_id="fax-v1",
            content_type="fax",
            meta={"fax": {"pages": pages}},
        ),
    )
    message_id = int(workspace.split("/console/messages/", 1)[1].split("/", 1)[0])
    assert f"/console/messages/{message_id}/fax-pages/0" in workspace
    small = await client.get(f"/console/messages/{message_id}/fax-pages/0")
    large = await client.get(f"/console/messages/{message_id}/fax-pages/0", params={"full": 1})
    assert (small.headers["content-type"], small.content) == ("image/png", thumb)
    assert large.content == full
    assert (await client.get(f"/console/messages/{message_id}/fax-pages/7")).status_code == 404
    await login(browser, "bob")  # not his conversation
    assert (await browser.get(f"/console/messages/{message_id}/fax-pages/0")).status_code == 403

    interaction_id = int(workspace.split('id="conv-', 1)[1].split('"', 1)[0])
    assert "Preview fax pages" in workspace
    preview = await client.post(
        f"/console/interactions/{interaction_id}/fax-preview",
        data={"reply": "Your subscription is cancelled.\n" * 3},
        headers=hx(client),
    )
    assert preview.status_code == 200
    assert preview.text.count("data:image/png;base64,") == 2  # cover + one page
    assert "cover" in preview.text


async def test_a_voice_note_plays_in_the_console_with_its_transcript(
    client: httpx.AsyncClient, services: Services
):
    ogg = b"OggS" + bytes(np.arange(200, dtype=np.uint8))
    inbox = await inbox_of(services, ChannelKind.TELEGRAM)
    workspace = await accepted(
        client,
        services,
        InboundMessage(
            inbox,
            ChannelKind.TELEGRAM,
            Address(AddressKind.TELEGRAM, "777"),
            "call me back about my invoice",
            source_id="777:1",
            content_type="audio",
            attachments=(InboundAttachment("voice.ogg", "audio/ogg", ogg),),
            meta={"transcribe": True, "transcript": "call me back about my invoice"},
        ),
    )
    message_id = int(workspace.split("/console/attachments/", 1)[1].split("/", 1)[0])
    assert f'<audio controls preload="none" src="/console/attachments/{message_id}/0">' in workspace
    served = await client.get(f"/console/attachments/{message_id}/0")
    assert served.headers["content-type"] == "audio/ogg"
    assert served.headers["content-disposition"].startswith("inline")
    assert served.content == ogg
