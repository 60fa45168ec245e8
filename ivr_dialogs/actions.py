"""Actions the interpreter asks a port to carry out.

``Listen`` and ``Lookup`` make the interpreter wait for an event; the terminal actions
(``Queue``, ``Transfer``, ``Voicemail``, ``Callback``, ``Hangup``) end the session and tell the
hub where the contact goes next.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Say:
    """Speak ``text`` (or play ``audio``, with ``text`` as the chat fallback) in ``lang``."""

    text: str
    lang: str = "en"
    audio: str | None = None
    barge_in: bool = False


@dataclass(frozen=True, slots=True)
class Listen:
    """Wait for the caller. ``expect`` is digits, speech, choice, yes_no, date, amount or menu.

    ``hints`` are the phrases worth giving a grammar-mode recognizer (Vosk); ``options``
    are a menu's or choice's (key, label) pairs, which text channels show as a numbered list.
    """

    expect: str
    node: str = ""
    min_digits: int = 1
    max_digits: int = 1
    terminator: str | None = None
    timeout_s: float = 5.0
    hints: tuple[str, ...] = ()
    lang: str = "en"
    options: tuple[tuple[str, str], ...] = ()


Ask = Listen


@dataclass(frozen=True, slots=True)
class Lookup:
    """An HTTP request the runner makes; ``${NAME}`` in ``secret_headers`` comes from settings."""

    method: str
    url: str
    node: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    secret_headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    timeout_s: float = 3.0


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    priority: int = 0
    skills: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Transfer:
    number: str


@dataclass(frozen=True, slots=True)
class Voicemail:
    mailbox: str = "default"
    max_seconds: int = 120


@dataclass(frozen=True, slots=True)
class Callback:
    """Keep the caller's place in ``queue``; an agent calls ``number`` back."""

    queue: str
    number: str
    priority: int = 0
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str = "completed"


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    """One answer, stored with the interaction (CSAT, outbound surveys)."""

    survey: str
    question: str
    value: Any
    kind: str = "scale"


Action = Say | Listen | Lookup | Queue | Transfer | Voicemail | Callback | Hangup | SurveyAnswer
TERMINAL_ACTIONS = (Queue, Transfer, Voicemail, Callback, Hangup)


def action_dict(action: Action) -> dict[str, Any]:
    """A JSON-able dict with the action's kind, for traces and dialog tests."""
    data: dict[str, Any] = {"action": type(action).__name__.lower()}
    for item in fields(action):
        value = getattr(action, item.name)
        data[item.name] = list(value) if isinstance(value, tuple) else value
    return data
