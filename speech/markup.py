"""Prompt markup: digits read one by one, spelled-out text and pauses.

Admins write prompts such as ``"Your code is <spell>AB7</spell>. <pause 400ms> Call
<digits>0800 555 123</digits>."``. `parse_prompt` turns that into what the synthesizer
speaks: sentences of plain words and `Pause`\\s. Digits and letters become words (``seven``,
``bee``) because a lone letter such as "A" would be read as the article.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MarkupError", "Pause", "parse_prompt", "plain_text"]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
LETTER_NAMES = {
    "A": "ay", "B": "bee", "C": "see", "D": "dee", "E": "ee", "F": "eff", "G": "gee",
    "H": "aitch", "I": "eye", "J": "jay", "K": "kay", "L": "ell", "M": "em", "N": "en",
    "O": "oh", "P": "pee", "Q": "cue", "R": "ar", "S": "ess", "T": "tee", "U": "you",
    "V": "vee", "W": "double you", "X": "ex", "Y": "why", "Z": "zee",
}  # fmt: skip
SYMBOL_WORDS = {"*": "star", "#": "pound", "+": "plus", "@": "at", ".": "dot", "-": "dash"}
DEFAULT_PAUSE_MS = 500
MAX_PAUSE_MS = 10_000

_TAG = re.compile(
    r"<digits>(?P<digits>.*?)</digits>"
    r"|<spell>(?P<spell>.*?)</spell>"
    r"|<pause(?:\s+(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>ms|s))?\s*/?>"
    r"|(?P<bad><[^>]*>?)",
    re.IGNORECASE | re.DOTALL,
)
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


class MarkupError(ValueError):
    """A prompt whose markup cannot be read (unknown tag, bad pause, stray ``<``)."""


@dataclass(frozen=True, slots=True)
class Pause:
    """Silence of `ms` milliseconds inside a prompt."""

    ms: int


def _read_digits(body: str) -> str:
    groups = [g for g in re.split(r"[\s\-./()]+", body.strip()) if g]
    words = []
    for group in groups:
        bad = [c for c in group if not c.isdigit() and c not in SYMBOL_WORDS]
        if bad:
            raise MarkupError(f"<digits> holds non-digits: {''.join(bad)!r}")
        words.append(
            " ".join(DIGIT_WORDS[int(c)] if c.isdigit() else SYMBOL_WORDS[c] for c in group)
        )
    return ", ".join(words)


def _spell(body: str) -> str:
    names = []
    for char in body.strip():
        if char.isspace():
            continue
        upper = char.upper()
        if upper in LETTER_NAMES:
            names.append(LETTER_NAMES[upper])
        elif char.isdigit():
            names.append(DIGIT_WORDS[int(char)])
        elif char in SYMBOL_WORDS:
            names.append(SYMBOL_WORDS[char])
        else:
            raise MarkupError(f"<spell> cannot spell {char!r}")
    return ", ".join(names)


def _pause(amount: str | None, unit: str | None) -> Pause:
    if amount is None:
        return Pause(DEFAULT_PAUSE_MS)
    ms = round(float(amount) * (1000 if unit and unit.lower() == "s" else 1))
    if ms > MAX_PAUSE_MS:
        raise MarkupError(f"a pause of {ms} ms is longer than {MAX_PAUSE_MS} ms")
    return Pause(ms)


def parse_prompt(text: str) -> list[str | Pause]:
    """Sentences to speak, in order, with the pauses between them."""
    items: list[str | Pause] = []
    spoken: list[str] = []

    def flush() -> None:
        joined = re.sub(r"\s+", " ", "".join(spoken)).strip()
        spoken.clear()
        items.extend(s for s in _SENTENCE_END.split(joined) if s.strip(" ,"))

    position = 0
    for match in _TAG.finditer(text):
        spoken.append(text[position : match.start()])
        position = match.end()
        if match.group("bad") is not None:
            raise MarkupError(
                f"unknown markup {match.group('bad')!r}; use <digits>, <spell>, <pause>"
            )
        if match.group("digits") is not None:
            spoken.append(_read_digits(match.group("digits")))
        elif match.group("spell") is not None:
            spoken.append(_spell(match.group("spell")))
        else:
            flush()
            items.append(_pause(match.group("amount"), match.group("unit")))
    spoken.append(text[position:])
    flush()
    return items


def plain_text(text: str) -> str:
    """What the prompt says, as one line (for logs, chat channels and transcripts)."""
    return " ".join(item for item in parse_prompt(text) if isinstance(item, str))
