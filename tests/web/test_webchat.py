"""The customer web chat: identity by cookie, idempotent sends, uploads checked by content,
rate limits, escaping, and the transcript after a reload."""

from __future__ import annotations

import io
import uuid

import httpx
from PIL import Image
from sqlmodel import func, select

from hub.services import Services
from models import (
    Contact,
    ContactIdentity,
    Interaction,
    InteractionEvent,
    InteractionState,
    Message,
)
from tests.web.conftest import hx


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


async def open_chat(client: httpx.AsyncClient) -> None:
    response = await client.get("/chat")
    assert response.status_code == 200
    assert client.cookies.get("hub_visitor")


async def send(client: httpx.AsyncClient, body: str, *, source_id: str | None = None, **extra):
    files = extra.pop("files", None)
    return await client.post(
        "/chat/messages",
        data={"body": body, "source_id": source_id or uuid.uuid4().hex, **extra},
        files=files,
        headers=hx(client),
    )


async def message_count(services: Services) -> int:
    async with services.sessionmaker() as db:
        return (await db.exec(select(func.count()).select_from(Message))).one()


async def test_first_message_opens_a_queued_chat_and_shows_the_panel(
    client: httpx.AsyncClient, services: Services
):
    await open_chat(client)
    response = await send(client, "Hello, my order is late", name="Ann", email="ann@example.com")
    assert response.status_code == 200
    assert response.headers["hx-retarget"] == "#chat"
    assert 'sse-connect="/chat/events"' in response.text
    assert "Hello, my order is late" in response.text
    async with services.sessionmaker() as db:
        interaction = (await db.exec(select(Interaction))).one()
        assert interaction.channel == "webchat"
        assert interaction.data["email given"] == "ann@example.com"
        contact = await db.get(Contact, interaction.contact_id)
        assert contact is not None and contact.name == "Ann"


async def test_a_double_submit_is_stored_once(client: httpx.AsyncClient, services: Services):
    await open_chat(client)
    before = await message_count(services)
    source_id = uuid.uuid4().hex
    first = await send(client, "only once please", source_id=source_id)
    second = await send(client, "only once please", source_id=source_id)
    assert first.status_code == second.status_code == 200
    assert await message_count(services) == before + 1


async def test_returning_visitor_is_the_same_contact_and_sees_the_transcript(
    client: httpx.AsyncClient, services: Services
):
    await open_chat(client)
    await send(client, "first visit")
    reload = await client.get("/chat")
    assert "first visit" in reload.text
    await send(client, "still me")
    async with services.sessionmaker() as db:
        identities = (
            await db.exec(select(ContactIdentity).where(ContactIdentity.kind == "webchat"))
        ).all()
        assert len(identities) == 1
        interactions = (await db.exec(select(Interaction))).all()
        assert len(interactions) == 1


async def test_a_forged_visitor_cookie_is_a_new_visitor(client: httpx.AsyncClient):
    await open_chat(client)
    await send(client, "private words")
    visitor = client.cookies.get("hub_visitor", "").split(".")[0]
    client.cookies.clear()
    client.cookies.set("hub_visitor", f"{visitor}.{'0' * 32}", path="/chat")
    page = await client.get("/chat")
    assert "private words" not in page.text


async def test_customer_text_is_escaped_everywhere(client: httpx.AsyncClient):
    await open_chat(client)
    payload = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>"
    await send(client, payload)
    page = await client.get("/chat")
    assert "<script>window.__pwned" not in page.text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page.text
    assert "<img src=x" not in page.text


async def test_a_text_file_named_png_is_refused_by_content(client: httpx.AsyncClient):
    await open_chat(client)
    response = await send(
        client,
        "see file",
        files={"file": ("cat.png", b"just some text, not a picture", "image/png")},
    )
    assert response.status_code == 415
    assert "PNG, JPEG, GIF or WebP" in response.json()["detail"]


async def test_a_damaged_image_is_refused(client: httpx.AsyncClient):
    await open_chat(client)
    broken = png_bytes()[:20]
    response = await send(client, "", files={"file": ("x.png", broken, "image/png")})
    assert response.status_code == 415


async def test_a_too_large_file_is_refused_with_the_limit(client: httpx.AsyncClient):
    await open_chat(client)
    big = png_bytes() + b"\0" * (70 * 1024)
    response = await send(client, "big", files={"file": ("big.png", big, "image/png")})
    assert response.status_code == 413
    assert "64 KB" in response.json()["detail"]


