"""Start and stop the channel adapters that the settings and the inboxes enable.

Each adapter gets the ``Services`` (for ``ingest`` and ``outbox``) and registers its
sender with the outbox. Adapters started here are stopped in reverse order.

Connections that only one process may hold run under database leases
(``services.extras["leases"]``, hub.leases). When an admin saves an inbox, every hub
process hears ``config``/``inbox`` on the bus and restarts that inbox's adapters with what
is saved now (``reload_inbox``): no restart of the hub is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from channels.base import ChannelKind
from hub.inboxes import CONFIG_TOPIC, DELIVER_EVENT, INBOX_EVENT, OUTBOX_TOPIC
from hub.leases import LeaseKeeper
from hub.services import Services

log = logging.getLogger(__name__)


async def start_channels(services: Services) -> None:
    services.extras.setdefault("stoppers", [])
    settings = services.settings
    services.extras["leases"] = LeaseKeeper(
        services.sessionmaker,
        settings.node_name,
        settings.lease_seconds,
        settings.lease_renew_seconds,
    )
    # SMS (SMPP client, Twilio-compatible provider) and Telegram, from HUB_SMS_* / HUB_TELEGRAM_*
    # and each inbox's saved settings
    from channels.sms.runtime import start_sms
    from channels.telegram.runtime import start_telegram

    services.extras["stoppers"].extend(await start_sms(services))
    services.extras["stoppers"].extend(await start_telegram(services))
    # Fax (upload API, HylaFAX spool, sender) and email (SMTP listener, relay sender, IMAP),
    # from HUB_FAX_* / HUB_EMAIL_*; fax first, so the email gateway can OCR faxes by mail.
    from channels.email.runtime import start_email
    from channels.fax.runtime import start_fax

    await start_fax(services)
    await start_email(services)
    # Voice: the SIP endpoint and the call service, from HUB_VOICE_* (on by default).
    from channels.voice.runtime import start_voice

    services.extras["stoppers"].extend(await start_voice(services))
    services.extras["stoppers"].append(start_config_listener(services))


def start_config_listener(services: Services) -> Callable[[], Awaitable[None]]:
    """Listen for inbox saves and handed-on replies; returns the stopper."""
    listener = asyncio.create_task(_listen(services), name="inbox-config")

    async def stop_listener() -> None:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener

    return stop_listener


async def deliver_here(services: Services, inbox_id: int, kind: str, message_id: int) -> bool:
    """Deliver a reply another process handed on, if this process holds its connection."""
    runtime = services.extras.get("sms")
    if kind != ChannelKind.SMS.value or runtime is None or inbox_id not in runtime.smpp:
        return False
    await services.outbox.deliver(message_id)
    return True


async def reload_inbox(services: Services, inbox_id: int, kind: str) -> None:
    """Restart the adapters of one inbox in this process with its saved settings."""
    extras = services.extras
    if kind == ChannelKind.SMS.value and "sms" in extras:
        await extras["sms"].reload(inbox_id)
    elif kind == ChannelKind.TELEGRAM.value and "telegram_runtime" in extras:
        await extras["telegram_runtime"].reload(inbox_id)
    elif kind in (ChannelKind.EMAIL.value, ChannelKind.FAX.value) and "email" in extras:
        if kind == ChannelKind.EMAIL.value:
            await extras["email"].reload(services, inbox_id)
        else:
            await extras["email"].reload_recipients(services)
    # voice reads an inbox's DIDs and dialog per call; web chat per request: nothing to do


async def _listen(services: Services) -> None:
    while True:
        try:
            await _subscribe(services)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the inbox config listener failed; listening again")
            await asyncio.sleep(1.0)


async def _deliver_handed_on(services: Services, data: dict) -> None:
    try:
        await deliver_here(
            services, int(data["inbox_id"]), str(data["kind"]), int(data["message_id"])
        )
    except Exception:
        log.exception("delivering handed-on message %s failed", data.get("message_id"))


async def _subscribe(services: Services) -> None:
    sending: set[asyncio.Task[None]] = set()
    while True:  # the bus accepts subscribers once the app has started
        try:
            subscription = services.bus.subscribe([CONFIG_TOPIC, OUTBOX_TOPIC])
            events = await subscription.__aenter__()
            break
        except RuntimeError:
            await asyncio.sleep(0.05)
    try:
        async for event in events:
            if event.name == DELIVER_EVENT:  # sent in its own task: a slow SMSC waits alone
                task = asyncio.create_task(_deliver_handed_on(services, event.data))
                sending.add(task)
                task.add_done_callback(sending.discard)
                continue
            if event.name != INBOX_EVENT:
                continue
            try:
                await reload_inbox(services, int(event.data["inbox_id"]), str(event.data["kind"]))
                log.info("inbox %s reloaded", event.data.get("inbox_id"))
            except Exception:
                log.exception("reloading inbox %s failed", event.data.get("inbox_id"))
    finally:
        await subscription.__aexit__(None, None, None)


async def stop_channels(services: Services) -> None:
    for stop in reversed(services.extras.get("stoppers", [])):
        await stop()
