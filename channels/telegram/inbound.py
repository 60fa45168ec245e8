"""Telegram updates to InboundMessages: text, photos, documents and voice notes.

``source_id`` is ``"{chat_id}:{message_id}"``: Telegram's message ids are unique per chat,
so a redelivered update (webhook retry, an unconfirmed getUpdates offset) dedupes.
Files are fetched with getFile and the file download URL of the same Bot API server.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Bot, Message, Update
from telegram.error import BadRequest, Forbidden, InvalidToken

from channels.base import Address, AddressKind, ChannelKind, InboundAttachment, InboundMessage

# What getFile and the file download answer for a file that will never come: 400 ("file is
# too big", "invalid file_id" once it expired), 403, and 404 (which PTB reports as
# InvalidToken). Network errors, 5xx and 429 are not here: those are worth a redelivery.
FILE_GONE = (BadRequest, Forbidden, InvalidToken)


@dataclass(frozen=True, slots=True)
class Media:
    file_id: str
    file_size: int | None
    filename: str
    content_type: str
    kind: str  # image | file | audio


def media_of(message: Message) -> Media | None:
    """The one file a message carries, if any; for photos the largest size."""
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return Media(
            largest.file_id,
            largest.file_size,
            f"photo_{largest.file_unique_id}.jpg",
            "image/jpeg",
            "image",
        )
    if message.voice:
        v = message.voice
        mime = v.mime_type or "audio/ogg"
        ext = "ogg" if "ogg" in mime else mime.rsplit("/", 1)[-1]
        return Media(v.file_id, v.file_size, f"voice_{v.file_unique_id}.{ext}", mime, "audio")
    if message.audio:
        a = message.audio
        name = a.file_name or f"audio_{a.file_unique_id}"
        return Media(a.file_id, a.file_size, name, a.mime_type or "audio/mpeg", "audio")
    if message.document:
        d = message.document
        name = d.file_name or f"document_{d.file_unique_id}"
        return Media(
            d.file_id, d.file_size, name, d.mime_type or "application/octet-stream", "file"
        )
    return None


async def to_inbound(
    update: Update, bot: Bot, inbox_id: int, max_file_bytes: int = 20 * 1024 * 1024
) -> InboundMessage | None:
    """The InboundMessage for an update, or None for updates that carry no customer message
    (edits, channel posts, callback queries…). Network errors while downloading propagate,
    so the update is not acknowledged and Telegram delivers it again; a file Telegram will
    never hand out (``FILE_GONE``) leaves a note on the message instead, which is stored."""
    message = update.message
    if message is None or message.chat is None:
        return None
    chat = message.chat
    user = message.from_user
    display = (user.full_name if user else None) or chat.full_name or chat.title
    body = message.text or message.caption or ""
    content_type = "text"
    attachments: tuple[InboundAttachment, ...] = ()
    problems: list[str] = []
    meta: dict[str, object] = {
        "telegram": {
            "chat_id": chat.id,
            "message_id": message.message_id,
            "update_id": update.update_id,
            "username": (user.username if user else None) or chat.username,
        }
    }
    media = media_of(message)
    if media is not None:
        content_type = media.kind
        if media.file_size is not None and media.file_size > max_file_bytes:
            problems.append(
                f"{media.filename} ({media.file_size} bytes) is larger than the "
                f"{max_file_bytes}-byte limit and was not downloaded"
            )
        else:
            try:
                file = await bot.get_file(media.file_id)
                data = bytes(await file.download_as_bytearray())
            except FILE_GONE as exc:
                # Will never succeed (too big for getFile, expired, gone): keep the words.
                problems.append(
                    f"{media.filename} could not be fetched from Telegram ({exc.message}); "
                    "ask the customer to send it again"
                )
            else:
                attachments = (InboundAttachment(media.filename, media.content_type, data),)
        if message.voice is not None and attachments:
            # The speech layer transcribes messages flagged so; until then it plays.
            meta["transcribe"] = True
            # the wire value (seconds); the attribute's type changes across PTB 22.x
            meta["duration_seconds"] = message.voice.to_dict().get("duration")
    elif not body:
        kinds = [
            k
            for k in ("sticker", "location", "contact", "video", "video_note", "poll")
            if getattr(message, k, None)
        ]
        body = f"[{kinds[0] if kinds else 'unsupported'} message]"
        problems.append(f"Telegram {kinds[0] if kinds else 'content'} is not shown here")
        if message.sticker and message.sticker.emoji:
            body = message.sticker.emoji
    return InboundMessage(
        inbox_id=inbox_id,
        channel=ChannelKind.TELEGRAM,
        sender=Address(AddressKind.TELEGRAM, str(chat.id), display_name=display),
        body=body,
        source_id=f"{chat.id}:{message.message_id}",
        content_type=content_type,
        attachments=attachments,
        problems=tuple(problems),
        received_at=message.date,
        meta=meta,
    )