async def test_real_images_and_pdfs_are_stored_and_served_safely(
    client: httpx.AsyncClient, services: Services
):
    await open_chat(client)
    ok = await send(client, "photo", files={"file": ("photo.PNG.exe", png_bytes(), "text/plain")})
    assert ok.status_code == 200
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    ok_pdf = await send(client, "", files={"file": ("invoice.pdf", pdf, "application/pdf")})
    assert ok_pdf.status_code == 200
    async with services.sessionmaker() as db:
        stored = [m for m in (await db.exec(select(Message))).all() if m.attachments]
    kinds = sorted(m.attachments[0]["content_type"] for m in stored if m.attachments)
    assert kinds == ["application/pdf", "image/png"]
    image = next(
        m for m in stored if m.attachments and m.attachments[0]["content_type"] == "image/png"
    )
    assert image.attachments[0]["filename"] == "photo.PNG.png"
    served = await client.get(f"/chat/attachments/{image.id}/0")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-security-policy"] == "default-src 'none'; sandbox"
    stranger = await client.get(f"/chat/attachments/{image.id}/0", cookies={"hub_visitor": "x"})
    assert stranger.status_code == 404


async def test_sending_too_fast_gets_429_with_a_reason(client: httpx.AsyncClient):
    await open_chat(client)
    statuses = [(await send(client, f"msg {n}")).status_code for n in range(8)]
    assert statuses == [200] * 8
    limited = await send(client, "one too many")
    assert limited.status_code == 429
    assert "too fast" in limited.json()["detail"]
    assert "retry-after" in limited.headers


async def test_malformed_and_empty_messages_get_400(client: httpx.AsyncClient):
    await open_chat(client)
    empty = await send(client, "   ")
    assert empty.status_code == 400
    bad_id = await send(client, "hi", source_id="../../etc")
    assert bad_id.status_code == 400
    too_long = await send(client, "x" * 6000)
    assert too_long.status_code == 400 and "too long" in too_long.json()["detail"]
    no_cookie = await client.post(
        "/chat/messages",
        data={"body": "hi", "source_id": uuid.uuid4().hex},
        headers=hx(client),
        cookies={"hub_visitor": ""},
    )
    assert no_cookie.status_code == 400


async def test_chat_post_without_csrf_token_is_refused(client: httpx.AsyncClient):
    await open_chat(client)
    response = await client.post(
        "/chat/messages", data={"body": "hi", "source_id": uuid.uuid4().hex}
    )
    assert response.status_code == 403


async def test_no_agent_logged_in_offers_leave_a_message_and_keeps_it(
    client: httpx.AsyncClient, services: Services
):
    await open_chat(client)
    response = await send(client, "Anyone there?")
    assert "No agent is available right now." in response.text
    assert "Leave a message" in response.text
    left = await client.post("/chat/leave-message", headers=hx(client))
    assert left.status_code == 200
    assert "your message is saved" in left.text
    async with services.sessionmaker() as db:
        interaction = (await db.exec(select(Interaction))).one()
        assert interaction.state == InteractionState.VOICEMAIL
        kept = (
            await db.exec(select(Message).where(Message.interaction_id == interaction.id))
        ).all()
        assert [m.body for m in kept] == ["Anyone there?"]


