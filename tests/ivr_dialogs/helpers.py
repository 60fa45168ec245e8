"""Builders for dialog tests: a dialog from YAML text, a session that records what it says."""

from __future__ import annotations

import textwrap
from datetime import datetime
from typing import Any

from ivr_dialogs import Dialog, Interpreter, load_dialog
from ivr_dialogs.actions import Action, Say

MONDAY_10AM = datetime(2026, 11, 23, 10, 0)


def dialog(text: str) -> Dialog:
    return load_dialog(textwrap.dedent(text), file="test.yaml")


class Session:
    """An interpreter plus everything it has said and done so far."""

    def __init__(self, source: str | Dialog, **kwargs: Any) -> None:
        self.dialog = dialog(source) if isinstance(source, str) else source
        kwargs.setdefault("now", MONDAY_10AM)
        self.interpreter = Interpreter(self.dialog, kwargs.pop("caller", {}), **kwargs)
        self.actions: list[Action] = []
        self.actions += self.interpreter.start()

    def feed(self, *events: Any) -> list[Action]:
        new: list[Action] = []
        for event in events:
            new += self.interpreter.feed(event)
        self.actions += new
        return new

    @property
    def said(self) -> list[str]:
        return [a.text for a in self.actions if isinstance(a, Say)]

    @property
    def last(self) -> Action:
        return self.actions[-1]

    @property
    def vars(self) -> dict[str, Any]:
        return self.interpreter.variables
