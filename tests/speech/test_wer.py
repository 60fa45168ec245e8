"""The WER the round-trip tests assert on compares what was said, not how it was written."""

from __future__ import annotations

import pytest

from speech.wer import normalize_for_wer, word_error_rate, word_errors


@pytest.mark.parametrize(
    ("reference", "hypothesis"),
    [
        ("Your balance is forty five dollars.", "Your balance is $45."),
        ("Press one for sales.", "Press 1 for sales"),
        ("Code four four one two.", "Code 4-4-1-2."),
        ("My PIN is five zero nine three.", "My PIN is 5. 0. 9. 3."),
        ("It costs one hundred and twenty dollars", "It costs $120"),
        ("Two thousand calls", "2000 calls"),
    ],
)
def test_spelling_differences_are_not_errors(reference: str, hypothesis: str) -> None:
    assert word_errors(reference, hypothesis) == (0, len(normalize_for_wer(reference)))


def test_real_differences_are_counted() -> None:
    assert word_errors("the total amount due is 45 dollars", "The total amount to is $45.") == (
        1,
        7,
    )
    assert word_errors("press one for sales", "") == (4, 4)
    assert word_errors("yes", "yes yes yes") == (2, 1)
    assert word_error_rate([("a b c d", "a b c d"), ("e f", "e x")]) == pytest.approx(1 / 6)
    assert normalize_for_wer("Code four four one two. Twenty five.") == ["code", "4412", "25"]
