"""Update JSON to InboundMessage for content the console cannot show as-is."""

from __future__ import annotations

from telegram import Bot, Update

from channels.telegram.inbound import to_inbound
from tests.channels.telegram.botapi import CHAT, FROM, document_update


def update(message: dict[str, object]) -> Update:
    base = {"message_id": 80, "from": FROM, "chat": CHAT, "date": 1763798400}
    parsed = Update.de_json({"update_id": 1, "message": {**base, **message}}, None)
    assert parsed is not None
    return parsed


async def test_sticker_becomes_its_emoji_with_a_note() -> None:
    sticker = {
        "file_id": "CAACAgIAAxkBAAIBsticker",
        "file_unique_id": "AgADsticker",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "👍",
    }
    message = await to_inbound(update({"sticker": sticker}), Bot("1:x"), 3)
    assert message is not None
    assert message.body == "👍"
    assert message.problems == ("Telegram sticker is not shown here",)


async def test_location_is_named_not_dropped() -> None:
    location = {"latitude": 38.7223, "longitude": -9.1393}
    message = await to_inbound(update({"location": location}), Bot("1:x"), 3)
    assert message is not None and message.body == "[location message]"


async def test_a_file_over_the_limit_is_noted_not_fetched() -> None:
    parsed = Update.de_json(document_update(2, 81), None)
    assert parsed is not None
    # No Bot API is running: fetching would raise, so passing proves it was not fetched.
    message = await to_inbound(parsed, Bot("1:x", base_url="http://127.0.0.1:9/bot"), 3, 1024)
    assert message is not None
    assert message.attachments == ()
    assert "larger than the 1024-byte limit" in message.problems[0]
    assert message.content_type == "file"


async def test_updates_without_a_message_are_skipped() -> None:
    parsed = Update.de_json({"update_id": 3, "edited_message": None}, None)
    assert parsed is not None
    assert await to_inbound(parsed, Bot("1:x"), 3) is None
