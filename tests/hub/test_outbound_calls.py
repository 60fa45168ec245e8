"""Click to dial's rules that need no call: which numbers can be dialled (and in which
region a number without "+" is read), what a failed customer leg shows the agent, and
the caller ID an inbox presents."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlmodel import select

from channels.voice.registrar import Binding
from channels.voice.settings import VoiceSettings
from channels.voice.sip_endpoint import CallFailed, SipEndpoint
from hub.calls import CallService
from hub.outbound_calls import (
    DialRefused,
    OutboundDialer,
    caller_id,
    dialable_number,
    outcome_of,
)
from hub.services import Services
from models import (
    CallLeg,
    CallLegKind,
    Contact,
    ContactIdentity,
    Inbox,
    InteractionState,
    PresenceState,
)
from tests.hub.routing.helpers import agent, interaction, set_ready
from tests.ports import rtp_range


@pytest.mark.parametrize(
    ("typed", "region", "e164"),
    [
        ("(415) 555-0123", "US", "+14155550123"),
        ("+1 415 555 0123", "GB", "+14155550123"),  # an international number ignores region
        ("020 7946 0123", "GB", "+442079460123"),
        ("02-312-3456", "KR", "+8223123456"),
    ],
)
def test_numbers_are_normalized_to_e164_in_the_default_region(
    typed: str, region: str, e164: str
) -> None:
    assert dialable_number(typed, region) == e164


@pytest.mark.parametrize("typed", ["555-01", "hello", "+1 999 000 0000", "   "])
def test_a_number_that_cannot_be_dialled_is_refused_with_422_naming_it(typed: str) -> None:
    with pytest.raises(DialRefused) as refused:
        dialable_number(typed, "US")
    assert refused.value.status == 422
    if typed.strip():
        assert repr(typed.strip()) in refused.value.reason


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (486, "busy"),
        (600, "busy"),
        (408, "no answer"),  # our own ring timeout
        (480, "no answer"),
        (487, "no answer"),
        (603, "declined"),
        (503, "failed (503 Service Unavailable)"),
    ],
)
def test_a_failed_customer_leg_tells_the_agent_why(status: int, shown: str) -> None:
    reason = "Service Unavailable" if status == 503 else "x"
    assert outcome_of(CallFailed(status, reason)) == shown


def test_the_inbox_did_is_the_caller_id_in_e164() -> None:
    assert caller_id(Inbox(name="a", kind="voice", config={"did": "+1 (555) 0100"})) == "+15550100"
    assert caller_id(Inbox(name="b", kind="voice", config={"dids": ["15550199"]})) == "+15550199"


class _Silent(asyncio.DatagramProtocol):
    """A desk phone that is registered but never answers (its INVITEs go nowhere)."""

    def __init__(self) -> None:
        self.invites: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"INVITE "):
            self.invites.append(data)


async def test_an_outbound_call_holds_the_agent_until_the_phone_fails_then_ends_with_why(
    services: Services, tmp_path: Path
) -> None:
    """On SQLite and PostgreSQL: the interaction is stored ACTIVE with the agent (one call
    at a time), and a phone that never picks up ends it with that reason, freeing the agent."""
    low, high = rtp_range()
    endpoint = SipEndpoint(
        VoiceSettings(
            bind_port=0,
            rtp_port_min=low,
            rtp_port_max=high,
            recordings_dir=tmp_path / "rec",
            trunk_host="127.0.0.1",
        )
    )
    await endpoint.start()
    loop = asyncio.get_running_loop()
    transport, phone = await loop.create_datagram_endpoint(_Silent, local_addr=("127.0.0.1", 0))
    try:
        (alice,) = await set_ready(services, "alice")
        extension = (await agent(services, alice)).extension
        assert extension
        port = transport.get_extra_info("sockname")[1]
        endpoint.registrar._bindings[extension] = Binding(
            extension,
            f"sip:{extension}@127.0.0.1:{port}",
            ("127.0.0.1", port),
            time.time() + 600,
            ("127.0.0.1", port),
        )
        services.settings.dial_agent_timeout_seconds = 0.5
        dialer = OutboundDialer(CallService(services, endpoint))

        interaction_id = await dialer.dial(alice, "(415) 555-0123")
        stored = await interaction(services, interaction_id)
        assert stored.state == InteractionState.ACTIVE and stored.agent_id == alice
        assert stored.channel == "voice" and stored.data["direction"] == "outbound"
        assert stored.data["callee"] == "+14155550123"
        assert stored.data["caller_id"] == "+15550100"  # the demo voice inbox's DID
        assert (await agent(services, alice)).presence == PresenceState.BUSY
        with pytest.raises(DialRefused, match="on a call already"):
            await dialer.dial(alice, "+14155550124")

        await asyncio.gather(*dialer.tasks)
        ended = await interaction(services, interaction_id)
        assert ended.state == InteractionState.CLOSED
        assert ended.data["call_outcome"] == "your phone did not answer (408 no answer)"
        assert phone.invites and b"answer-after=0" in phone.invites[0]
        assert (await agent(services, alice)).presence == PresenceState.READY
        async with services.sessionmaker() as db:
            (leg,) = (
                await db.exec(select(CallLeg).where(CallLeg.interaction_id == interaction_id))
            ).all()
            contact = await db.get(Contact, ended.contact_id)
            identity = (
                await db.exec(
                    select(ContactIdentity).where(ContactIdentity.contact_id == ended.contact_id)
                )
            ).one()
        assert leg.kind == CallLegKind.AGENT and leg.answered_at is None and leg.ended_at
        assert contact is not None and identity.address == "+14155550123"
    finally:
        transport.close()
        await endpoint.stop()


async def test_an_outbound_call_left_half_set_up_by_a_dead_process_is_ended_at_start(
    services: Services, tmp_path: Path
) -> None:
    """The process died while the agent's phone rang (no leg written yet): the next start
    ends the interaction as dropped, and the agent is free again."""
    (alice,) = await set_ready(services, "alice")
    endpoint = SipEndpoint(VoiceSettings(bind_port=0, trunk_host="127.0.0.1"))
    dead = OutboundDialer(CallService(services, endpoint))
    async with services.sessionmaker() as db:
        inbox = await OutboundDialer._inbox(db, None)
    interaction_id = await dead._store(alice, inbox, "+14155550123", "+15550100")
    assert (await agent(services, alice)).presence == PresenceState.BUSY

    restarted = OutboundDialer(CallService(services, endpoint))
    assert await restarted.recover() == 1
    ended = await interaction(services, interaction_id)
    assert ended.state == InteractionState.CLOSED
    assert ended.data["call_outcome"] == "dropped: the hub restarted"
    assert (await agent(services, alice)).presence == PresenceState.READY
    assert await restarted.recover() == 0


async def test_stopping_the_hub_while_the_phone_rings_cancels_the_call(
    services: Services, tmp_path: Path
) -> None:
    low, high = rtp_range()
    endpoint = SipEndpoint(
        VoiceSettings(bind_port=0, rtp_port_min=low, rtp_port_max=high, trunk_host="127.0.0.1")
    )
    await endpoint.start()
    loop = asyncio.get_running_loop()
    transport, phone = await loop.create_datagram_endpoint(_Silent, local_addr=("127.0.0.1", 0))
    try:
        (alice,) = await set_ready(services, "alice")
        extension = (await agent(services, alice)).extension
        assert extension
        port = transport.get_extra_info("sockname")[1]
        endpoint.registrar._bindings[extension] = Binding(
            extension,
            f"sip:{extension}@127.0.0.1:{port}",
            ("127.0.0.1", port),
            time.time() + 600,
            ("127.0.0.1", port),
        )
        dialer = OutboundDialer(CallService(services, endpoint))  # the phone may ring 20 s
        interaction_id = await dialer.dial(alice, "+14155550123")
        async with asyncio.timeout(10):
            while not phone.invites:  # the phone is ringing
                await asyncio.sleep(0.01)
        await dialer.stop()
        ended = await interaction(services, interaction_id)
        assert ended.state == InteractionState.CLOSED
        assert ended.data["call_outcome"] == "cancelled"
        assert (await agent(services, alice)).presence == PresenceState.READY
        assert not dialer.tasks
    finally:
        transport.close()
        await endpoint.stop()