async def test_garbage_bodies_get_4xx_and_the_hub_keeps_serving(client: httpx.AsyncClient):
    await open_chat(client)
    headers = {**hx(client), "content-type": "multipart/form-data; boundary=zzz"}
    broken = await client.post(
        "/chat/messages", content=b"--zzz\r\nContent-Disposition: form-da\xff\xfe", headers=headers
    )
    assert 400 <= broken.status_code < 500
    binary = await client.post(
        "/chat/messages",
        content=b"\xff\xfe\x00body=\xc3\x28&source_id=\x00",
        headers={**hx(client), "content-type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= binary.status_code < 500
    huge = await client.post(
        "/chat/messages",
        content=b"body=" + b"x" * (11 * 1024 * 1024),
        headers={**hx(client), "content-type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code == 413
    still_fine = await send(client, "after the garbage")
    assert still_fine.status_code == 200


async def test_file_names_in_any_script_download(client: httpx.AsyncClient, services: Services):
    """Cyrillic, Chinese and bidi-spoofed names: the header is RFC 6266 with a UTF-8
    ``filename*`` and an ASCII fallback, never a 500 for a non-Latin-1 name."""
    from urllib.parse import unquote

    await open_chat(client)
    names = ["счёт.png", "发票.png", "report\u202egnp.exe.png"]
    for name in names:
        response = await send(client, "", files={"file": (name, png_bytes(), "image/png")})
        assert response.status_code == 200
    async with services.sessionmaker() as db:
        stored = [m for m in (await db.exec(select(Message))).all() if m.attachments]
    assert len(stored) == len(names)
    seen = {}
    for message in stored:
        served = await client.get(f"/chat/attachments/{message.id}/0")
        assert served.status_code == 200
        header = served.headers["content-disposition"]
        assert header.isascii()
        if "filename*=UTF-8''" in header:
            seen[unquote(header.split("filename*=UTF-8''")[1])] = header
        else:
            seen[header.split('filename="')[1].rstrip('"')] = header
    assert set(seen) == {"счёт.png", "发票.png", "reportgnp.exe.png"}
    assert 'filename="file.png"' in seen["счёт.png"]


async def test_a_customer_who_ends_a_waiting_chat_is_recorded_as_abandoned(
    client: httpx.AsyncClient, services: Services
):
    await open_chat(client)
    waiting = await send(client, "Is anyone there?")
    assert 'id="end-chat"' in waiting.text
    ended = await client.post("/chat/end", headers=hx(client))
    assert ended.status_code == 200
    assert "You ended the chat" in ended.text
    assert 'id="end-chat"' not in ended.text
    async with services.sessionmaker() as db:
        interaction = (await db.exec(select(Interaction))).one()
        assert interaction.state == InteractionState.ABANDONED
        assert interaction.closed_at is not None and interaction.answered_at is None
        (event,) = (
            await db.exec(
                select(InteractionEvent).where(
                    InteractionEvent.to_state == InteractionState.ABANDONED
                )
            )
        ).all()
        assert event.reason == "customer ended the chat"
    # Writing again starts a new conversation.
    again = await send(client, "Me again")
    assert again.headers["hx-retarget"] == "#chat"
    async with services.sessionmaker() as db:
        states = (await db.exec(select(Interaction.state).order_by(Interaction.id))).all()
    assert states == [InteractionState.ABANDONED, InteractionState.QUEUED]


async def test_end_chat_without_a_chat_is_a_clear_400(client: httpx.AsyncClient):
    await open_chat(client)
    response = await client.post("/chat/end", headers=hx(client))
    assert response.status_code == 400
    assert "no chat to end" in response.text


async def test_the_chat_stream_sends_each_line_once(
    app, client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    """The stream subscribes, then sends the whole transcript: a message or a state change
    committed in between comes again as its event, and must not be shown twice."""
    from litestar import Request

    from channels.webchat.routes import ChatStream
    from hub.events import interaction_topic
    from tests.web.conftest import login
    from tests.web.test_console import agent_id_of, customer_writes, pending_offer
    from web.sse import run_stream

    await customer_writes(browser, "first words")
    await login(client, "alice")
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    alice = await agent_id_of(services, "alice")
    offer = await pending_offer(services, alice)
    await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    async with services.sessionmaker() as db:
        first = (await db.exec(select(Message).where(Message.body == "first words"))).one()
    scope = {"type": "http", "method": "GET", "path": "/chat/events", "headers": []}
    scope |= {"query_string": b"", "path_params": {}, "app": app, "litestar_app": app}
    request: Request = Request(scope)  # type: ignore[arg-type]
    stream = run_stream(services, ChatStream(request, offer.interaction_id), heartbeat=0.2)
    assert (await anext(stream)).comment == "connected"
    synced = await anext(stream)
    assert synced.event == "transcript"
    assert "first words" in str(synced.data) and "has joined the chat." in str(synced.data)

    # the two commits that raced the snapshot arrive now as their events
    topic = interaction_topic(offer.interaction_id)
    await services.bus.publish(topic, "state", state="active", agent_id=alice)
    await services.bus.publish(topic, "message", message_id=first.id)
    await customer_writes(browser, "second words")
    sent = []
    while not any("second words" in str(m.data) for m in sent):
        message = await anext(stream)
        if message.event == "message":
            sent.append(message)
    assert len(sent) == 1, [str(m.data) for m in sent]  # only the new message
    await stream.aclose()
