"""Agents attach files to replies: the same content checks as customers' uploads (413/415
with a reason), SMS refuses files, web chat customers see and download what the agent sent,
email carries it, and a fax reply's PDF is faxed as pages after the text."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw, ImageSequence
from sqlmodel import select

from channels.base import Address, AddressKind, ChannelKind, DeliveryStatus, InboundMessage
from hub.services import Services
from models import Message
from tests.channels.email.conftest import Sink, serving
from tests.web.conftest import hx
from tests.web.test_canned import chat_offer_accepted
from tests.web.test_channel_views import accepted, inbox_of


def png(size: tuple[int, int] = (32, 24), color: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def pdf_with_marks() -> bytes:
    """A real two-page A4 PDF (Pillow): page 1 black in its top quarter, page 2 black in
    its bottom quarter, so a faxed page shows which page it came from."""
    pages = []
    for top in (True, False):
        page = Image.new("L", (595, 842), 255)  # 72 dpi: A4 in points
        box = (40, 40, 555, 250) if top else (40, 592, 555, 802)
        ImageDraw.Draw(page).rectangle(box, fill=0)
        pages.append(page)
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=72)
    return buffer.getvalue()


def huge_page_pdf() -> bytes:
    """A valid PDF whose one page is 100 inches wide: over the fax renderer's pixel limit."""
    buffer = io.BytesIO()
    Image.new("L", (100, 100), 255).save(buffer, format="PDF", resolution=1)
    return buffer.getvalue()


async def reply_with(
    client: httpx.AsyncClient, iid: int, files: dict, body: str = "See the attachment."
) -> httpx.Response:
    return await client.post(
        f"/console/interactions/{iid}/reply", data={"reply": body}, files=files, headers=hx(client)
    )


async def outbound(services: Services, iid: int) -> list[Message]:
    async with services.sessionmaker() as db:
        rows = await db.exec(
            select(Message).where(Message.interaction_id == iid, Message.direction == "out")
        )
        return list(rows.all())


async def delivered(services: Services, message_id: int) -> Message:
    """The message once its channel sender has answered (a real background task)."""
    for _ in range(400):
        async with services.sessionmaker() as db:
            message = await db.get(Message, message_id)
        if message is not None and message.delivery_status != DeliveryStatus.PENDING:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError("the reply was never handed to its channel")


async def test_web_chat_files_are_checked_like_uploads_and_reach_the_customer(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    iid = await chat_offer_accepted(client, browser, services, "Nora Quinn")
    fake = await reply_with(client, iid, {"file": ("cat.png", b"not a picture", "image/png")})
    assert fake.status_code == 415
    assert "file type is not accepted" in fake.json()["detail"]
    damaged = png()[:40]  # a PNG signature and header, then nothing
    broken = await reply_with(client, iid, {"file": ("cut.png", damaged, "image/png")})
    assert broken.status_code == 415 and "damaged" in broken.json()["detail"]
    big = await reply_with(client, iid, {"file": ("big.png", png((900, 900), 7) + b"\0" * 70_000)})
    assert big.status_code == 413 and "too large" in big.json()["detail"]
    empty = await client.post(
        f"/console/interactions/{iid}/reply", data={"reply": "  "}, headers=hx(client)
    )
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    assert await outbound(services, iid) == []  # nothing refused was stored or sent

    picture = png()
    sent = await reply_with(
        client, iid, {"file": ("../../etc/label.gif", picture, "image/gif")}, body=""
    )
    assert sent.status_code == 200, sent.text
    (message,) = await outbound(services, iid)
    (record,) = message.attachments
    # Named and typed by what the bytes are, never by what the upload claimed.
    assert (record["filename"], record["content_type"]) == ("label.png", "image/png")
    assert (await delivered(services, message.id)).delivery_status == DeliveryStatus.DELIVERED  # type: ignore[arg-type]

    transcript = await browser.get("/chat")
    link = f"/chat/attachments/{message.id}/0"
    assert f'<img src="{link}" alt="label.png"' in transcript.text
    download = await browser.get(link)
    assert download.status_code == 200 and download.content == picture
    assert download.headers["content-type"] == "image/png"
    async with httpx.AsyncClient(transport=browser._transport, base_url=str(browser.base_url)) as x:
        await x.get("/chat")  # another visitor
        assert (await x.get(link)).status_code == 404


async def test_sms_refuses_a_file_with_a_clear_message(
    client: httpx.AsyncClient, services: Services
):
    inbox = await inbox_of(services, ChannelKind.SMS)
    workspace = await accepted(
        client,
        services,
        InboundMessage(
            inbox, ChannelKind.SMS, Address(AddressKind.PHONE, "+14155550100"), "hi", "sms-a1"
        ),
    )
    assert "An SMS carries text only." in workspace and 'type="file"' not in workspace
    iid = int(workspace.split('id="conv-', 1)[1].split('"', 1)[0])
    refused = await reply_with(client, iid, {"file": ("photo.png", png(), "image/png")})
    assert refused.status_code == 422
    assert "An SMS cannot carry files" in refused.json()["detail"]
    assert await outbound(services, iid) == []


@pytest.fixture
async def relay(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sink]:
    """A real SMTP server the hub relays its email replies through (started before the app)."""
    async with serving() as sink:
        monkeypatch.setenv("HUB_EMAIL_RELAY_HOST", "127.0.0.1")
        monkeypatch.setenv("HUB_EMAIL_RELAY_PORT", str(sink.port))
        monkeypatch.setenv("HUB_EMAIL_FROM_ADDRESS", "support@example.com")
        yield sink


async def test_an_email_reply_carries_the_agents_pdf(
    relay: Sink, client: httpx.AsyncClient, services: Services
):
    inbox = await inbox_of(services, ChannelKind.EMAIL)
    workspace = await accepted(
        client,
        services,
        InboundMessage(
            inbox,
            ChannelKind.EMAIL,
            Address(AddressKind.EMAIL, "jane@example.com", "Jane"),
            "Please send the invoice",
            source_id="<inv1@example.com>",
            subject="Invoice",
        ),
    )
    iid = int(workspace.split('id="conv-', 1)[1].split('"', 1)[0])
    assert 'hx-encoding="multipart/form-data"' in workspace and 'name="file"' in workspace
    document = pdf_with_marks()
    sent = await reply_with(client, iid, {"file": ("Invoice 42.pdf", document, "application/pdf")})
    assert sent.status_code == 200, sent.text
    (mail,) = await relay.wait_for(1)
    assert mail["To"] == "jane@example.com"
    (part,) = list(mail.iter_attachments())
    assert part.get_filename() == "Invoice 42.pdf"
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == document
    assert "See the attachment." in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def dark_share(page: Image.Image, box: tuple[float, float, float, float]) -> float:
    """The share of black pixels in ``box`` (fractions of the page's width and height)."""
    w, h = page.size
    region = page.convert("L").crop(
        (int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h))
    )
    histogram = region.histogram()  # 256 counts, one per grey level
    return sum(histogram[:128]) / sum(histogram)


