"""Over real SMTP: DSN bounces mark the reply failed; auto-acknowledgements go out once
per thread and never to automatic mail; broken MIME is kept with its problem shown; a
fax-to-email gateway's TIFF lands OCR'd in the fax inbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import col, func, select

from channels.base import DeliveryStatus
from channels.email.intake import InboxConfigs
from channels.email.runtime import EmailRuntime, start_email
from channels.fax.runtime import start_fax
from channels.fax.settings import FaxSettings
from hub.channel_runtime import stop_channels
from hub.services import Services
from models import Inbox, Interaction, Message, SenderKind
from tests.channels.email.conftest import Sink, email_settings
from tests.channels.email.helpers import customer_mail, eventually, messages_with, send, status_of
from tests.channels.fax.pages import FINE, page, tiff
from tests.support import require_tool


async def system_messages(services: Services, interaction_id: int) -> int:
    async with services.sessionmaker() as db:
        return (
            await db.exec(
                select(func.count()).where(
                    Message.interaction_id == interaction_id,
                    Message.sender_kind == SenderKind.SYSTEM,
                )
            )
        ).one()


def dsn_for(message_id: str, recipient: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@relay.test>\r\n"
        "To: support@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "Message-ID: <dsn-1@relay.test>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host relay.test.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.test\r\nArrival-Date: Sun, 22 Nov 2026 07:00:00 +0000\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <gone@customer.test>: Recipient address rejected\r\n"
        "\r\n--R\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: Support email <support@example.com>\r\nTo: {recipient}\r\n"
        f"Subject: Re: hi\r\nMessage-ID: {message_id}\r\n\r\nOur answer.\r\n"
        "--R--\r\n"
    ).encode()


async def test_a_dsn_marks_the_reply_failed_and_opens_nothing(
    services: Services, email_runtime: EmailRuntime, sink: Sink
):
    port = email_runtime.listener.port  # type: ignore[union-attr]
    mail = customer_mail("hi", "x", message_id="<b1@customer.test>", sender="gone@customer.test")
    await send(port, mail, sender="gone@customer.test")
    [inbound] = await messages_with(services, "<b1@customer.test>")
    reply = await services.outbox.reply(inbound.interaction_id, body="Our answer.", agent_id=None)
    await eventually(
        lambda: _has_status(services, reply.id, DeliveryStatus.SENT), "the reply was sent"
    )
    sent_id = (await status_of(services, reply.id)).source_id  # type: ignore[arg-type]
    received = await sink.wait_for(2)  # the acknowledgement and the reply, in either order
    assert sent_id in {m["Message-ID"] for m in received}
    assert sent_id is not None
    answer, line = await send(port, dsn_for(sent_id, "gone@customer.test"), sender="")
    assert answer == {} and "Delivery report" in line
    failed = await status_of(services, reply.id)  # type: ignore[arg-type]
    assert failed.delivery_status == DeliveryStatus.FAILED
    assert "5.1.1" in (failed.status_detail or "")
    assert "Recipient address rejected" in (failed.status_detail or "")
    async with services.sessionmaker() as db:
        assert len((await db.exec(select(Interaction))).all()) == 1
    assert await messages_with(services, "<dsn-1@relay.test>") == []


async def _has_status(services: Services, message_id: int, status: DeliveryStatus) -> bool:
    return (await status_of(services, message_id)).delivery_status == status


@pytest.mark.parametrize(
    ("headers", "envelope_from"),
    [
        ({"Auto-Submitted": "auto-replied"}, "carla@customer.test"),
        ({"Precedence": "bulk"}, "carla@customer.test"),
        ({"List-Id": "<news.customer.test>"}, "carla@customer.test"),
        ({"X-Auto-Response-Suppress": "OOF, AutoReply"}, "carla@customer.test"),
        ({}, ""),  # an empty return path (RFC 5321 §4.5.5)
    ],
)
async def test_automatic_mail_gets_no_acknowledgement(
    services: Services, email_runtime: EmailRuntime, headers: dict, envelope_from: str
):
    port = email_runtime.listener.port  # type: ignore[union-attr]
    mail = customer_mail("Out of office", "away", message_id="<oof@customer.test>", headers=headers)
    await send(port, mail, sender=envelope_from)
    [stored] = await messages_with(services, "<oof@customer.test>")
    # The acknowledgement would be committed before our 250: nothing to wait for.
    assert await system_messages(services, stored.interaction_id) == 0


async def test_one_acknowledgement_per_thread(
    services: Services, email_runtime: EmailRuntime, sink: Sink
):
    port = email_runtime.listener.port  # type: ignore[union-attr]
    await send(port, customer_mail("Order", "first", message_id="<o1@customer.test>"))
    [first] = await messages_with(services, "<o1@customer.test>")
    await send(
        port,
        customer_mail(
            "Re: Order", "second", message_id="<o2@customer.test>", in_reply_to="<o1@customer.test>"
        ),
    )
    [second] = await messages_with(services, "<o2@customer.test>")
    assert second.interaction_id == first.interaction_id
    assert await system_messages(services, first.interaction_id) == 1
    [ack] = await sink.wait_for(1)
    assert ack["Auto-Submitted"] == "auto-replied"


async def test_an_inbox_can_turn_its_acknowledgement_off_or_change_it(
    services: Services, email_runtime: EmailRuntime, sink: Sink
):
    async with services.sessionmaker() as db:
        inbox = (await db.exec(select(Inbox).where(Inbox.name == "Support email"))).one()
        inbox.config = {"auto_ack": {"enabled": True, "text": "Got it! Ticket {reference}."}}
        db.add(inbox)
        await db.commit()
    assert email_runtime.listener is not None
    await send(email_runtime.listener.port, customer_mail("A", "b", message_id="<k1@c.test>"))
    [stored] = await messages_with(services, "<k1@c.test>")
    [ack] = await sink.wait_for(1)
    assert ack.get_content().splitlines()[0] == f"Got it! Ticket [#{stored.interaction_id}]."

    async with services.sessionmaker() as db:
        inbox = (await db.exec(select(Inbox).where(Inbox.name == "Support email"))).one()
        inbox.config = {"auto_ack": {"enabled": False}}
        db.add(inbox)
        await db.commit()
    await send(email_runtime.listener.port, customer_mail("C", "d", message_id="<k2@c.test>"))
    [silent] = await messages_with(services, "<k2@c.test>")
    assert silent.interaction_id != stored.interaction_id
    assert await system_messages(services, silent.interaction_id) == 0


async def test_inbox_configs_are_read_afresh_once_for_everyone_asking_together(
    services: Services,
):
    configs = InboxConfigs(services.sessionmaker)
    async with services.sessionmaker() as db:
        inbox = (await db.exec(select(Inbox).where(Inbox.name == "Support email"))).one()
    reads: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "FROM inbox" in statement:
            reads.append(statement)

    engine = services.sessionmaker.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        together = await asyncio.gather(
            *(configs.get(inbox.id) for _ in range(8)),  # type: ignore[arg-type]
            configs.get(999_999),
        )
        assert len(reads) == 1
        assert together[:8] == [inbox.config] * 8 and together[8] is None
        async with services.sessionmaker() as db:
            row = await db.get(Inbox, inbox.id)
            assert row is not None
            row.config = {"auto_ack": False}
            db.add(row)
            await db.commit()
        assert await configs.get(inbox.id) == {"auto_ack": False}  # type: ignore[arg-type]
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_broken_mime_is_accepted_and_the_problem_kept(
    services: Services, email_runtime: EmailRuntime
):
    raw = (
        b"From: carla@customer.test\r\nTo: support@example.com\r\nSubject: broken\r\n"
        b"Message-ID: <broken@customer.test>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
        b"--XYZ\r\nContent-Type: text/plain; charset=x-unknown-8\r\n\r\n"
        b"Please call me back\r\n"  # and no closing boundary
    )
    answer, _ = await send(email_runtime.listener.port, raw)  # type: ignore[union-attr]
    assert answer == {}
    [stored] = await messages_with(services, "<broken@customer.test>")
    assert "Please call me back" in stored.body
    assert any("x-unknown-8" in p for p in stored.meta["problems"])


@pytest.fixture
async def gateway(services: Services, sink: Sink, tmp_path: Path) -> AsyncIterator[EmailRuntime]:
    require_tool("tesseract")
    await start_fax(services, FaxSettings(outgoing_dir=tmp_path / "fax-out"))
    runtime = await start_email(services, email_settings(sink.port))
    try:
        yield runtime
    finally:
        await services.outbox.close()
        await stop_channels(services)


async def test_a_fax_to_email_gateway_tiff_is_ocred_into_the_fax_inbox(
    services: Services, gateway: EmailRuntime
):
    mail = EmailMessage()
    mail["From"] = "Fax Gateway <gateway@faxprovider.test>"
    mail["To"] = "fax@example.com"
    mail["Subject"] = "Fax from +1 415 555 0123 (2 pages)"
    mail["Message-ID"] = "<fax-77@faxprovider.test>"
    mail.set_content("You have received a fax.")
    document = tiff([(page(["Shipping manifest 88"]), FINE), (page(["Ten pallets"]), FINE)])
    mail.add_attachment(document, maintype="image", subtype="tiff", filename="fax77.tif")
    await send(gateway.listener.port, mail, recipients=["fax@example.com"])  # type: ignore[union-attr]
    [stored] = await messages_with(services, "<fax-77@faxprovider.test>")
    assert stored.content_type == "fax"
    assert "Shipping manifest 88" in " ".join(stored.body.split())
    assert "Ten pallets" in stored.body
    assert stored.meta["fax"]["page_count"] == 2
    async with services.sessionmaker() as db:
        inbox = await db.get(Inbox, stored.inbox_id)
        interaction = await db.get(Interaction, stored.interaction_id)
        assert inbox is not None and inbox.kind == "fax"
        assert interaction is not None
        identity = (
            await db.exec(
                select(func.count()).where(
                    col(Message.interaction_id) == interaction.id,
                    Message.sender_kind == SenderKind.SYSTEM,
                )
            )
        ).one()
    assert identity == 0  # no email auto-acknowledgement for a fax
    from models import ContactIdentity

    async with services.sessionmaker() as db:
        numbers = (
            await db.exec(
                select(ContactIdentity.address).where(
                    ContactIdentity.contact_id == interaction.contact_id
                )
            )
        ).all()
    assert numbers == ["+14155550123"]
