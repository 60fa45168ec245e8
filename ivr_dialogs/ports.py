"""Ports carry out the interpreter's actions: a voice port over a call, a text port for chat.

``Port`` is the contract the voice and chat channels implement; ``TextPort`` is the text one,
used by the simulator, web chat, SMS and Telegram: prompts become messages and replies become
events (keys are digits, other text is speech).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from ivr_dialogs.actions import (
    Action,
    Callback,
    Hangup,
    Listen,
    Queue,
    Say,
    SurveyAnswer,
    Transfer,
    Voicemail,
)
from ivr_dialogs.events import Event, HangUp, text_to_event


@runtime_checkable
class Port(Protocol):
    """What the runner needs from a channel. ``listen`` returns the caller's next event:
    ``Digit``/``Digits``, ``Utterance``, ``NoInput`` after ``timeout_s``, or ``HangUp``."""

    async def say(self, action: Say) -> None: ...

    async def listen(self, action: Listen) -> Event: ...

    async def survey_answer(self, action: SurveyAnswer) -> None: ...

    async def queue(self, action: Queue) -> None: ...

    async def transfer(self, action: Transfer) -> None: ...

    async def voicemail(self, action: Voicemail) -> None: ...

    async def callback(self, action: Callback) -> None: ...

    async def hangup(self, action: Hangup) -> None: ...


async def dispatch(port: Port, action: Action) -> None:
    """Hand a non-waiting action to the port method of its kind."""
    if isinstance(action, Say):
        await port.say(action)
    elif isinstance(action, SurveyAnswer):
        await port.survey_answer(action)
    elif isinstance(action, Queue):
        await port.queue(action)
    elif isinstance(action, Transfer):
        await port.transfer(action)
    elif isinstance(action, Voicemail):
        await port.voicemail(action)
    elif isinstance(action, Callback):
        await port.callback(action)
    elif isinstance(action, Hangup):
        await port.hangup(action)
    else:
        raise TypeError(f"not a port action: {action!r}")


Send = Callable[[str], Awaitable[None]]
Receive = Callable[[float | None], Awaitable[str | None]]
"""Wait up to ``timeout`` seconds (None: forever) for the user's next line; None if nothing
came, ``EOFError`` when the conversation is closed."""


def describe_listen(action: Listen) -> str:
    """A hint for text users of what the dialog waits for."""
    if action.expect == "digits" and action.max_digits > 1:
        end = f", end with {action.terminator}" if action.terminator else ""
        return f"[type {action.min_digits}-{action.max_digits} digits{end}]"
    if action.expect in ("menu", "choice") and action.hints:
        shown = ", ".join(action.hints[:8]) + (", ..." if len(action.hints) > 8 else "")
        return f"[type a digit or a phrase: {shown}]"
    if action.expect in ("menu", "choice"):
        return "[type a digit or a phrase]"
    if action.expect == "yes_no":
        return "[yes or no]"
    if action.expect == "date":
        return "[a date, e.g. 2026-12-03 or tomorrow]"
    if action.expect == "amount":
        return "[an amount, e.g. 12.50]"
    return "[type your answer]"


class TextPort:
    """A port over lines of text. ``transcript`` keeps both sides; ``handoff`` the last action."""

    def __init__(
        self,
        send: Send,
        receive: Receive,
        *,
        hints: bool = False,
        timeouts: bool = True,
    ) -> None:
        self._send = send
        self._receive = receive
        self.hints = hints
        self.timeouts = timeouts
        self.transcript: list[tuple[str, str]] = []
        self.answers: list[SurveyAnswer] = []
        self.handoff: Action | None = None

    async def _out(self, text: str) -> None:
        self.transcript.append(("dialog", text))
        await self._send(text)

    async def say(self, action: Say) -> None:
        text = action.text or (f"[audio {action.audio}]" if action.audio else "")
        if text:
            await self._out(text)

    async def listen(self, action: Listen) -> Event:
        if self.hints:
            await self._send(describe_listen(action))
        try:
            line = await self._receive(action.timeout_s if self.timeouts else None)
        except EOFError:
            return HangUp()
        if line is not None:
            self.transcript.append(("caller", line.strip()))
        return text_to_event(line)

    async def survey_answer(self, action: SurveyAnswer) -> None:
        self.answers.append(action)

    async def queue(self, action: Queue) -> None:
        self.handoff = action
        await self._send(f"[queued to {action.name}, priority {action.priority}]")

    async def transfer(self, action: Transfer) -> None:
        self.handoff = action
        await self._send(f"[transfer to {action.number}]")

    async def voicemail(self, action: Voicemail) -> None:
        self.handoff = action
        await self._send(f"[voicemail box {action.mailbox}, up to {action.max_seconds} s]")

    async def callback(self, action: Callback) -> None:
        self.handoff = action
        await self._send(f"[callback to {action.number} from queue {action.queue}]")

    async def hangup(self, action: Hangup) -> None:
        self.handoff = action
        await self._send(f"[end: {action.reason}]")
