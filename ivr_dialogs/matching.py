"""Turning what a caller typed or said into values: phrases, digits, yes/no, numbers, dates.

Recognizers hand us lower-case words without punctuation at best, so matching works on
normalised words: a phrase matches when its words appear together in the utterance
("I want my **account balance** please").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from functools import lru_cache

_PUNCTUATION = re.compile(r"[^\w\s'.,/-]+|(?<!\d)[.,](?!\d)", re.UNICODE)
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    """Lower case, punctuation gone (decimal points kept), single spaces."""
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text.lower())).strip()


def phrase_in(utterance: str, phrase: str) -> bool:
    """Whether the normalised phrase's words appear together in the normalised utterance."""
    return f" {phrase} " in f" {utterance} "


def best_match(utterance: str, candidates: Iterable[tuple[int, Sequence[str]]]) -> int | None:
    """Index of the candidate whose longest matching phrase is longest (ties: first)."""
    said = normalize(utterance)
    best: int | None = None
    best_length = 0
    for index, phrases in candidates:
        for phrase in phrases:
            wanted = normalize(phrase)
            if wanted and len(wanted) > best_length and phrase_in(said, wanted):
                best, best_length = index, len(wanted)
    return best


_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "to": "2", "too": "2",
    "three": "3", "four": "4", "for": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "star": "*", "hash": "#", "pound": "#",
}  # fmt: skip


def spoken_digits(text: str) -> str | None:
    """ "one two 3 4" -> "1234"; None when other words are mixed in."""
    out = []
    for word in normalize(text).replace("-", " ").split():
        if word.isdecimal():
            out.append(word)
        elif word in _DIGIT_WORDS:
            out.append(_DIGIT_WORDS[word])
        else:
            return None
    return "".join(out) or None


_YES = {
    "yes", "yeah", "yep", "yup", "sure", "correct", "right", "ok", "okay", "affirmative",
    "of course", "that's right", "si", "sí", "oui", "ja", "네", "예",
}  # fmt: skip
_NO = {
    "no", "nope", "nah", "not", "incorrect", "wrong", "negative", "non", "nein", "아니요",
    "아니오", "아니",
}  # fmt: skip


_YES_WORDS = frozenset(p for p in _YES if " " not in p)
_NO_WORDS = frozenset(p for p in _NO if " " not in p)
_YES_PHRASES = tuple(p for p in _YES if " " in p)
_NO_PHRASES = tuple(p for p in _NO if " " in p)


def yes_or_no(text: str) -> bool | None:
    """True for yes, False for no, None when unclear or both."""
    said = normalize(text)
    words = set(said.split())
    yes = not words.isdisjoint(_YES_WORDS) or any(phrase_in(said, p) for p in _YES_PHRASES)
    no = not words.isdisjoint(_NO_WORDS) or any(phrase_in(said, p) for p in _NO_PHRASES)
    if yes == no:
        return None
    return yes


_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_FILLER = {"and", "a", "dollars", "dollar", "euros", "euro", "pounds", "cents", "cent", "point"}


def _words_number(words: list[str]) -> int | None:
    total = current = 0
    seen = False
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word in _SCALES:
            current = max(current, 1) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, 0
        elif word.isdecimal():
            current += int(word)
        elif word == "and":
            continue
        else:
            return None
        seen = True
    return total + current if seen else None


def number_in(text: str) -> int | float | None:
    """A number said or typed: "12.50", "1,200", "twenty five", "12 dollars 50 cents"."""
    said = normalize(text)
    compact = said.replace(" ", "")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?|-?\d+(\.\d+)?", compact):
        value = float(compact.replace(",", ""))
        return int(value) if value.is_integer() and "." not in compact else value
    words = said.replace("-", " ").split()
    major: list[str] = []
    minor: list[str] = []
    target = major
    for word in words:
        if word in ("dollars", "dollar", "euros", "euro", "pounds", "point"):
            target = minor
            continue
        if word in _FILLER:
            continue
        target.append(word)
    whole = _words_number(major) if major else None
    if whole is None:
        return None
    if not minor:
        return whole
    part = _words_number(minor)
    if part is None or part >= 100:
        return None
    return round(whole + part / 100, 2)


def amount_from_keys(keys: str) -> float | int | None:
    """Keypad amounts: ``*`` is the decimal point ("12*50" -> 12.5)."""
    if not re.fullmatch(r"\d+(\*\d{1,2})?", keys):
        return None
    if "*" in keys:
        whole, cents = keys.split("*")
        return round(int(whole) + int(cents.ljust(2, "0")) / 100, 2)
    return int(keys)


_MONTHS = {
    name: index + 1
    for index, names in enumerate(
        [
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for name in names
}  # fmt: skip
_ORDINAL = re.compile(r"^(\d{1,2})(st|nd|rd|th)$")


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def date_in(text: str, today: date, order: str = "dmy") -> date | None:
    """A date typed or said: today/tomorrow, 2026-11-23, 23/11/2026, 23112026, "november 23"."""
    said = normalize(text)
    relative = {"today": 0, "tomorrow": 1, "yesterday": -1}
    if said in relative:
        return today + timedelta(days=relative[said])
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", said)
    if match:
        return _safe_date(int(match[1]), int(match[2]), int(match[3]))
    match = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})", said)
    if match:
        a, b, c = int(match[1]), int(match[2]), int(match[3])
        year = c + 2000 if c < 100 else c
        day, month = (a, b) if order in ("dmy", "ymd") else (b, a)
        return _safe_date(year, month, day)
    keys = said.replace(" ", "")
    if re.fullmatch(r"\d{8}", keys):
        if order == "ymd":
            return _safe_date(int(keys[:4]), int(keys[4:6]), int(keys[6:]))
        first, second, year = int(keys[:2]), int(keys[2:4]), int(keys[4:])
        day, month = (first, second) if order == "dmy" else (second, first)
        return _safe_date(year, month, day)
    words = said.replace(",", " ").split()
    month_number = day_number = year_number = None
    for word in words:
        ordinal = _ORDINAL.match(word)
        if word in _MONTHS:
            month_number = _MONTHS[word]
        elif ordinal:
            day_number = int(ordinal[1])
        elif word.isdecimal() and len(word) == 4:
            year_number = int(word)
        elif word.isdecimal() and len(word) <= 2:
            day_number = int(word)
        elif word not in ("the", "of", "on"):
            return None
    if month_number and day_number:
        return _safe_date(year_number or today.year, month_number, day_number)
    return None
