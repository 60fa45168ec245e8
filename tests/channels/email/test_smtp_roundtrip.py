"""Real SMTP both ways: a customer's mail → our listener → committed; the agent's reply →
our sender → a real SMTP relay, with threading headers; the customer's answer to it lands
in the same interaction."""

from __future__ import annotations

import aiosmtplib
import pytest
from sqlmodel import col, select

from channels.base import DeliveryStatus
from channels.email.runtime import EmailRuntime
from hub.services import Services
from models import (
    ContactIdentity,
    Direction,
    Interaction,
    InteractionState,
    Message,
    SenderKind,
)
from tests.channels.email.conftest import Sink
from tests.channels.email.helpers import (
    customer_mail,
    eventually,
    interaction_messages,
    interactions,
    messages_with,
    send,
    status_of,
)


async def test_threaded_conversation_over_real_smtp(
    services: Services, email_runtime: EmailRuntime, sink: Sink
):
    assert email_runtime.listener is not None
    port = email_runtime.listener.port
    first = customer_mail(
        "Printer is broken", "It prints only blank pages.", message_id="<c1@customer.test>"
    )
    answer, reply_line = await send(port, first)
    assert answer == {} and "accepted" in reply_line

    [stored] = await messages_with(services, "<c1@customer.test>")
    assert stored.direction == Direction.INBOUND
    assert stored.body.strip() == "It prints only blank pages."
    interaction_id = stored.interaction_id

    # The auto-acknowledgement goes out through the relay with the reference number.
    [ack] = await sink.wait_for(1)
    assert ack["To"] == "carla@customer.test"
    assert ack["Subject"] == f"Re: Printer is broken [#{interaction_id}]"
    assert ack["In-Reply-To"] == "<c1@customer.test>"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert f"[#{interaction_id}]" in ack.get_content()

    # The agent answers from the console.
    reply = await services.outbox.reply(
        interaction_id, body="Please check the toner cartridge.", agent_id=None
    )
    received = await sink.wait_for(2)
    out = received[1]
    await eventually(
        lambda: _status_is(services, reply.id, DeliveryStatus.SENT), "the reply is marked sent"
    )
    sent = await status_of(services, reply.id)  # type: ignore[arg-type]
    assert sent.source_id == out["Message-ID"]
    assert out["In-Reply-To"] == "<c1@customer.test>"
    assert "<c1@customer.test>" in out["References"]
    assert out["Subject"] == f"Re: Printer is broken [#{interaction_id}]"
    body = out.get_content()
    assert body.startswith("Please check the toner cartridge.")
    assert "> It prints only blank pages." in body

    # The customer answers the agent's mail: no tag in the subject, only In-Reply-To.
    answer2 = customer_mail(
        "Re: Printer",
        "The toner was empty, thanks!",
        message_id="<c2@customer.test>",
        in_reply_to=out["Message-ID"],
    )
    await send(port, answer2)
    [second] = await messages_with(services, "<c2@customer.test>")
    assert second.interaction_id == interaction_id
    thread = await interaction_messages(services, interaction_id)
    assert [(m.direction, m.sender_kind) for m in thread] == [
        (Direction.INBOUND, SenderKind.CONTACT),
        (Direction.OUTBOUND, SenderKind.SYSTEM),
        (Direction.OUTBOUND, SenderKind.AGENT),
        (Direction.INBOUND, SenderKind.CONTACT),
    ]
    assert len(await interactions(services)) == 1


async def _status_is(services: Services, message_id: int, status: DeliveryStatus) -> bool:
    return (await status_of(services, message_id)).delivery_status == status


