"""Ingest: every channel's message is committed once, on the right contact and thread."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import col, func, select

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    DeliveryStatus,
    DeliveryUpdate,
    InboundAttachment,
    InboundMessage,
)
from hub.events import ROUTING_TOPIC, interaction_topic
from hub.ingest import UnknownInbox
from hub.services import Services
from models import Contact, Inbox, Interaction, InteractionEvent, InteractionState, Message


async def inbox_id(services: Services, kind: ChannelKind) -> int:
    async with services.sessionmaker() as db:
        inbox = (await db.exec(select(Inbox).where(Inbox.kind == kind.value))).one()
        return inbox.id  # type: ignore[return-value]


def sms(inbox: int, number: str, body: str, source_id: str | None) -> InboundMessage:
    return InboundMessage(
        inbox_id=inbox,
        channel=ChannelKind.SMS,
        sender=Address(AddressKind.PHONE, number),
        body=body,
        source_id=source_id,
    )


async def test_new_message_opens_a_queued_interaction_and_wakes_routing(services: Services):
    inbox = await inbox_id(services, ChannelKind.SMS)
    async with services.bus.subscribe([ROUTING_TOPIC]) as events:
        result = await services.ingest.ingest(sms(inbox, "+1 415 555 0100", "hello", "smsc-1"))
        event = await asyncio.wait_for(anext(events), 2)
    assert event.name == "wake" and event.data["interaction_id"] == result.interaction_id
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, result.interaction_id)
        assert interaction is not None
        assert interaction.state == InteractionState.QUEUED
        assert interaction.queued_at is not None
        history = (
            await db.exec(
                select(InteractionEvent).where(
                    InteractionEvent.interaction_id == result.interaction_id
                )
            )
        ).all()
        assert [(h.from_state, h.to_state) for h in history] == [("new", "queued")]


async def test_duplicate_source_id_is_stored_once(services: Services):
    inbox = await inbox_id(services, ChannelKind.SMS)
    first = await services.ingest.ingest(sms(inbox, "+14155550101", "hi", "smsc-dup"))
    again = await services.ingest.ingest(sms(inbox, "+14155550101", "hi", "smsc-dup"))
    assert again.duplicate and not first.duplicate
    assert again.message_id == first.message_id
    async with services.sessionmaker() as db:
        count = (
            await db.exec(select(func.count()).where(col(Message.source_id) == "smsc-dup"))
        ).one()
    assert count == 1


async def test_concurrent_redeliveries_store_one_copy(services: Services):
    inbox = await inbox_id(services, ChannelKind.SMS)
    results = await asyncio.gather(
        *(services.ingest.ingest(sms(inbox, "+14155550102", "x", "race-1")) for _ in range(5))
    )
    assert len({r.message_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1


async def test_one_number_is_one_contact_across_formats_and_channels(services: Services):
    sms_inbox = await inbox_id(services, ChannelKind.SMS)
    fax_inbox = await inbox_id(services, ChannelKind.FAX)
    a = await services.ingest.ingest(sms(sms_inbox, "(415) 555-0103", "a", "s-1"))
    b = await services.ingest.ingest(
        InboundMessage(
            inbox_id=fax_inbox,
            channel=ChannelKind.FAX,
            sender=Address(AddressKind.PHONE, "+1-415-555-0103"),
            body="fax text",
            source_id="fax-1",
        )
    )
    assert a.contact_id == b.contact_id
    assert a.interaction_id != b.interaction_id  # one interaction per channel episode


async def test_chat_messages_continue_the_open_conversation(services: Services):
    inbox = await inbox_id(services, ChannelKind.SMS)
    first = await services.ingest.ingest(sms(inbox, "+14155550104", "one", "c-1"))
    second = await services.ingest.ingest(sms(inbox, "+14155550104", "two", "c-2"))
    assert first.interaction_id == second.interaction_id


async def test_email_reply_threads_by_reference_and_reopens_a_closed_thread(services: Services):
    inbox = await inbox_id(services, ChannelKind.EMAIL)
    sender = Address(AddressKind.EMAIL, "Jane@Example.COM")
    first = await services.ingest.ingest(
        InboundMessage(inbox, ChannelKind.EMAIL, sender, "first", source_id="<a@x>", subject="Help")
    )
    unrelated = await services.ingest.ingest(
        InboundMessage(inbox, ChannelKind.EMAIL, sender, "new", source_id="<b@x>", subject="Other")
    )
    assert unrelated.interaction_id != first.interaction_id
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, first.interaction_id)
        assert interaction is not None
        interaction.state = InteractionState.CLOSED
        db.add(interaction)
        await db.commit()
    reply = await services.ingest.ingest(
        InboundMessage(
            inbox,
            ChannelKind.EMAIL,
            Address(AddressKind.EMAIL, "jane@example.com"),
            "re",
            source_id="<c@x>",
            subject="Re: Help",
            thread_refs=("<a@x>",),
        )
    )
    assert reply.interaction_id == first.interaction_id
    assert reply.contact_id == first.contact_id  # emails are case-normalized
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, first.interaction_id)
        assert interaction is not None and interaction.state == InteractionState.QUEUED


async def test_subject_tag_only_threads_for_the_same_customer(services: Services):
    inbox = await inbox_id(services, ChannelKind.EMAIL)
    owner = await services.ingest.ingest(
        InboundMessage(
            inbox, ChannelKind.EMAIL, Address(AddressKind.EMAIL, "o@x.org"), "hi", source_id="<o1>"
        )
    )
    tag = f"Re: [#{owner.interaction_id}] hi"
    same = await services.ingest.ingest(
        InboundMessage(
            inbox,
            ChannelKind.EMAIL,
            Address(AddressKind.EMAIL, "o@x.org"),
            "more",
            source_id="<o2>",
            subject=tag,
        )
    )
    stranger = await services.ingest.ingest(
        InboundMessage(
            inbox,
            ChannelKind.EMAIL,
            Address(AddressKind.EMAIL, "evil@x.org"),
            "inject",
            source_id="<e1>",
            subject=tag,
        )
    )
    assert same.interaction_id == owner.interaction_id
    assert stranger.interaction_id != owner.interaction_id


async def test_attachments_are_stored_by_content(services: Services):
    inbox = await inbox_id(services, ChannelKind.SMS)
    data = b"%PDF-1.4 fake but bytes are bytes"
    msg = InboundMessage(
        inbox_id=inbox,
        channel=ChannelKind.SMS,
        sender=Address(AddressKind.PHONE, "+14155550105"),
        body="see attached",
        source_id="att-1",
        attachments=(InboundAttachment("a.pdf", "application/pdf", data),),
    )
    result = await services.ingest.ingest(msg)
    async with services.sessionmaker() as db:
        stored = await db.get(Message, result.message_id)
    assert stored is not None
    [record] = stored.attachments
    assert record["size"] == len(data)
    assert services.attachments.get(record["sha256"]) == data


async def test_blocked_contact_is_kept_but_not_queued(services: Services):
    inbox = await inbox_id(services, ChannelKind.SMS)
    first = await services.ingest.ingest(sms(inbox, "+14155550106", "spam", "b-1"))
    async with services.sessionmaker() as db:
        contact = await db.get(Contact, first.contact_id)
        assert contact is not None
        contact.blocked = True
        interaction = await db.get(Interaction, first.interaction_id)
        assert interaction is not None
        interaction.state = InteractionState.CLOSED
        db.add_all([contact, interaction])
        await db.commit()
    second = await services.ingest.ingest(sms(inbox, "+14155550106", "more spam", "b-2"))
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, second.interaction_id)
        assert interaction is not None and interaction.state == InteractionState.CLOSED
        assert await db.get(Message, second.message_id) is not None


async def test_unknown_inbox_is_refused(services: Services):
    with pytest.raises(UnknownInbox):
        await services.ingest.ingest(sms(99999, "+14155550107", "x", "u-1"))


async def test_delivery_status_moves_forward_only(services: Services):
    inbox = await inbox_id(services, ChannelKind.SMS)
    first = await services.ingest.ingest(sms(inbox, "+14155550108", "hi", "d-0"))
    async with services.sessionmaker() as db:
        out = Message(
            interaction_id=first.interaction_id,
            inbox_id=inbox,
            direction="out",
            sender_kind="agent",
            body="reply",
            delivery_status=DeliveryStatus.SENT,
            source_id="prov-1",
        )
        db.add(out)
        await db.commit()
    async with services.bus.subscribe([interaction_topic(first.interaction_id)]) as events:
        assert await services.ingest.update_delivery(
            DeliveryUpdate(inbox, "prov-1", DeliveryStatus.DELIVERED)
        )
        assert (await asyncio.wait_for(anext(events), 2)).name == "message-status"
    await services.ingest.update_delivery(DeliveryUpdate(inbox, "prov-1", DeliveryStatus.SENT))
    assert not await services.ingest.update_delivery(
        DeliveryUpdate(inbox, "nope", DeliveryStatus.DELIVERED)
    )
    async with services.sessionmaker() as db:
        stored = await db.get(Message, out.id)
        assert stored is not None and stored.delivery_status == DeliveryStatus.DELIVERED
