"""What a desk phone's REFER names (``hub.call_phone_transfer``), read from the demo
organisation on SQLite and PostgreSQL. The transfers themselves run through a real hub in
``tests/e2e/test_call_controls.py``."""

from __future__ import annotations

import pytest
from sqlmodel import select

from hub.call_phone_transfer import Destination, NotTransferred, destination, dialled
from hub.services import Services
from models import Agent, Queue
from tests.hub.routing.helpers import agent_id, queue_id, update


@pytest.mark.parametrize(
    ("refer_to", "user"),
    [
        ("sip:1002@127.0.0.1", "1002"),
        ("sip:%2B14155550123@gw.example;user=phone", "+14155550123"),
        ("sip:Billing@hub", "Billing"),
        ("sip:Level%202@hub", "Level 2"),
    ],
)
def test_the_dialled_part_of_the_refer_to(refer_to: str, user: str) -> None:
    assert dialled(refer_to) == user


@pytest.mark.parametrize(
    ("refer_to", "status"),
    [
        ("sip:1003@hub?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2", 603),  # attended
        ("sip:hub.example", 404),  # no user part
    ],
)
def test_what_the_phone_cannot_ask_for(refer_to: str, status: int) -> None:
    with pytest.raises(NotTransferred) as refused:
        dialled(refer_to)
    assert refused.value.status == status and refused.value.why


async def test_an_extension_a_queue_by_name_or_a_number_in_that_order(
    services: Services,
) -> None:
    alice, bob = await agent_id(services, "alice"), await agent_id(services, "bob")
    billing = await queue_id(services, "Billing")
    async with services.sessionmaker() as db:
        bob_ext = (await db.exec(select(Agent.extension).where(Agent.id == bob))).one()
        alice_ext = (await db.exec(select(Agent.extension).where(Agent.id == alice))).one()
        assert bob_ext and alice_ext
        to_bob = await destination(db, bob_ext, alice)  # digits, but an extension first
        assert (to_bob.kind, to_bob.id) == ("agent", bob) and to_bob.label
        assert await destination(db, "bILLING", alice) == Destination("queue", "Billing", billing)
        assert await destination(db, "(415) 555-0123", alice) == Destination(
            "number", "(415) 555-0123"
        )
        with pytest.raises(NotTransferred) as own:
            await destination(db, alice_ext, alice)
        assert own.value.status == 603
        with pytest.raises(NotTransferred) as unknown:
            await destination(db, "reception", alice)
        assert unknown.value.status == 404
        assert "reception is not an agent's extension, a queue or a phone number" in (
            unknown.value.why
        )
    # a disabled queue is not named
    await update(services, Queue, billing, active=False)
    async with services.sessionmaker() as db:
        with pytest.raises(NotTransferred):
            await destination(db, "billing", alice)
