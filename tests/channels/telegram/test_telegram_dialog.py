"""The inbox's dialog answers a Telegram chat through the local Bot API stand-in."""

from __future__ import annotations

from channels.telegram.channel import TelegramChannel
from hub.services import Services
from models import Inbox
from tests.channels.telegram.botapi import CHAT, LocalBotApi, text_update
from tests.channels.telegram.test_polling import polling, wait_for_inbound  # noqa: F401
from tests.hub.text_dialog_support import (
    account_endpoint,
    assert_billing_path,
    bot_lines,
    handed_over,
    use_demo_dialog,
)


async def test_the_dialog_answers_on_telegram_and_queues_with_what_it_collected(
    services: Services,
    bot_api: LocalBotApi,
    polling: TelegramChannel,  # noqa: F811
    telegram_inbox: Inbox,
) -> None:
    await use_demo_dialog(services, "telegram")
    with account_endpoint() as base:
        services.settings.public_url = base  # the dialog's "/demo/accounts/…" lookup
        await services.start()
        bot_api.push_update(text_update(910001, 61, "hello"))
        (first,) = await wait_for_inbound(services, 1)
        await bot_lines(services, first.interaction_id, 1)
        bot_api.push_update(text_update(910002, 62, "billing please"))
        await bot_lines(services, first.interaction_id, 2)
        bot_api.push_update(text_update(910003, 63, "123456"))
        lines = await bot_lines(services, first.interaction_id, 3)
        interaction, queue = await handed_over(services, first.interaction_id)
    sent = [call.params for call in bot_api.calls_to("sendMessage")]
    assert [p["text"] for p in sent] == lines
    assert {p["chat_id"] for p in sent} == {str(CHAT["id"])}
    assert_billing_path(interaction, queue, lines, chose="said “billing please”")
