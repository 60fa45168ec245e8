"""The SMPP adapter against a real SMSC (smpp34's server): MO in, long UCS-2 reply out,
delivery receipts, duplicates, refusals and reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import smpp34
from sqlmodel import col, func, select

from channels.base import Address, AddressKind, ChannelKind, DeliveryStatus, OutboundMessage
from channels.sms.runtime import start_sms
from channels.sms.settings import SmsSettings
from channels.sms.smpp_channel import SmppChannel
from channels.sms.udh import ESM_UDHI, Concat, parse_concat, split_udh
from hub.services import Services
from models import ContactIdentity, Direction, Inbox, Interaction, Message
from tests.channels.sms.conftest import Smsc

OK, RX_T_APPN, RX_P_APPN = 0, 0x64, 0x65
CUSTOMER = "15551234567"  # as the SMSC sends it, TON international


async def start_adapter(services: Services, smsc: Smsc, tmp_path: Path) -> list:
    """The SMPP adapter bound to the SMSC; returns its stoppers (last started, first)."""
    settings = SmsSettings(
        smpp_host="127.0.0.1",
        smpp_port=smsc.port,
        smpp_system_id="hub",
        smpp_password="secret",
        smpp_reconnect_max_seconds=0.5,
        source_addr="+15550001000",
        spool_dir=str(tmp_path / "parts"),
    )
    return await start_sms(services, settings)


async def stop_adapter(stoppers: list) -> None:
    for stop in reversed(stoppers):
        await stop()


@pytest.fixture
async def adapter(
    services: Services, smsc: Smsc, sms_inbox: Inbox, tmp_path: Path
) -> AsyncIterator[SmppChannel]:
    stoppers = await start_adapter(services, smsc, tmp_path)
    try:
        yield services.extras["sms_smpp"]
    finally:
        await stop_adapter(stoppers)


async def inbound(services: Services) -> list[Message]:
    async with services.sessionmaker() as db:
        return list(
            (
                await db.exec(
                    select(Message)
                    .where(Message.direction == Direction.INBOUND)
                    .order_by(col(Message.id))
                )
            ).all()
        )


async def wait_for_status(services: Services, message_id: int, wanted: DeliveryStatus) -> Message:
    for _ in range(200):
        async with services.sessionmaker() as db:
            message = await db.get(Message, message_id)
            assert message is not None
            if message.delivery_status == wanted:
                return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"message {message_id} stayed {message.delivery_status}")


async def send_receipt(
    esme: smpp34.Esme, message_id: str, stat: str = "DELIVRD", err: str = "000"
) -> None:
    """A delivery receipt as SMSCs send them: the Appendix B text and the TLVs (§5.3.2)."""
    state = {"DELIVRD": b"\x02", "UNDELIV": b"\x05"}[stat]
    resp = await esme.deliver_sm(
        "15551234567",
        f"id:{message_id} sub:001 dlvrd:001 submit date:2611220700 "
        f"done date:2611220701 stat:{stat} err:{err} text:".encode(),
        source_addr="15550001000",
        esm_class=0x04,
        tlvs=[
            smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\0"),
            smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, state),
        ],
    )
    assert resp.command_status == OK


async def status_of(services: Services, message_id: int) -> Message:
    async with services.sessionmaker() as db:
        message = await db.get(Message, message_id)
    assert message is not None
    return message


async def deliver_mo(esme: smpp34.Esme, text: str, **kw: object) -> int:
    resp = await esme.deliver_sm(
        "15550001000",
        text.encode("utf-16-be"),
        source_addr=CUSTOMER,
        source_addr_ton=1,
        data_coding=8,
        **kw,  # type: ignore[arg-type]
    )
    return resp.command_status


async def test_mo_in_long_ucs2_reply_out_and_dlr(
    services: Services, smsc: Smsc, adapter: SmppChannel, sms_inbox: Inbox
) -> None:
    esme = await smsc.esme()
    # MO in: the deliver_sm_resp is OK only once the message is committed.
    assert await deliver_mo(esme, "Здравствуйте, где мой заказ?") == OK
    (stored,) = await inbound(services)
    assert stored.body == "Здравствуйте, где мой заказ?"
    assert stored.inbox_id == sms_inbox.id
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, stored.interaction_id)
        assert interaction is not None and interaction.channel == ChannelKind.SMS
        identity = (
            await db.exec(
                select(ContactIdentity).where(ContactIdentity.contact_id == interaction.contact_id)
            )
        ).one()
    assert (identity.kind, identity.address) == ("phone", "+15551234567")

    # Reply out: 150 Cyrillic characters need UCS-2 and three parts of at most 67.
    reply_text = ("Ваш заказ №4512 отправлен сегодня курьером. " * 4)[:150] + " 🙂"
    reply = await services.outbox.reply(interaction.id, body=reply_text, agent_id=None)
    parts = [await smsc.submitted() for _ in range(3)]
    texts, refs = [], set()
    for seq, (_id, event) in enumerate(parts, start=1):
        assert event.destination_addr == "15551234567"
        assert (event.dest_addr_ton, event.dest_addr_npi) == (1, 1)
        assert event.source_addr == "15550001000"
        assert event.data_coding == 8
        assert event.esm_class & ESM_UDHI
        assert event.registered_delivery & 1
        assert len(event.short_message) <= 140
        header, body = split_udh(event.short_message)
        concat = parse_concat(header)
        assert concat == Concat(concat.ref, 3, seq)  # type: ignore[union-attr]
        refs.add(concat.ref)  # type: ignore[union-attr]
        texts.append(body)
    assert len(refs) == 1
    assert b"".join(texts).decode("utf-16-be") == reply_text
    sent = await wait_for_status(services, reply.id, DeliveryStatus.SENT)  # type: ignore[arg-type]
    assert sent.source_id == parts[0][0]

    # Receipts: one per part; the reply is delivered when all three are.
    for n, (message_id, _event) in enumerate(parts, start=1):
        await send_receipt(esme, message_id)
        if n < 3:
            current = await status_of(services, reply.id)  # type: ignore[arg-type]
            assert current.delivery_status == DeliveryStatus.SENT
            assert current.status_detail == f"{n} of 3 parts delivered"
    delivered = await wait_for_status(services, reply.id, DeliveryStatus.DELIVERED)  # type: ignore[arg-type]
    assert delivered.status_detail == "all 3 parts delivered"


async def test_part_receipts_after_a_restart_still_find_their_reply(
    services: Services, smsc: Smsc, sms_inbox: Inbox, tmp_path: Path
) -> None:
    """The hub restarts between sending a three-part reply and its receipts: each part's
    receipt still lands, and one undeliverable part fails the reply."""
    stoppers = await start_adapter(services, smsc, tmp_path)
    esme = await smsc.esme()
    assert await deliver_mo(esme, "hi") == OK
    (stored,) = await inbound(services)
    reply = await services.outbox.reply(stored.interaction_id, body="x" * 400, agent_id=None)
    ids = [(await smsc.submitted())[0] for _ in range(3)]
    await wait_for_status(services, reply.id, DeliveryStatus.SENT)  # type: ignore[arg-type]
    await stop_adapter(stoppers)

    stoppers = await start_adapter(services, smsc, tmp_path)  # a new process knows nothing
    try:
        esme = await smsc.esme()
        await send_receipt(esme, ids[2])
        current = await status_of(services, reply.id)  # type: ignore[arg-type]
        assert (current.delivery_status, current.status_detail) == (
            DeliveryStatus.SENT,
            "1 of 3 parts delivered",
        )
        await send_receipt(esme, ids[1], "UNDELIV", "034")
        failed = await wait_for_status(services, reply.id, DeliveryStatus.FAILED)  # type: ignore[arg-type]
        assert failed.status_detail == "part 2 of 3: UNDELIV err:034"
        await send_receipt(esme, ids[0])  # a later good part does not undo the failure
        still = await status_of(services, reply.id)  # type: ignore[arg-type]
        assert still.delivery_status == DeliveryStatus.FAILED
    finally:
        await stop_adapter(stoppers)


async def test_failed_receipt_marks_the_reply_failed(
    services: Services, smsc: Smsc, adapter: SmppChannel
) -> None:
    esme = await smsc.esme()
    assert await deliver_mo(esme, "hi") == OK
    (stored,) = await inbound(services)
    reply = await services.outbox.reply(stored.interaction_id, body="Hello!", agent_id=None)
    message_id, event = await smsc.submitted()
    assert event.short_message == b"Hello!" and event.data_coding == 0
    await wait_for_status(services, reply.id, DeliveryStatus.SENT)  # type: ignore[arg-type]
    resp = await esme.deliver_sm(
        "15551234567",
        f"id:{message_id} stat:UNDELIV err:034".encode(),
        source_addr="15550001000",
        esm_class=0x04,
    )
    assert resp.command_status == OK
    failed = await wait_for_status(services, reply.id, DeliveryStatus.FAILED)  # type: ignore[arg-type]
    assert failed.status_detail == "UNDELIV err:034"


async def test_duplicate_mo_is_stored_once(
    services: Services, smsc: Smsc, adapter: SmppChannel
) -> None:
    esme = await smsc.esme()
    assert await deliver_mo(esme, "same text") == OK
    assert await deliver_mo(esme, "same text") == OK  # the SMSC redelivers
    assert [m.body for m in await inbound(services)] == ["same text"]


async def test_an_mo_with_a_nul_is_kept_with_a_note_not_redelivered_forever(
    services: Services, smsc: Smsc, adapter: SmppChannel
) -> None:
    """UCS-2 U+0000 in the text: PostgreSQL's text cannot hold it, so a commit of it as it
    came fails every time and the SMSC would redeliver it forever. It is kept, replaced."""
    esme = await smsc.esme()
    assert await deliver_mo(esme, "order\x00 42") == OK
    [stored] = await inbound(services)
    assert stored.body == "order\ufffd 42"
    assert any("NUL" in problem for problem in stored.meta["problems"])


async def test_concatenated_mo_is_reassembled_once(
    services: Services, smsc: Smsc, adapter: SmppChannel
) -> None:
    esme = await smsc.esme()
    header = lambda seq: bytes([5, 0, 3, 0x7A, 2, seq])  # noqa: E731
    one, two = "Первая часть, ", "вторая часть."

    async def send(seq: int, text: str) -> int:
        resp = await esme.deliver_sm(
            "15550001000",
            header(seq) + text.encode("utf-16-be"),
            source_addr=CUSTOMER,
            source_addr_ton=1,
            esm_class=0x40,
            data_coding=8,
        )
        return resp.command_status

    assert await send(2, two) == OK  # out of order: spooled, acknowledged
    assert await inbound(services) == []
    assert await send(1, one) == OK
    assert await send(1, one) == OK  # a redelivered part after completion: kept aside
    assert [m.body for m in await inbound(services)] == [one + two]


async def test_resp_is_negative_until_the_commit_works(
    services: Services, smsc: Smsc, adapter: SmppChannel, sms_inbox: Inbox
) -> None:
    esme = await smsc.esme()
    async with services.sessionmaker() as db:
        inbox = await db.get(Inbox, sms_inbox.id)
        inbox.active = False  # type: ignore[union-attr]
        db.add(inbox)
        await db.commit()
    # ingest refuses a disabled inbox: nothing stored, and the SMSC is told to retry
    assert await deliver_mo(esme, "please call me") == RX_T_APPN
    assert await inbound(services) == []
    async with services.sessionmaker() as db:
        inbox = await db.get(Inbox, sms_inbox.id)
        inbox.active = True  # type: ignore[union-attr]
        db.add(inbox)
        await db.commit()
    assert await deliver_mo(esme, "please call me") == OK  # the SMSC's redelivery
    assert await deliver_mo(esme, "please call me") == OK
    assert [m.body for m in await inbound(services)] == ["please call me"]


async def test_resp_is_negative_when_the_database_is_gone(
    services: Services, smsc: Smsc, adapter: SmppChannel
) -> None:
    esme = await smsc.esme()
    await services.engine.dispose()
    url = services.settings.resolved_database_url
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).unlink()  # the database file is gone
    else:
        import asyncpg

        base, name = url.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)
        conn = await asyncpg.connect(f"{base}/postgres")
        try:
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await conn.close()
    assert await deliver_mo(esme, "anyone there?") == RX_T_APPN


async def test_alphanumeric_sender_is_refused_for_good(
    services: Services, smsc: Smsc, adapter: SmppChannel
) -> None:
    esme = await smsc.esme()
    resp = await esme.deliver_sm(
        "15550001000", b"Your code is 1234", source_addr="ACME", source_addr_ton=5
    )
    assert resp.command_status == RX_P_APPN
    assert await inbound(services) == []


async def test_reconnects_after_the_smsc_unbinds(
    services: Services, smsc: Smsc, adapter: SmppChannel
) -> None:
    esme = await smsc.esme()
    await esme.unbind()
    again = await smsc.esme()  # the client binds again by itself
    assert adapter.client.binds == 2
    assert await deliver_mo(again, "after reconnect") == OK
    assert [m.body for m in await inbound(services)] == ["after reconnect"]


async def test_submit_refused_by_the_smsc_fails_the_reply(
    services: Services, smsc: Smsc, adapter: SmppChannel
) -> None:
    esme = await smsc.esme()
    assert await deliver_mo(esme, "hi") == OK
    (stored,) = await inbound(services)
    smsc.reject_with = smpp34.ESME_RMSGQFUL
    reply = await services.outbox.reply(stored.interaction_id, body="Hello", agent_id=None)
    failed = await wait_for_status(services, reply.id, DeliveryStatus.FAILED)  # type: ignore[arg-type]
    assert "submit_sm_resp 0x00000014" in (failed.status_detail or "")


async def test_counts_one_message_per_mo(
    services: Services, smsc: Smsc, adapter: SmppChannel
) -> None:
    esme = await smsc.esme()
    results = await asyncio.gather(*(deliver_mo(esme, f"message {i}") for i in range(20)))
    assert set(results) == {OK}
    async with services.sessionmaker() as db:
        count = (await db.exec(select(func.count()).select_from(Message))).one()
    assert count == 20


async def test_receipt_that_beats_the_outbox_commit_still_lands(
    services: Services, smsc: Smsc, adapter: SmppChannel, sms_inbox: Inbox
) -> None:
    """An SMSC can send the DLR before the outbox has stored the message_id the
    submit_sm_resp gave; the receipt waits for it instead of being dropped."""
    esme = await smsc.esme()
    assert await deliver_mo(esme, "hi") == OK
    (stored,) = await inbound(services)
    async with services.sessionmaker() as db:
        pending = Message(
            interaction_id=stored.interaction_id,
            inbox_id=sms_inbox.id,  # type: ignore[arg-type]
            direction=Direction.OUTBOUND,
            sender_kind="agent",
            body="On its way.",
            delivery_status=DeliveryStatus.PENDING,
        )
        db.add(pending)
        await db.commit()
    result = await adapter.send(
        OutboundMessage(
            message_id=pending.id,  # type: ignore[arg-type]
            interaction_id=stored.interaction_id,
            inbox_id=sms_inbox.id,  # type: ignore[arg-type]
            channel=ChannelKind.SMS,
            to=Address(AddressKind.PHONE, "+15551234567"),
            body="On its way.",
        )
    )
    message_id, _event = await smsc.submitted()
    assert result.provider_id == message_id

    async def slow_outbox_commit() -> None:
        await asyncio.sleep(0.3)
        async with services.sessionmaker() as db:
            row = await db.get(Message, pending.id)
            row.source_id = result.provider_id  # type: ignore[union-attr]
            row.delivery_status = DeliveryStatus.SENT  # type: ignore[union-attr]
            db.add(row)
            await db.commit()

    commit = asyncio.create_task(slow_outbox_commit())
    resp = await esme.deliver_sm(
        "15551234567",
        f"id:{message_id} stat:DELIVRD err:000".encode(),
        source_addr="15550001000",
        esm_class=0x04,
    )
    await commit
    assert resp.command_status == OK
    async with services.sessionmaker() as db:
        row = await db.get(Message, pending.id)
    assert row.delivery_status == DeliveryStatus.DELIVERED  # type: ignore[union-attr]
