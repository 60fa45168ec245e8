"""Click to dial's rules that need no call: which numbers can be dialled (and in which
region a number without "+" is read), what a failed customer leg shows the agent, and
the caller ID an inbox presents."""

from __future__ import annotations

import pytest

from channels.voice.sip_endpoint import CallFailed
from hub.outbound_calls import DialRefused, caller_id, dialable_number, outcome_of
from models import Inbox


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
