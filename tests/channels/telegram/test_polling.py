"""Long polling against a local Bot API: updates in (text, photo, document, voice), the
offset moving only after commit, duplicates, and replies out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlmodel import col, select

from channels.base import DeliveryStatus, InboundAttachment
from channels.telegram.channel import TelegramChannel, split_text
from channels.telegram.runtime import start_telegram
from channels.telegram.settings import TelegramSettings
from hub.services import Services
from models import ContactIdentity, Direction, Inbox, Interaction, Message
from tests.channels.telegram.botapi import (
    CHAT,
    LocalBotApi,
    document_update,
    photo_update,
    text_update,
    voice_update,
)
from tests.channels.telegram.conftest import TOKEN
from tests.ports import free_port

JPEG_LARGE = b"\xff\xd8\xff\xe0" + b"large photo" * 50
JPEG_SMALL = b"\xff\xd8\xff\xe0small"
PDF = b"%PDF-1.4\n% invoice\n"
OGG = b"OggS\x00\x02" + b"\x00" * 40


def settings_for(api: LocalBotApi, **kw: object) -> TelegramSettings:
    return TelegramSettings(
        token=TOKEN,
        mode="polling",
        api_base_url=api.url,
        poll_timeout=1,
        **kw,  # type: ignore[arg-type]
    )


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


async def wait_for_inbound(services: Services, count: int) -> list[Message]:
    for _ in range(200):
        stored = await inbound(services)
        if len(stored) >= count:
            return stored
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(stored)} of {count} messages arrived")


async def wait_for_status(services: Services, message_id: int) -> Message:
    for _ in range(200):
        async with services.sessionmaker() as db:
            message = await db.get(Message, message_id)
        assert message is not None
        if message.delivery_status != DeliveryStatus.PENDING:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError("reply stayed pending")


@pytest.fixture
async def polling(services: Services, bot_api: LocalBotApi) -> AsyncIterator[TelegramChannel]:
    stoppers = await start_telegram(services, settings_for(bot_api))
    try:
        yield services.extras["telegram"]
    finally:
        for stop in stoppers:
            await stop()


async def test_text_in_and_reply_out(
    services: Services, bot_api: LocalBotApi, polling: TelegramChannel, telegram_inbox: Inbox
) -> None:
    bot_api.push_update(text_update(900001, 41, "Olá! Meu pedido não chegou."))
    (stored,) = await wait_for_inbound(services, 1)
    assert stored.body == "Olá! Meu pedido não chegou."
    assert stored.source_id == f"{CHAT['id']}:41"
    assert stored.inbox_id == telegram_inbox.id
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, stored.interaction_id)
        identity = (
            await db.exec(
                select(ContactIdentity).where(
                    ContactIdentity.contact_id == interaction.contact_id  # type: ignore[union-attr]
                )
            )
        ).one()
    assert (identity.kind, identity.address) == ("telegram", str(CHAT["id"]))

    reply = await services.outbox.reply(
        stored.interaction_id, body="Vamos verificar agora mesmo.", agent_id=None
    )
    sent = await wait_for_status(services, reply.id)  # type: ignore[arg-type]
    assert sent.delivery_status == DeliveryStatus.SENT
    (call,) = bot_api.calls_to("sendMessage")
    assert call.params["chat_id"] == str(CHAT["id"])
    assert call.params["text"] == "Vamos verificar agora mesmo."
    assert sent.source_id == f"{CHAT['id']}:500"


async def test_photo_document_and_voice_are_downloaded(
    services: Services, bot_api: LocalBotApi, polling: TelegramChannel
) -> None:
    bot_api.add_file("AgACAgQAAxkBAAIBlarge", "photos/file_10.jpg", JPEG_LARGE)
    bot_api.add_file("AgACAgQAAxkBAAIBsmall", "photos/file_11.jpg", JPEG_SMALL)
    bot_api.add_file("BQACAgQAAxkBAAIBdoc", "documents/file_12.pdf", PDF)
    bot_api.add_file("AwACAgQAAxkBAAIBvoice", "voice/file_13.oga", OGG)
    bot_api.push_update(photo_update(900002, 42, "the box arrived like this"))
    bot_api.push_update(document_update(900003, 43))
    bot_api.push_update(voice_update(900004, 44))
    photo, document, voice = await wait_for_inbound(services, 3)

    assert photo.content_type == "image"
    assert photo.body == "the box arrived like this"
    (picture,) = photo.attachments
    assert picture["content_type"] == "image/jpeg"
    assert services.attachments.get(picture["sha256"]) == JPEG_LARGE  # the largest size
    assert bot_api.file_downloads[0] == "photos/file_10.jpg"

    assert document.content_type == "file"
    (pdf,) = document.attachments
    assert (pdf["filename"], pdf["content_type"]) == ("invoice-4512.pdf", "application/pdf")
    assert services.attachments.get(pdf["sha256"]) == PDF

    assert voice.content_type == "audio"
    (audio,) = voice.attachments
    assert audio["content_type"] == "audio/ogg"
    assert services.attachments.get(audio["sha256"]) == OGG
    assert voice.meta["transcribe"] is True  # the speech layer's hook
    assert voice.meta["duration_seconds"] == 3


async def test_reply_with_a_photo_and_a_long_text(
    services: Services, bot_api: LocalBotApi, polling: TelegramChannel
) -> None:
    bot_api.push_update(text_update(900005, 45, "Can you send the label?"))
    (stored,) = await wait_for_inbound(services, 1)
    sha = services.attachments.put(JPEG_SMALL)
    long_text = "word " * 1000  # 5000 characters: two sendMessage calls
    reply = await services.outbox.reply(
        stored.interaction_id,
        body=long_text,
        agent_id=None,
        attachments=[
            {"filename": "label.jpg", "content_type": "image/jpeg", "size": 9, "sha256": sha}
        ],
    )
    sent = await wait_for_status(services, reply.id)  # type: ignore[arg-type]
    assert sent.delivery_status == DeliveryStatus.SENT
    (photo_call,) = bot_api.calls_to("sendPhoto")
    assert photo_call.files["photo"] == ("label.jpg", JPEG_SMALL)
    texts = [c.params["text"] for c in bot_api.calls_to("sendMessage")]
    assert len(texts) == 2 and all(len(t) <= 4096 for t in texts)
    assert " ".join(texts).split() == long_text.split()


async def test_offset_moves_only_after_commit(
    services: Services, bot_api: LocalBotApi, telegram_inbox: Inbox
) -> None:
    channel = TelegramChannel(services.ingest, telegram_inbox.id, settings_for(bot_api))  # type: ignore[arg-type]
    await channel.bot.initialize()
    try:
        async with services.sessionmaker() as db:
            inbox = await db.get(Inbox, telegram_inbox.id)
            inbox.active = False  # type: ignore[union-attr]
            db.add(inbox)
            await db.commit()
        bot_api.push_update(text_update(900010, 50, "first"))
        with pytest.raises(LookupError):
            await channel.poll_once(long_poll=0)
        assert channel.offset is None  # not confirmed: Telegram keeps it
        assert bot_api.pending_updates() == [900010]
        async with services.sessionmaker() as db:
            inbox = await db.get(Inbox, telegram_inbox.id)
            inbox.active = True  # type: ignore[union-attr]
            db.add(inbox)
            await db.commit()
        assert await channel.poll_once(long_poll=0) == 1
        assert channel.offset == 900011
        # A restarted poller (no offset) gets the same update again: stored once.
        channel.offset = None
        assert await channel.poll_once(long_poll=0) == 1
        assert [m.body for m in await inbound(services)] == ["first"]
        channel.offset = 900011
        assert await channel.poll_once(long_poll=0) == 0
        assert bot_api.pending_updates() == []  # confirmed by the higher offset
    finally:
        await channel.bot.shutdown()


async def test_a_download_that_may_succeed_later_leaves_the_update_unconfirmed(
    services: Services, bot_api: LocalBotApi, telegram_inbox: Inbox
) -> None:
    channel = TelegramChannel(services.ingest, telegram_inbox.id, settings_for(bot_api))  # type: ignore[arg-type]
    await channel.bot.initialize()
    try:
        bot_api.add_file("BQACAgQAAxkBAAIBdoc", "documents/file_12.pdf", PDF)
        bot_api.push_update(document_update(900020, 60))
        bot_api.fail_next["getFile"] = (502, "Bad Gateway")  # Telegram's side, for now
        with pytest.raises(Exception, match=r"(?i)bad gateway"):
            await channel.poll_once(long_poll=0)
        assert channel.offset is None
        assert await inbound(services) == []
        assert await channel.poll_once(long_poll=0) == 1
        (stored,) = await inbound(services)
        assert services.attachments.get(stored.attachments[0]["sha256"]) == PDF
    finally:
        await channel.bot.shutdown()


async def test_a_file_telegram_will_never_hand_out_keeps_the_words_with_a_note(
    services: Services, bot_api: LocalBotApi, telegram_inbox: Inbox
) -> None:
    """Too big for getFile, expired or gone: retrying cannot help, so the caption is stored
    (once) with a note, instead of failing the update forever."""
    channel = TelegramChannel(services.ingest, telegram_inbox.id, settings_for(bot_api))  # type: ignore[arg-type]
    await channel.bot.initialize()
    try:
        too_big = document_update(900021, 61)
        too_big["message"]["caption"] = "the scan"
        bot_api.push_update(too_big)
        bot_api.fail_next["getFile"] = (400, "Bad Request: file is too big")  # the first one
        gone = document_update(900022, 62)
        gone["message"]["document"]["file_id"] = "BQACAgQAAxkBAAIexpired"
        gone["message"]["caption"] = "my contract, page 2"
        bot_api.push_update(gone)  # its file_id is unknown: "Bad Request: invalid file_id"
        assert await channel.poll_once(long_poll=0) == 2
        stored = await inbound(services)
        assert [m.body for m in stored] == ["the scan", "my contract, page 2"]
        assert all(not m.attachments for m in stored)
        notes = [m.meta["problems"][0].lower() for m in stored]
        assert all("invoice-4512.pdf could not be fetched" in note for note in notes)
        assert "file is too big" in notes[0] and "invalid file_id" in notes[1]
    finally:
        await channel.bot.shutdown()


async def test_blocked_bot_fails_the_reply_with_a_reason(
    services: Services, bot_api: LocalBotApi, polling: TelegramChannel
) -> None:
    bot_api.push_update(text_update(900030, 70, "hi"))
    (stored,) = await wait_for_inbound(services, 1)
    bot_api.fail_next["sendMessage"] = (403, "Forbidden: bot was blocked by the user")
    reply = await services.outbox.reply(stored.interaction_id, body="hello?", agent_id=None)
    failed = await wait_for_status(services, reply.id)  # type: ignore[arg-type]
    assert failed.delivery_status == DeliveryStatus.FAILED
    assert "blocked" in (failed.status_detail or "")


def test_split_text_prefers_word_boundaries() -> None:
    parts = split_text("a" * 10 + " " + "b" * 10, limit=15)
    assert parts == ["a" * 10, "b" * 10]
    assert split_text("x" * 40, limit=15) == ["x" * 15, "x" * 15, "x" * 10]


def test_inbound_attachment_type_is_shared() -> None:
    # the outbox hands attachments back as InboundAttachment values
    assert InboundAttachment("a", "image/png", b"x").sha256


async def test_hub_starts_while_the_bot_api_is_down_and_polls_once_it_is_up(
    services: Services,
) -> None:
    port = free_port()
    settings = TelegramSettings(
        token=TOKEN, mode="polling", api_base_url=f"http://127.0.0.1:{port}", poll_timeout=1
    )
    stoppers = await start_telegram(services, settings)  # connection refused: no raise
    api = LocalBotApi(TOKEN, port=port).start()
    try:
        api.push_update(text_update(900040, 90, "are you up?"))
        (stored,) = await wait_for_inbound(services, 1)
        assert stored.body == "are you up?"
    finally:
        for stop in stoppers:
            await stop()
        api.stop()
