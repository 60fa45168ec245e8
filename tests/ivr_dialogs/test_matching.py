"""Understanding callers: phrases, spoken digits, yes/no, numbers, dates, hours, typed text."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from ivr_dialogs import Digits, HangUp, NoInput, Utterance
from ivr_dialogs.events import text_to_event
from ivr_dialogs.hours import BusinessHours, hours_open
from ivr_dialogs.matching import (
    amount_from_keys,
    best_match,
    date_in,
    number_in,
    spoken_digits,
    yes_or_no,
)

TODAY = date(2026, 1, 5)


def test_phrases_match_whole_words_and_the_longest_wins() -> None:
    options = [(0, ["bill"]), (1, ["account balance", "balance"]), (2, ["agent"])]
    assert best_match("What's my ACCOUNT BALANCE?", options) == 1
    assert best_match("billing please", options) is None  # "bill" is not a word of it
    assert best_match("an agent, please!", options) == 2
    assert best_match("", options) is None


def test_spoken_digits() -> None:
    assert spoken_digits("one two three four") == "1234"
    assert spoken_digits("4 oh 7") == "407"
    assert spoken_digits("one two buckle my shoe") is None


@pytest.mark.parametrize(
    ("text", "answer"),
    [("yes", True), ("Yeah, sure.", True), ("that's right", True), ("nope", False),
     ("no thanks", False), ("sí", True), ("네", True), ("maybe", None), ("yes no", None)],
)  # fmt: skip
def test_yes_or_no(text: str, answer: bool | None) -> None:
    assert yes_or_no(text) is answer


@pytest.mark.parametrize(
    ("text", "number"),
    [("12.50", 12.5), ("1,200", 1200), ("42", 42), ("twenty five", 25),
     ("one hundred and five", 105), ("two thousand three hundred", 2300),
     ("12 dollars 50 cents", 12.5), ("twenty dollars and five cents", 20.05),
     ("lots", None)],
)  # fmt: skip
def test_numbers_in_speech(text: str, number: float | None) -> None:
    assert number_in(text) == number


def test_amounts_from_keys() -> None:
    assert amount_from_keys("12*5") == 12.5
    assert amount_from_keys("12*05") == 12.05
    assert amount_from_keys("300") == 300
    assert amount_from_keys("1**2") is None


@pytest.mark.parametrize(
    ("text", "order", "day"),
    [("today", "dmy", date(2026, 1, 5)), ("tomorrow", "dmy", date(2026, 1, 6)),
     ("2026-03-04", "dmy", date(2026, 3, 4)), ("03042026", "dmy", date(2026, 4, 3)),
     ("03042026", "mdy", date(2026, 3, 4)), ("20260304", "ymd", date(2026, 3, 4)),
     ("4/3/26", "dmy", date(2026, 3, 4)), ("March 4th", "dmy", date(2026, 3, 4)),
     ("the 4th of march 2027", "dmy", date(2027, 3, 4)), ("31022026", "dmy", None),
     ("next week", "dmy", None)],
)  # fmt: skip
def test_dates(text: str, order: str, day: date | None) -> None:
    assert date_in(text, TODAY, order) == day


def test_business_hours() -> None:
    hours = BusinessHours.parse(
        {"mon-fri": "08:00-12:00, 13:00-18:00", "sat": "09:00-12:00", "sun": "closed"},
        closed=[date(2026, 12, 25)],
    )
    monday = datetime(2026, 1, 5)
    assert hours.is_open(monday.replace(hour=9))
    assert not hours.is_open(monday.replace(hour=12, minute=30))  # lunch
    assert not hours.is_open(monday.replace(hour=18))
    assert hours.is_open(datetime(2026, 1, 10, 11, 59))  # Saturday
    assert not hours.is_open(datetime(2026, 1, 11, 10))  # Sunday
    assert not hours.is_open(datetime(2026, 12, 25, 10))  # a holiday on a Friday
    assert hours_open(None, monday) is True
    assert hours_open(False, monday) is False
    assert hours_open(lambda moment: moment.hour > 20, monday) is False
    with pytest.raises(ValueError, match="unknown day"):
        BusinessHours.parse({"someday": "09:00-10:00"})
    with pytest.raises(ValueError, match="bad hours"):
        BusinessHours.parse({"mon": "9 to 5"})


def test_typed_text_becomes_events() -> None:
    assert text_to_event("1234#") == Digits("1234#")
    assert text_to_event(" 1 2 ") == Digits("12")
    assert text_to_event("balance please") == Utterance("balance please", 1.0)
    assert text_to_event("") == NoInput()
    assert text_to_event(None) == NoInput()
    assert text_to_event("<noinput>") == NoInput()
    assert text_to_event("/hangup") == HangUp()
