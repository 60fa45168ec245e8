"""Matching what the caller said to the phrases a dialog expects (pure, no model)."""

from __future__ import annotations

import pytest

from speech.asr import closest_hint, hint_score, looks_looped

MENU = ["order status", "billing", "speak to an agent"]


@pytest.mark.parametrize(
    ("heard", "expected"),
    [
        ("I want to check my order status.", "order status"),  # said inside a sentence
        ("Bill and please.", "billing"),  # misheard inside a sentence (seen in CI)
        ("Building building, please.", "billing"),  # misheard, and repeated
        ("Billing.", "billing"),
        ("What's the weather like?", None),
        ("", None),
    ],
)
def test_a_misheard_phrase_still_finds_its_hint(heard: str, expected: str | None) -> None:
    assert closest_hint(heard, MENU) == expected


def test_short_hints_need_the_whole_answer() -> None:
    """A run of words may only stand for hints of five letters or more: "I don't know"
    must not count as "no"."""
    assert closest_hint("I don't know", ["yes", "no"]) is None
    assert closest_hint("No.", ["yes", "no"]) == "no"


@pytest.mark.parametrize(
    ("heard", "looped"),
    [
        ("No? No? No?", True),  # heard in CI for a synthesized "No."
        ("Billing. Billing.", True),  # "Billing." with the menu as hints
        ("Press 2 for support. Press 2 for support.", True),
        ("No.", False),
        ("no no", True),  # said or looped, it is decoded again, and only costs time
        ("No, not now.", False),
        ("I said no, not now.", False),
    ],
)
def test_a_decoding_loop_is_recognized_and_decoded_again(heard: str, looped: bool):
    assert looks_looped(heard, tokens=6, budget=40) is looped


@pytest.mark.parametrize(
    ("heard", "hint", "low", "high"),
    [
        ("Billing, please.", "billing", 1.0, 1.0),  # said word for word
        ("I want my account balance", "account balance", 1.0, 1.0),
        ("Bill and please.", "billing", 0.6, 0.99),  # misheard: close, not certain
        ("What's the weather like?", "billing", 0.0, 0.59),
        ("", "billing", 0.0, 0.0),
    ],
)
def test_hint_score_says_how_closely_an_expected_phrase_was_said(
    heard: str, hint: str, low: float, high: float
) -> None:
    assert low <= hint_score(heard, hint) <= high