async def test_subject_tag_threads_a_new_mail_from_the_same_customer(
    services: Services, email_runtime: EmailRuntime
):
    port = email_runtime.listener.port  # type: ignore[union-attr]
    await send(port, customer_mail("Invoice", "Where is it?", message_id="<t1@customer.test>"))
    [first] = await messages_with(services, "<t1@customer.test>")
    tagged = customer_mail(
        f"Again about [#{first.interaction_id}]", "Still waiting.", message_id="<t2@x.test>"
    )
    await send(port, tagged)
    [second] = await messages_with(services, "<t2@x.test>")
    assert second.interaction_id == first.interaction_id

    # A stranger guessing the number opens a new interaction instead.
    stranger = customer_mail(
        f"Re: [#{first.interaction_id}]",
        "let me in",
        message_id="<t3@evil.test>",
        sender="mallory@evil.test",
    )
    await send(port, stranger, sender="mallory@evil.test")
    [third] = await messages_with(services, "<t3@evil.test>")
    assert third.interaction_id != first.interaction_id


async def test_a_redelivered_mail_is_stored_once(services: Services, email_runtime: EmailRuntime):
    port = email_runtime.listener.port  # type: ignore[union-attr]
    mail = customer_mail("Hello", "twice", message_id="<dup@customer.test>")
    await send(port, mail)
    await send(port, mail)
    assert len(await messages_with(services, "<dup@customer.test>")) == 1


async def test_a_closed_thread_reopens_when_the_customer_answers(
    services: Services, email_runtime: EmailRuntime
):
    from hub.interactions import change_state
    from models import Interaction

    port = email_runtime.listener.port  # type: ignore[union-attr]
    await send(port, customer_mail("Done?", "first", message_id="<r1@customer.test>"))
    [first] = await messages_with(services, "<r1@customer.test>")
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, first.interaction_id)
        assert interaction is not None
        change_state(db, interaction, InteractionState.CLOSED, reason="test closes it")
        await db.commit()
    await send(
        port,
        customer_mail(
            "Re: Done?",
            "not quite",
            message_id="<r2@customer.test>",
            in_reply_to="<r1@customer.test>",
        ),
    )
    [second] = await messages_with(services, "<r2@customer.test>")
    assert second.interaction_id == first.interaction_id
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, first.interaction_id)
        assert interaction is not None and interaction.state == InteractionState.QUEUED


async def test_transient_relay_errors_are_retried_and_permanent_ones_fail(
    services: Services, email_runtime: EmailRuntime, sink: Sink
):
    port = email_runtime.listener.port  # type: ignore[union-attr]
    await send(
        port,
        customer_mail("Hi", "x", message_id="<x1@customer.test>", headers={"Precedence": "bulk"}),
    )
    [inbound] = await messages_with(services, "<x1@customer.test>")

    sink.replies = ["451 4.3.0 try later", "421 4.4.2 busy"]
    retried = await services.outbox.reply(inbound.interaction_id, body="one", agent_id=None)
    await eventually(
        lambda: _status_is(services, retried.id, DeliveryStatus.SENT), "sent after retries"
    )
    assert "after 3 attempts" in ((await status_of(services, retried.id)).status_detail or "")  # type: ignore[arg-type]

    sink.replies = ["550 5.1.1 no such user"]
    refused = await services.outbox.reply(inbound.interaction_id, body="two", agent_id=None)
    await eventually(
        lambda: _status_is(services, refused.id, DeliveryStatus.FAILED), "failed at once"
    )
    detail = (await status_of(services, refused.id)).status_detail or ""  # type: ignore[arg-type]
    assert "550" in detail and "no such user" in detail
    assert sink.replies == []


@pytest.mark.parametrize(
    ("recipient", "code", "words"),
    [
        ("nobody@example.com", 550, "No such mailbox"),
        ("support@elsewhere.test", 550, "Relaying denied"),
    ],
)
async def test_unknown_recipients_are_refused_with_a_reason(
    services: Services, email_runtime: EmailRuntime, recipient: str, code: int, words: str
):
    port = email_runtime.listener.port  # type: ignore[union-attr]
    mail = customer_mail("Hi", "x", message_id="<rcpt@customer.test>", to=recipient)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(port, mail, recipients=[recipient])
    [rcpt] = refused.value.recipients
    assert rcpt.code == code and words in rcpt.message
    assert await messages_with(services, "<rcpt@customer.test>") == []


