"""Dialog tests: admins' regression cases, run before a dialog is published.

A case lists what the caller does (``"2"``, ``"123456#"``, ``"I want my balance"``,
``"<noinput>"``, ``"<hangup>"``) and what must happen: prompts said in order, variables,
the nodes passed, the outcome and the hand-off. Lookups are answered by the case itself
(``lookups: {balance_lookup: {status: 200, json: {...}}}``), so tests need no live server.

Cases live under ``tests:`` in the dialog file, or in a separate file with ``dialog: path``
and ``cases:``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ivr_dialogs.actions import Say
from ivr_dialogs.events import (
    Digit,
    Digits,
    Event,
    HangUp,
    LookupResult,
    NoInput,
    Utterance,
    text_to_event,
)
from ivr_dialogs.interpreter import Interpreter
from ivr_dialogs.loader import Dialog, DialogError, Problem, load_dialog, parse_dialog_data
from ivr_dialogs.schema import TestCase

DEFAULT_NOW = datetime(2026, 1, 5, 10, 0)
"""When a case gives no ``now``: a Monday at 10:00, so results never depend on the day."""


@dataclass
class CaseResult:
    name: str
    failures: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    trace: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures


def input_event(item: str | dict[str, Any]) -> Event:
    """One scripted input: text as a user would type it, or an explicit mapping."""
    if isinstance(item, str):
        return text_to_event(item)
    if "digits" in item:
        return Digits(str(item["digits"]))
    if "digit" in item:
        return Digit(str(item["digit"]))
    if "say" in item:
        return Utterance(str(item["say"]), float(item.get("confidence", 1.0)))
    if item.get("noinput") or item.get("timeout"):
        return NoInput()
    if item.get("hangup"):
        return HangUp()
    raise ValueError(f"unknown input {item!r}: use digits, digit, say, noinput or hangup")


def _in_order(wanted: Sequence[str], seen: Sequence[str], match: Any) -> str | None:
    """The first wanted item not found after the previous one, or None."""
    position = 0
    for item in wanted:
        while position < len(seen) and not match(item, seen[position]):
            position += 1
        if position == len(seen):
            return item
        position += 1
    return None


def _prompts_in_order(wanted: Sequence[str], said: Sequence[str]) -> str | None:
    """Like ``_in_order`` for texts: a later expectation may match later in the same prompt."""
    index, offset = 0, 0
    for item in wanted:
        needle = item.lower()
        while index < len(said):
            found = said[index].lower().find(needle, offset)
            if found >= 0:
                offset = found + len(needle)
                break
            index, offset = index + 1, 0
        else:
            return item
    return None


def run_case(dialog: Dialog, case: TestCase) -> CaseResult:
    """Play one case through a fresh interpreter and compare with its expectations."""
    result = CaseResult(case.name)
    try:
        now = datetime.fromisoformat(case.now) if case.now else DEFAULT_NOW
        events = [input_event(item) for item in case.inputs]
    except ValueError as exc:
        result.failures.append(f"bad case: {exc}")
        return result
    interpreter = Interpreter(
        dialog, case.caller, now, case.business_hours_open, language=case.language
    )
    actions = interpreter.start()
    pending = iter(events)
    while True:
        result.said += [a.text for a in actions if isinstance(a, Say)]
        if interpreter.done:
            break
        waiting = interpreter.waiting_for
        if waiting == "lookup":
            node = interpreter.node
            stub = case.lookups.get(node) or case.lookups.get(node.rsplit(".", 1)[-1])
            if stub is None:
                result.failures.append(f"lookup '{node}' has no result in this case (lookups:)")
                break
            event: Event = LookupResult(stub.status, stub.json_, stub.error)
        elif waiting == "input":
            next_event = next(pending, None)
            if next_event is None:
                break  # inputs used up while the dialog waits: outcome "waiting"
            event = next_event
        else:
            break
        actions = interpreter.feed(event)
    leftover = sum(1 for _ in pending)
    trace = interpreter.trace
    result.trace = trace
    _compare(case, interpreter, trace, result, leftover)
    return result


def _compare(
    case: TestCase,
    interpreter: Interpreter,
    trace: dict[str, Any],
    result: CaseResult,
    leftover: int,
) -> None:
    expect = case.expect
    said = result.said
    lowered = [s.lower() for s in said]
    missing = _prompts_in_order(expect.prompts, said)
    if missing is not None:
        result.failures.append(f"expected prompt {missing!r} (in order); said: {said}")
    for banned in expect.not_prompts:
        if any(banned.lower() in s for s in lowered):
            result.failures.append(f"prompt {banned!r} should not be said; said: {said}")
    variables = interpreter.variables
    for name, value in expect.variables.items():
        if name not in variables:
            result.failures.append(f"variable {name!r} is not set (expected {value!r})")
        elif not _same(variables[name], value):
            result.failures.append(f"variable {name!r} is {variables[name]!r}, expected {value!r}")
    outcome = interpreter.outcome or "waiting"
    if expect.outcome is not None and outcome != expect.outcome:
        where = f" at node '{interpreter.node}'" if outcome == "waiting" else ""
        result.failures.append(f"outcome is {outcome!r}{where}, expected {expect.outcome!r}")
    missing = _in_order(expect.path, trace["nodes"], lambda want, got: want == got)
    if missing is not None:
        result.failures.append(
            f"expected to pass node {missing!r} (in order); path: {trace['nodes']}"
        )
    handoff = trace["handoff"] or {}
    for key, value in expect.handoff.items():
        if handoff.get(key) != value:
            result.failures.append(f"hand-off {key} is {handoff.get(key)!r}, expected {value!r}")
    answers = {question: value for _survey, question, value in interpreter.answers}
    for question, value in expect.survey.items():
        if answers.get(question) != value:
            result.failures.append(
                f"survey answer {question!r} is {answers.get(question)!r}, expected {value!r}"
            )
    if leftover and expect.outcome != "waiting":
        result.failures.append(f"{leftover} input(s) left over after the dialog ended")
    for error in trace["errors"]:
        if error.startswith("internal error"):
            result.failures.append(error)


def _same(got: Any, wanted: Any) -> bool:
    """Equal, and true is not 1: a yes/no answer must not pass for a digit."""
    return isinstance(got, bool) == isinstance(wanted, bool) and got == wanted


def load_cases(path: str | Path) -> tuple[Dialog, list[TestCase]]:
    """A dialog with its ``tests:``, or a tests file (``dialog: path`` plus ``cases:``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DialogError([Problem(str(path), 0, "io", f"cannot read: {exc.strerror}")]) from None
    data, lines = parse_dialog_data(text, str(path))
    if isinstance(data, dict) and "cases" in data and "nodes" not in data:
        target = data.get("dialog")
        if not isinstance(target, str):
            raise DialogError(
                [Problem(str(path), 1, "schema", "a tests file needs dialog: <path of the dialog>")]
            )
        dialog = load_dialog(path.parent / target)
        cases = []
        problems = []
        for index, raw in enumerate(data.get("cases") or []):
            try:
                cases.append(TestCase.model_validate(raw))
            except ValidationError as exc:
                line = lines.get(("cases", str(index)), 1)
                for error in exc.errors():
                    where = ".".join(str(p) for p in error["loc"])
                    problems.append(
                        Problem(
                            str(path), line, "schema", f"case {index + 1} {where}: {error['msg']}"
                        )
                    )
        if problems:
            raise DialogError(problems)
        return dialog, cases
    dialog = load_dialog(path)
    return dialog, list(dialog.model.tests)


def run_tests(dialog: Dialog, cases: Sequence[TestCase] | None = None) -> list[CaseResult]:
    """Run the given cases (default: the dialog's own ``tests:``)."""
    return [run_case(dialog, case) for case in (dialog.model.tests if cases is None else cases)]
