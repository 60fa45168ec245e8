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
from hub.delivery import parts_of
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
    assert event.name == "interaction" and event.data["interaction_id"] == result.interaction_id
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


def sent_reply(interaction_id: int, inbox: int, provider_id: str) -> Message:
    """An agent's reply the channel has taken, under the provider's id."""
    return Message(
        interaction_id=interaction_id,
        inbox_id=inbox,
        direction="out",
        sender_kind="agent",
        body="reply",
        delivery_status=DeliveryStatus.SENT,
        source_id=provider_id,
    )


async def test_delivery_status_moves_forward_only(services: Services):
    inbox = await inbox_id(services, ChannelKind.SMS)
    first = await services.ingest.ingest(sms(inbox, "+14155550108", "hi", "d-0"))
    async with services.sessionmaker() as db:
        out = sent_reply(first.interaction_id, inbox, "prov-1")
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


async def test_receipts_for_every_part_at_once_deliver_the_message(services: Services):
    """Receipts for the parts of one long SMS arrive together (an SMSC window): each sees
    the others' commits, so the message ends delivered, not stuck at "sent"."""
    inbox = await inbox_id(services, ChannelKind.SMS)
    first = await services.ingest.ingest(sms(inbox, "+14155550109", "hi", "p-0"))
    ids = tuple(f"smsc-{n}" for n in range(1, 7))
    async with services.sessionmaker() as db:
        out = sent_reply(first.interaction_id, inbox, ids[0])
        db.add(out)
        await db.flush()
        db.add_all(parts_of(out, ids))
        await db.commit()
    updates = [DeliveryUpdate(inbox, i, DeliveryStatus.DELIVERED, "DELIVRD") for i in ids]
    assert all(await asyncio.gather(*map(services.ingest.update_delivery, updates)))
    async with services.sessionmaker() as db:
        stored = await db.get(Message, out.id)
    assert stored is not None
    assert (stored.delivery_status, stored.status_detail) == (
        DeliveryStatus.DELIVERED,
        "all 6 parts delivered",
    )


def email(inbox: int, sender: str, source_id: str, refs: tuple[str, ...] = ()) -> InboundMessage:
    return InboundMessage(
        inbox,
        ChannelKind.EMAIL,
        Address(AddressKind.EMAIL, sender),
        "text",
        source_id=source_id,
        subject="Help",
        thread_refs=refs,
    )


async def test_one_batch_threads_as_if_each_message_were_alone(services: Services):
    """Messages stored together see the earlier ones of their batch: threads, contacts,
    references (the newest referenced message wins) and redeliveries."""
    sms_inbox = await inbox_id(services, ChannelKind.SMS)
    mail = await inbox_id(services, ChannelKind.EMAIL)
    stored_before = await services.ingest.ingest(email(mail, "k@x.org", "<k0>"))
    r = await asyncio.gather(
        services.ingest.ingest(sms(sms_inbox, "+14155550120", "one", "bt-1")),
        services.ingest.ingest(sms(sms_inbox, "+14155550121", "other", "bt-2")),
        services.ingest.ingest(sms(sms_inbox, "+14155550120", "two", "bt-3")),
        services.ingest.ingest(email(mail, "k@x.org", "<k1>")),
        services.ingest.ingest(email(mail, "k@x.org", "<k2>")),
        services.ingest.ingest(email(mail, "k@x.org", "<k3>", refs=("<k1>", "<k2>", "<k0>"))),
        services.ingest.ingest(email(mail, "k@x.org", "<k4>", refs=("<k0>",))),
        services.ingest.ingest(sms(sms_inbox, "+14155550120", "two", "bt-3")),
        services.ingest.ingest(email(mail, "k@x.org", "<k0>")),
        services.ingest.ingest(email(mail, "k@x.org", "<k5>", refs=("<k1>",))),
        services.ingest.ingest(email(mail, "k@x.org", "<k6>", refs=("<k2>", "<k1>"))),
    )
    assert r[0].interaction_id == r[2].interaction_id != r[1].interaction_id
    assert r[0].contact_id == r[2].contact_id != r[1].contact_id
    assert len({r[3].interaction_id, r[4].interaction_id, stored_before.interaction_id}) == 3
    assert r[5].interaction_id == r[4].interaction_id  # <k2> is newer than <k1> and <k0>
    assert r[6].interaction_id == stored_before.interaction_id
    assert r[7].duplicate and r[7].message_id == r[2].message_id
    assert r[8].duplicate and r[8].message_id == stored_before.message_id
    assert r[9].interaction_id == r[3].interaction_id
    assert r[10].interaction_id == r[4].interaction_id  # <k5> is newer, but not referenced
    assert not any(x.duplicate for x in r[:7] + r[9:])
    async with services.sessionmaker() as db:
        events = (
            await db.exec(
                select(InteractionEvent).where(
                    col(InteractionEvent.interaction_id).in_({x.interaction_id for x in r})
                )
            )
        ).all()
    assert len(events) == 5  # one "new → queued" per interaction, none for a continuation