async def test_an_oversized_message_is_refused_with_552(
    services: Services, email_runtime: EmailRuntime
):
    port = email_runtime.listener.port  # type: ignore[union-attr]
    mail = customer_mail("Big", "x" * 300_000, message_id="<big@customer.test>")
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await send(port, mail)
    assert refused.value.code == 552
    assert "size" in refused.value.message.lower() or "too much" in refused.value.message.lower()
    assert await messages_with(services, "<big@customer.test>") == []


async def test_mail_without_a_from_address_is_kept_with_the_envelope_sender(
    services: Services, email_runtime: EmailRuntime
):
    """An upstream server already accepted it: bouncing for a missing From loses the mail."""
    port = email_runtime.listener.port  # type: ignore[union-attr]
    no_from = b"Subject: who am I\r\nMessage-ID: <anon@x.test>\r\n\r\nno From header\r\n"
    await send(port, no_from, sender="Night.Shift@Customer.test")
    empty = b"From: Undisclosed\r\nSubject: x\r\nMessage-ID: <anon2@x.test>\r\n\r\nhi\r\n"
    await send(port, empty, sender="night.shift@customer.test")
    (first,) = await messages_with(services, "<anon@x.test>")
    (second,) = await messages_with(services, "<anon2@x.test>")
    assert (first.body.strip(), second.body.strip()) == ("no From header", "hi")
    for message in (first, second):
        assert "kept with night.shift@customer.test" in message.meta["problems"][0]
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, first.interaction_id)
        assert interaction is not None
        identities = (
            await db.exec(
                select(ContactIdentity).where(ContactIdentity.contact_id == interaction.contact_id)
            )
        ).all()
    assert [i.address for i in identities] == ["night.shift@customer.test"]


async def test_a_message_attributable_to_nobody_is_refused_with_554(
    services: Services, email_runtime: EmailRuntime
):
    port = email_runtime.listener.port  # type: ignore[union-attr]
    raw = b"Subject: who am I\r\nMessage-ID: <anon3@x.test>\r\n\r\nno From header\r\n"
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await send(port, raw, sender="")  # a null return path, and no From
    assert refused.value.code == 554
    assert "From" in refused.value.message
    assert await messages_with(services, "<anon3@x.test>") == []


async def test_two_messages_sharing_a_message_id_are_both_kept(
    services: Services, email_runtime: EmailRuntime
):
    """Deduplicated on the Message-ID plus what a relay does not change: a second message
    that reuses the id is kept, while the same message through another relay is not."""
    port = email_runtime.listener.port  # type: ignore[union-attr]
    first = customer_mail("Order 1", "first order", message_id="<same@customer.test>")
    second = customer_mail("Order 2", "a different order", message_id="<same@customer.test>")
    await send(port, first)
    await send(port, second)
    relayed = b"Received: from relay2.customer.test by mx.example.com; Tue, 1 Dec 2026\r\n"
    await send(port, relayed + second.as_bytes())  # the same second message, another hop
    await send(port, first)
    async with services.sessionmaker() as db:
        stored = (
            await db.exec(
                select(Message)
                .where(col(Message.source_id).startswith("<same@customer.test>"))
                .order_by(col(Message.id))
            )
        ).all()
    assert [m.body.strip() for m in stored] == ["first order", "a different order"]
    assert stored[0].source_id == "<same@customer.test>"  # replies referencing it thread


async def test_an_agent_reply_carries_its_attachments(
    services: Services, email_runtime: EmailRuntime, sink: Sink
):
    port = email_runtime.listener.port  # type: ignore[union-attr]
    mail = customer_mail(
        "Quote", "Send me a quote", message_id="<q1@customer.test>", headers={"Precedence": "bulk"}
    )
    await send(port, mail)  # bulk: no acknowledgement, so the sink gets only the reply
    [inbound] = await messages_with(services, "<q1@customer.test>")
    record = services.attachments.describe("quote.pdf", "application/pdf", b"%PDF-1.4 quote")
    await services.outbox.reply(
        inbound.interaction_id, body="Attached.", agent_id=None, attachments=[record]
    )
    [out] = await sink.wait_for(1)
    [part] = list(out.iter_attachments())
    assert part.get_filename() == "quote.pdf"
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == b"%PDF-1.4 quote"