async def test_a_pdf_on_a_fax_reply_is_faxed_as_pages_after_the_text(
    client: httpx.AsyncClient, services: Services, tmp_path: Path
):
    inbox = await inbox_of(services, ChannelKind.FAX)
    workspace = await accepted(
        client,
        services,
        InboundMessage(
            inbox,
            ChannelKind.FAX,
            Address(AddressKind.PHONE, "+14155550111"),
            "Send me the form",
            source_id="fax-a1",
            content_type="fax",
        ),
    )
    iid = int(workspace.split('id="conv-', 1)[1].split('"', 1)[0])
    assert 'accept="application/pdf"' in workspace
    image = await reply_with(client, iid, {"file": ("form.png", png(), "image/png")})
    assert image.status_code == 415 and "PDF only" in image.json()["detail"]
    huge = await reply_with(client, iid, {"file": ("plan.pdf", huge_page_pdf(), "application/pdf")})
    assert huge.status_code == 413
    assert "This PDF cannot be faxed: page 1 would render at" in huge.json()["detail"]
    assert await outbound(services, iid) == []

    document = pdf_with_marks()
    preview = await client.post(
        f"/console/interactions/{iid}/fax-preview",
        data={"reply": "The form is attached."},
        files={"file": ("form.pdf", document, "application/pdf")},
        headers=hx(client),
    )
    assert preview.status_code == 200, preview.text
    assert preview.text.count("data:image/png;base64,") == 4  # cover, text, two PDF pages
    assert "4/4" in preview.text

    sent = await reply_with(
        client, iid, {"file": ("form.pdf", document, "application/pdf")}, "The form is attached."
    )
    assert sent.status_code == 200, sent.text
    (message,) = await outbound(services, iid)
    result = await delivered(services, message.id)  # type: ignore[arg-type]
    assert result.delivery_status == DeliveryStatus.SENT, result.status_detail
    tiff = tmp_path / "var" / "fax" / "outgoing" / f"msg{message.id}.tif"
    with Image.open(tiff) as fax:
        pages = [frame.copy() for frame in ImageSequence.Iterator(fax)]
    assert len(pages) == 4
    _cover, text, first, second = pages
    for page in pages:
        assert page.mode == "1" and page.width == 1728  # T.4 line width
        assert page.info["compression"] == "group3"
    # The PDF's pages keep their order and layout: page 1 marked at the top, page 2 below.
    assert dark_share(first, (0.15, 0.08, 0.85, 0.25)) > 0.9
    assert dark_share(first, (0.15, 0.75, 0.85, 0.92)) < 0.01
    assert dark_share(second, (0.15, 0.75, 0.85, 0.92)) > 0.9
    assert dark_share(second, (0.15, 0.08, 0.85, 0.25)) < 0.01
    # A4 proportions at fine resolution: 297/210 × 196/204 of the width.
    assert abs(first.height - round(1728 * 842 / 595 * 196 / 204)) <= 2
    assert dark_share(text, (0.0, 0.0, 1.0, 0.1)) > 0  # the reply's words come first
    assert re.match(r"spool:msg\d+", result.source_id or "")
