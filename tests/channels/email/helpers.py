"""Helpers for email tests: a customer's mail client and database look-ups."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

import aiosmtplib
from sqlmodel import col, select

from hub.services import Services
from models import Interaction, Message


def customer_mail(
    subject: str,
    body: str,
    *,
    message_id: str,
    sender: str = "Carla Customer <Carla@Customer.test>",
    to: str = "support@example.com",
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


async def send(
    port: int,
    message: EmailMessage | bytes,
    *,
    sender: str = "carla@customer.test",
    recipients: list[str] | None = None,
) -> tuple[dict, str]:
    """Send through our listener like a customer's MTA would; returns aiosmtplib's answer.

    ``sender=""`` sends with an empty return path (``MAIL FROM:<>``), as bounces do.
    """
    if sender == "":
        raw = message if isinstance(message, bytes) else message.as_bytes()
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        async with client:
            errors, line = await client.sendmail("", recipients or ["support@example.com"], raw)
        return errors, line
    return await aiosmtplib.send(
        message,
        hostname="127.0.0.1",
        port=port,
        sender=sender,
        recipients=recipients or ["support@example.com"],
        start_tls=False,
        use_tls=False,
        timeout=30,
    )


async def messages_with(services: Services, source_id: str) -> list[Message]:
    async with services.sessionmaker() as db:
        return list((await db.exec(select(Message).where(Message.source_id == source_id))).all())


async def interaction_messages(services: Services, interaction_id: int) -> list[Message]:
    async with services.sessionmaker() as db:
        return list(
            (
                await db.exec(
                    select(Message)
                    .where(Message.interaction_id == interaction_id)
                    .order_by(col(Message.id))
                )
            ).all()
        )


async def interactions(services: Services) -> list[Interaction]:
    async with services.sessionmaker() as db:
        return list((await db.exec(select(Interaction).order_by(col(Interaction.id)))).all())


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15.0
) -> None:
    """Wait for background work (the outbox's delivery task) without a timed assertion."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


async def status_of(services: Services, message_id: int) -> Message:
    async with services.sessionmaker() as db:
        found = await db.get(Message, message_id)
        assert found is not None
        return found
