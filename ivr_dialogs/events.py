"""Events fed to the interpreter: what the caller (or the outside world) did.

A port turns keypad tones, recognised speech, silence, an HTTP answer or a hang-up into one
of these plain values, so the interpreter never touches I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Digit:
    """One keypad key (``0-9``, ``*``, ``#``), as a voice port hears them one at a time."""

    digit: str


@dataclass(frozen=True, slots=True)
class Digits:
    """A whole keypad entry at once (a chat user typing ``1234``), terminator left off."""

    digits: str


@dataclass(frozen=True, slots=True)
class Utterance:
    """Recognised speech (or typed chat text) with the recognizer's confidence, 0..1."""

    text: str
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class NoInput:
    """The caller said and pressed nothing before the listen timeout."""


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The answer to a Lookup action: an HTTP status and parsed JSON, or an error text."""

    status: int | None = None
    body: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class HangUp:
    """The caller hung up (or closed the chat)."""


Timeout = NoInput
Event = Digit | Digits | Utterance | NoInput | LookupResult | HangUp


_KEYS = frozenset("0123456789*#")
_SPECIAL = {
    "<noinput>": NoInput(),
    "<timeout>": NoInput(),
    "<hangup>": HangUp(),
    "/hangup": HangUp(),
    "/bye": HangUp(),
}


def text_to_event(text: str | None) -> Event:
    """What a typed line means: keys (``1234#``) are digits, other text is speech.

    Nothing typed (or ``None``, a chat timeout) is no input; ``/hangup`` ends the session.
    Chat channels, the simulator and dialog tests share this rule.
    """
    if text is None:
        return NoInput()
    stripped = text.strip()
    if not stripped:
        return NoInput()
    special = _SPECIAL.get(stripped.lower())
    if special is not None:
        return special
    compact = stripped.replace(" ", "")
    if all(ch in _KEYS for ch in compact):
        return Digits(compact)
    return Utterance(stripped, 1.0)
