"""The call service's database side: voice interactions meet SMS contacts, a call takes
the agent's whole capacity, and recordings cut short by a crash are repaired."""

from __future__ import annotations

import wave
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlmodel import select

from channels.base import Address, AddressKind, ChannelKind, InboundMessage
from hub import call_records as records
from hub.routing.work import agent_loads
from hub.services import Services
from models import (
    Agent,
    CallLeg,
    Inbox,
    Interaction,
    InteractionEvent,
    InteractionState,
    Offer,
    PresenceState,
    Recording,
)
from tests.hub.routing.helpers import chat, interaction, set_ready, update
from web.recordings import byte_range


async def voice_inbox(services: Services) -> Inbox:
    async with services.sessionmaker() as db:
        inbox = await records.inbox_for_dnis(db, "sip-style 1 (555) 0100")
    assert inbox is not None and inbox.kind == ChannelKind.VOICE
    return inbox


async def incoming(services: Services, caller: str, call_id: str = "c1") -> records.NewCall:
    inbox = await voice_inbox(services)
    async with services.sessionmaker() as db:
        return await records.open_inbound(
            db,
            inbox,
            raw_caller=caller,
            dnis="+15550100",
            sip_call_id=call_id,
            remote_uri=f"sip:{caller}@gw",
            node="test",
        )


async def test_unknown_dids_find_no_inbox_and_sms_and_voice_meet_on_one_contact(
    services: Services,
):
    async with services.sessionmaker() as db:
        assert await records.inbox_for_dnis(db, "+15559999999") is None
        sms = (await db.exec(select(Inbox).where(Inbox.kind == ChannelKind.SMS))).one()
    text = await services.ingest.ingest(
        InboundMessage(
            inbox_id=sms.id,  # type: ignore[arg-type]
            channel=ChannelKind.SMS,
            sender=Address(AddressKind.PHONE, "+15551230001"),
            body="I will call you",
        )
    )
    call = await incoming(services, "15551230001")  # the gateway sent it without "+"
    sms_interaction = await interaction(services, text.interaction_id)
    voice = await interaction(services, call.interaction_id)
    assert voice.contact_id == sms_interaction.contact_id
    assert voice.channel == "voice" and voice.state == InteractionState.SELF_SERVICE
    assert voice.data["caller"] == "+15551230001"
    anonymous = await incoming(services, "anonymous", "c2")
    assert (await interaction(services, anonymous.interaction_id)).contact_id != voice.contact_id


async def test_an_agent_on_a_call_is_offered_no_chat_unless_the_profile_allows(
    services: Services,
):
    (alice,) = await set_ready(services, "alice")
    call = await incoming(services, "+15551230002")
    assert await services.routing.enqueue(call.interaction_id, None)
    await services.routing.dispatch()
    assert (await interaction(services, call.interaction_id)).state == InteractionState.OFFERED
    waiting_chat = await chat(services, "hello while you talk")
    await services.routing.dispatch()
    assert (await interaction(services, waiting_chat)).state == InteractionState.QUEUED

    async with services.sessionmaker() as db:
        capacity = dict((await db.get(Agent, alice)).capacity)  # type: ignore[union-attr]
    await update(services, Agent, alice, capacity={**capacity, "beside_call": 1})
    await services.presence.set_presence(alice, PresenceState.READY)  # re-read by routing
    services.routing.invalidate_router()
    await services.routing.dispatch()
    assert (await interaction(services, waiting_chat)).state == InteractionState.OFFERED
    async with services.sessionmaker() as db:
        offers = (await db.exec(select(Offer).where(Offer.agent_id == alice))).all()
    assert {o.interaction_id for o in offers} == {call.interaction_id, waiting_chat}


async def test_the_call_slot_frees_at_hang_up(services: Services):
    (alice,) = await set_ready(services, "alice")
    call = await incoming(services, "+15551230003")
    await services.routing.enqueue(call.interaction_id, None)
    await services.routing.dispatch()
    async with services.sessionmaker() as db:
        offer = (
            await db.exec(select(Offer).where(Offer.interaction_id == call.interaction_id))
        ).one()
    await services.routing.accept_offer(offer.id, alice)  # type: ignore[arg-type]
    async with services.sessionmaker() as db:
        assert (await db.run_sync(agent_loads, [alice]))[alice] == {"voice": 1}
    await services.routing.wrap_up(call.interaction_id, agent_id=alice)  # hung up
    async with services.sessionmaker() as db:
        assert (await db.run_sync(agent_loads, [alice]))[alice] == {}


def test_a_recording_cut_short_is_repaired_so_it_plays(tmp_path: Path):
    path = tmp_path / "cut.wav"
    pcm = (np.sin(np.arange(16000) / 5) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(np.repeat(pcm, 2).tobytes())  # 2 s, then the process dies:
    data = bytearray(path.read_bytes())
    data[4:8] = data[40:44] = b"\0\0\0\0"  # header sizes never written
    path.write_bytes(bytes(data) + b"\x01\x02")  # and a torn last frame
    assert records.repair_wav(path) == 2.0
    with wave.open(str(path)) as wav:
        assert wav.getnframes() == 16000 and wav.getnchannels() == 2


def test_byte_ranges_follow_rfc_9110():
    assert byte_range(None, 1000) is None
    assert byte_range("bytes=0-99", 1000) == (0, 99)
    assert byte_range("bytes=900-", 1000) == (900, 999)
    assert byte_range("bytes=-10", 1000) == (990, 999)
    assert byte_range("bytes=990-5000", 1000) == (990, 999)
    assert byte_range("bytes=1000-", 1000) == "unsatisfiable"
    assert byte_range("bytes=0-1,5-9", 1000) is None  # several ranges: the whole file
    assert byte_range("items=0-1", 1000) is None


async def test_one_transaction_opens_a_call_and_one_stores_its_answer(services: Services):
    def request(dnis: str, call_id: str) -> records.InboundCall:
        return records.InboundCall(
            raw_caller="+15551230009",
            dnis=dnis,
            sip_call_id=call_id,
            remote_uri="sip:+15551230009@gw",
            node="test",
        )

    runner = services.transactions
    assert await records.open_call(runner, request("+15559999999", "x1")) is None
    assert await records.open_call(runner, request("anonymous", "x2")) is None
    created = await records.open_call(runner, request("1 (555) 0100", "c9"))
    assert created is not None and created.inbox is not None and not created.blocked
    assert created.interaction is not None and created.interaction.id == created.interaction_id
    answered_at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    recording_id = await records.answered(
        runner,
        created.leg_id,
        answered_at,
        Recording(interaction_id=created.interaction_id, path="r.wav", legs=[created.leg_id]),
    )
    async with services.sessionmaker() as db:
        stored = await db.get(Interaction, created.interaction_id)
        events = (
            await db.exec(
                select(InteractionEvent).where(
                    InteractionEvent.interaction_id == created.interaction_id
                )
            )
        ).all()
        leg = await db.get(CallLeg, created.leg_id)
        recording = await db.get(Recording, recording_id)
    assert stored is not None and stored.state == InteractionState.SELF_SERVICE
    assert stored.inbox_id == created.inbox.id and stored.data["caller"] == "+15551230009"
    assert [(e.from_state, e.to_state) for e in events] == [("new", "self_service")]
    assert leg is not None and leg.sip_call_id == "c9"
    assert leg.answered_at is not None and leg.answered_at.replace(tzinfo=UTC) == answered_at
    assert recording is not None and recording.legs == [created.leg_id]