async def test_a_bad_message_fails_alone_in_its_batch(services: Services):
    inbox = await inbox_id(services, ChannelKind.SMS)
    refused = InboundMessage(
        inbox, ChannelKind.SMS, Address(AddressKind.PHONE, "+14155550130"), None
    )  # type: ignore[arg-type]
    r = await asyncio.gather(
        services.ingest.ingest(sms(inbox, "+14155550131", "ok", "bad-1")),
        services.ingest.ingest(refused),  # the database refuses it (body NOT NULL)
        services.ingest.ingest(sms(inbox, "not a number", "x", "bad-2")),
        services.ingest.ingest(sms(99999, "+14155550132", "x", "bad-3")),
        services.ingest.ingest(sms(inbox, "+14155550131", "ok too", "bad-4")),
        return_exceptions=True,
    )
    assert isinstance(r[1], Exception) and isinstance(r[2], Exception)
    assert isinstance(r[3], UnknownInbox)
    assert not isinstance(r[0], BaseException) and not isinstance(r[4], BaseException)
    assert r[0].interaction_id == r[4].interaction_id
    async with services.sessionmaker() as db:
        count = (
            await db.exec(select(func.count()).where(col(Message.source_id).like("bad-%")))
        ).one()
    assert count == 2


async def test_a_merged_contact_is_followed(services: Services):
    from hub.contacts import merge_contacts

    inbox = await inbox_id(services, ChannelKind.SMS)
    keep = await services.ingest.ingest(sms(inbox, "+14155550140", "a", "m-1"))
    gone = await services.ingest.ingest(sms(inbox, "+14155550141", "b", "m-2"))
    async with services.sessionmaker() as db:
        await merge_contacts(db, keep.contact_id, gone.contact_id)
        await db.commit()
    again = await services.ingest.ingest(sms(inbox, "+14155550141", "c", "m-3"))
    assert again.contact_id == keep.contact_id
    assert again.interaction_id == gone.interaction_id  # its open chat moved with it


async def test_an_overlong_subject_is_cut_to_the_column_not_refused(services: Services):
    """Found by review: on PostgreSQL a 301-character subject failed the mail on every
    redelivery, so the peer could never get it stored."""
    inbox = await inbox_id(services, ChannelKind.EMAIL)
    result = await services.ingest.ingest(
        InboundMessage(
            inbox_id=inbox,
            channel=ChannelKind.EMAIL,
            sender=Address(AddressKind.EMAIL, "long@example.com"),
            body="see subject",
            subject="x" * 1000,
            source_id="<long-subject@example.com>",
        )
    )
    async with services.sessionmaker() as db:
        stored = await db.get(Message, result.message_id)
        interaction = await db.get(Interaction, result.interaction_id)
    assert stored is not None and stored.subject == "x" * 300
    assert interaction is not None and interaction.subject == "x" * 300
