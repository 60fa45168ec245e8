"""Limits on calls out (``hub.call_limits``): allowed prefixes, refused number types and
daily caps, each check stored, each refusal audited, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlmodel import col, select

from hub.call_limits import CallOutRefused, Policy, check_call_out, number_problem
from hub.services import Services
from hub.settings import Settings
from models import AuditEntry, CallOut, Inbox
from tests.hub.routing.helpers import agent_id

POLICY = Policy.from_settings(Settings())  # US: "+1" only, premium and the like refused


@pytest.mark.parametrize(
    ("typed", "allowed"),
    [
        ("(415) 555-0123", True),  # national, read in the default region
        ("+14155550123", True),
        ("+19005551234", False),  # premium rate
        ("+447911123456", False),  # another country
        ("+1555", False),  # not a valid number
        ("call me", False),
    ],
)
def test_which_numbers_may_be_called(typed: str, allowed: bool) -> None:
    _e164, reason, prompt = number_problem(typed, POLICY)
    assert (reason == "") is allowed
    assert (prompt == "") is allowed


def test_a_premium_number_is_named_in_the_reason_and_the_prompt() -> None:
    e164, reason, prompt = number_problem("+19005551234", POLICY)
    assert e164 == "+19005551234"
    assert "premium-rate" in reason and "premium-rate" in prompt


def test_the_allowed_prefixes_are_a_setting() -> None:
    policy = replace(POLICY, prefixes=("+44",))
    assert number_problem("+447911123456", policy)[1] == ""
    assert "outside the allowed prefixes" in number_problem("+14155550123", policy)[1]


async def _inbox_id(services: Services) -> int:
    async with services.sessionmaker() as db:
        inbox = (await db.exec(select(Inbox).where(Inbox.kind == "voice"))).first()
        assert inbox is not None and inbox.id is not None
        return inbox.id


async def test_refusals_are_stored_and_audited_and_caps_count_allowed_calls(
    services: Services,
) -> None:
    services.settings.calls_out_daily_cap_inbox = 2
    services.settings.calls_out_daily_cap_agent = 1
    inbox = await _inbox_id(services)
    alice = await agent_id(services, "alice")
    bob = await agent_id(services, "bob")

    with pytest.raises(CallOutRefused) as premium:
        await check_call_out(services, kind="callback", number="+19005551234", inbox_id=inbox)
    assert "premium-rate" in premium.value.reason
    # allowed: one for alice, then her cap stops her second; bob takes the inbox's last one
    assert (
        await check_call_out(
            services, kind="dial", number="4155550123", inbox_id=inbox, agent_id=alice
        )
        == "+14155550123"
    )
    with pytest.raises(CallOutRefused, match="Your daily cap of 1"):
        await check_call_out(
            services, kind="dial", number="+14155550124", inbox_id=inbox, agent_id=alice
        )
    await check_call_out(services, kind="forward", number="+14155550125", inbox_id=inbox)
    with pytest.raises(CallOutRefused, match="inbox's daily cap of 2"):
        await check_call_out(
            services, kind="dial", number="+14155550126", inbox_id=inbox, agent_id=bob
        )

    async with services.sessionmaker() as db:
        rows = (await db.exec(select(CallOut).order_by(col(CallOut.id)))).all()
        audits = (
            await db.exec(
                select(AuditEntry)
                .where(AuditEntry.action == "call_out.refused")
                .order_by(col(AuditEntry.id))
            )
        ).all()
    assert [(r.kind, r.allowed) for r in rows] == [
        ("callback", False),
        ("dial", True),
        ("dial", False),
        ("forward", True),
        ("dial", False),
    ]
    assert len(audits) == 3
    assert audits[0].after is not None and audits[0].after["number"] == "+19005551234"
    assert "premium-rate" in audits[0].after["reason"]


async def test_an_unknown_kind_is_a_programming_error(services: Services) -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        await check_call_out(services, kind="fax", number="+14155550123")
