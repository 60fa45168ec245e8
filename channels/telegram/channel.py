"""One Telegram bot serving one inbox: updates in (webhook or long polling), replies out.

Long polling confirms an update to Telegram only by asking for the next offset, so the
offset moves past an update only after its message is committed: a crash re-reads it, and
``source_id`` dedupes. In webhook mode the route answers 200 only after the commit.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Bot, InputFile, Message, Update
from telegram.error import Forbidden, InvalidToken, RetryAfter, TelegramError

from channels.base import DeliveryStatus, Ingestor, OutboundMessage, SendResult
from channels.telegram.inbound import to_inbound
from channels.telegram.settings import TelegramSettings
from hub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # Bot API sendMessage limit (characters)
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def make_bot(settings: TelegramSettings) -> Bot:
    return Bot(settings.token, base_url=settings.base_url, base_file_url=settings.base_file_url)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut at the last newline or space before the limit, else hard at the limit."""
    parts: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n ")
    if text:
        parts.append(text)
    return parts


class TelegramChannel:
    def __init__(self, ingestor: Ingestor, inbox_id: int, settings: TelegramSettings) -> None:
        self.ingestor = ingestor
        self.inbox_id = inbox_id
        self.settings = settings
        self.bot = make_bot(settings)
        self._task: asyncio.Task[None] | None = None
        self.offset: int | None = None  # the next getUpdates offset (polling mode)

    @property
    def secret_token(self) -> str:
        return self.settings.secret_token

    async def start(self) -> None:
        """Set up (getMe, then setWebhook or deleteWebhook) and start polling.

        A Bot API that cannot be reached must not stop the hub from starting: the first
        attempt runs here (bounded), further ones in the background with backoff.
        """
        try:
            await asyncio.wait_for(self._setup(), 5.0)
        except InvalidToken:
            raise
        except (TelegramError, TimeoutError) as exc:
            log.warning("Telegram Bot API not reachable yet (%s); retrying in background", exc)
            self._task = asyncio.create_task(self._setup_then_run(), name="telegram")
            return
        self._task = asyncio.create_task(self._setup_then_run(done=True), name="telegram")

    async def _setup(self) -> None:
        await self.bot.initialize()
        if self.settings.mode == "webhook":
            if self.settings.webhook_url:
                await self.bot.set_webhook(
                    self.settings.webhook_url,
                    secret_token=self.settings.secret_token,
                    allowed_updates=["message"],
                )
        else:
            # getUpdates refuses to run while a webhook is set (409 Conflict).
            await self.bot.delete_webhook(drop_pending_updates=False)

    async def _setup_then_run(self, done: bool = False) -> None:
        failures = 0
        while not done:
            try:
                await self._setup()
                done = True
            except InvalidToken:
                log.error("Telegram rejected the bot token; the adapter stays off")
                return
            except TelegramError as exc:
                failures += 1
                log.warning("Telegram set-up failed (attempt %s): %s", failures, exc)
                await asyncio.sleep(min(60.0, 0.5 * 2 ** min(failures, 7)))
        if self.settings.mode == "polling":
            await self.poll_forever()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        await self.bot.shutdown()

    # inbound -------------------------------------------------------------------------------
    async def handle_update(self, update: Update) -> None:
        """Commit one update's message; returns only after the commit (or when it has none)."""
        inbound = await to_inbound(update, self.bot, self.inbox_id, self.settings.max_file_bytes)
        if inbound is not None:
            await self.ingestor.ingest(inbound)

    async def poll_once(self, long_poll: int | None = None) -> int:
        """One getUpdates round; returns how many updates were committed."""
        updates = await self.bot.get_updates(
            offset=self.offset,
            timeout=self.settings.poll_timeout if long_poll is None else long_poll,
            allowed_updates=["message"],
        )
        done = 0
        for update in updates:
            await self.handle_update(update)  # raises: the offset stays, Telegram resends
            self.offset = update.update_id + 1
            done += 1
        return done

    async def poll_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self.poll_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                log.error("Telegram rejected the bot token; polling stops")
                return
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
            except Exception:
                failures += 1
                log.exception("Telegram polling failed (attempt %s)", failures)
                await asyncio.sleep(min(60.0, 0.5 * 2 ** min(failures, 7)))

    # outbound ------------------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            chat_id = int(message.to.value)
        except ValueError:
            return SendResult(DeliveryStatus.FAILED, detail="the contact has no Telegram chat")
        try:
            # a process that does not hold the polling lease sends with a bot never started
            await self.bot.initialize()  # (a no-op once initialized)
        except TelegramError as exc:
            return SendResult(DeliveryStatus.FAILED, detail=f"Telegram: {exc}")
        last: Message | None = None
        try:
            for file in message.attachments:
                upload = InputFile(file.data, filename=file.filename)
                if file.content_type in PHOTO_TYPES:
                    last = await self.bot.send_photo(chat_id, upload)
                else:
                    last = await self.bot.send_document(chat_id, upload)
            for part in split_text(message.body):
                last = await self.bot.send_message(chat_id, part)
        except Forbidden as exc:
            return SendResult(DeliveryStatus.FAILED, detail=f"the customer blocked the bot: {exc}")
        except RetryAfter as exc:
            return SendResult(
                DeliveryStatus.FAILED, detail=f"Telegram rate limit, retry after {exc.retry_after}"
            )
        except TelegramError as exc:
            return SendResult(DeliveryStatus.FAILED, detail=f"Telegram: {exc}")
        if last is None:
            return SendResult(DeliveryStatus.FAILED, detail="nothing to send")
        return SendResult(DeliveryStatus.SENT, provider_id=f"{chat_id}:{last.message_id}")


def _seconds(value: object) -> float:
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)  # type: ignore[arg-type]
