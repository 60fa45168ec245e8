"""Start and stop the channel adapters that the settings enable.

Each adapter gets the ``Services`` (for ``ingest`` and ``outbox``) and registers its
sender with the outbox. Adapters started here are stopped in reverse order.
"""

from __future__ import annotations

from hub.services import Services


async def start_channels(services: Services) -> None:
    services.extras.setdefault("stoppers", [])
    # SMS (SMPP client, Twilio-compatible provider) and Telegram, from HUB_SMS_* / HUB_TELEGRAM_*
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


async def stop_channels(services: Services) -> None:
    for stop in reversed(services.extras.get("stoppers", [])):
        await stop()
