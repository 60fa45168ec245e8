"""The sans-IO dialog interpreter: ``feed(event) -> actions``, no sockets, no clocks, no asyncio.

One ``Interpreter`` is one caller's session. It holds only a position, variables and counters;
the (immutable, compiled) ``Dialog`` is shared by every session. Voice, chat, the simulator
and dialog tests all drive this same class, so a dialog behaves identically everywhere.

It never raises on input: an unexpected event is recorded and ignored, an expression error
goes to the dialog's ``on_error`` node (or ends the session), and a step limit ends any loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from ivr_dialogs import matching
from ivr_dialogs.actions import (
    Action,
    Callback,
    Hangup,
    Listen,
    Lookup,
    Queue,
    Say,
    SurveyAnswer,
    Transfer,
    Voicemail,
    action_dict,
)
from ivr_dialogs.events import Digit, Digits, Event, HangUp, LookupResult, NoInput, Utterance
from ivr_dialogs.expressions import ExpressionError, Scope, Value, type_name
from ivr_dialogs.hours import HoursSpec, hours_open
from ivr_dialogs.loader import Dialog, Flow, code_in_node
from ivr_dialogs.schema import (
    AskNode,
    BranchNode,
    CallbackNode,
    Choice,
    GotoNode,
    HangupNode,
    LookupNode,
    MenuNode,
    QueueNode,
    Retry,
    ReturnNode,
    SayNode,
    SetNode,
    SubdialogNode,
    SurveyNode,
    SurveyQuestion,
    Text,
    TransferNode,
    VoicemailNode,
)

DEFAULT_STEP_LIMIT = 1000
MAX_TRACED_INPUTS = 500
_IDLE, _INPUT, _LOOKUP = 0, 1, 2
_DEFAULT_RETRY_COUNT = 2
_MAX_ERRORS = 3
_SESSION_GLOBALS = ("language", "lookup_status", "lookup_error")
"""Variables every session has besides ``caller``, ``now`` and ``business_hours_open``."""
BUILTIN_NAMES = frozenset({"caller", "now", "business_hours_open", *_SESSION_GLOBALS})


@dataclass(frozen=True, slots=True)
class CallerInfo:
    """What the hub knows about the caller before the dialog starts (for ``caller.*``)."""

    number: str = ""
    name: str = ""
    vip: int = 0
    language: str | None = None
    channel: str = "voice"
    data: Mapping[str, Any] = field(default_factory=dict)

    def as_vars(self) -> dict[str, Any]:
        return {
            **self.data,
            "number": self.number,
            "name": self.name,
            "vip": self.vip,
            "language": self.language or "",
            "channel": self.channel,
        }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CallerInfo:
        known = {"number", "name", "vip", "language", "channel"}
        return cls(
            number=str(data.get("number", "")),
            name=str(data.get("name", "")),
            vip=int(data.get("vip", 0) or 0),
            language=data.get("language"),
            channel=str(data.get("channel", "voice")),
            data={k: v for k, v in data.items() if k not in known},
        )


def _caller_vars(data: Mapping[str, Any]) -> dict[str, Any]:
    """``caller.*`` from a plain mapping: the known fields always exist, extras pass through."""
    found = dict(data)
    found["number"] = str(found.get("number") or "")
    found["name"] = str(found.get("name") or "")
    try:
        found["vip"] = int(found.get("vip") or 0)
    except (TypeError, ValueError):
        found["vip"] = 0
    found["language"] = str(found.get("language") or "")
    found["channel"] = str(found.get("channel") or "voice")
    return found


_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def time_vars(moment: datetime) -> dict[str, Any]:
    """``now.*`` for expressions: hour, minute, weekday (0 = Monday), day, time, date.

    Sessions starting in the same minute share one (read-only) dict.
    """
    return _minute_vars(moment.replace(second=0, microsecond=0, tzinfo=None))


@lru_cache(maxsize=256)
def _minute_vars(moment: datetime) -> dict[str, Any]:
    return {
        "hour": moment.hour,
        "minute": moment.minute,
        "weekday": moment.weekday(),
        "day": _DAY_NAMES[moment.weekday()],
        "time": f"{moment.hour:02d}:{moment.minute:02d}",
        "date": moment.date().isoformat(),
    }


class _Frame:
    """Where one (sub-)dialog is: its flow, current node and own variables."""

    __slots__ = ("call", "flow", "node_id", "scope", "vars")

    def __init__(
        self,
        flow: Flow,
        variables: dict[str, Any],
        call: SubdialogNode | None,
        global_vars: dict[str, Any],
    ) -> None:
        self.flow = flow
        self.node_id = flow.start
        self.vars = variables
        self.call = call
        self.scope = Scope(variables, global_vars)


class Interpreter:
    """One dialog session. ``start()`` then ``feed(event)`` until ``done``."""

    __slots__ = (
        "_buffer",
        "_errors",
        "_inputs",
        "_no_input",
        "_no_match",
        "_question",
        "_visited",
        "_waiting",
        "answers",
        "asked",
        "dialog",
        "done",
        "frames",
        "globals",
        "handoff",
        "outcome",
        "started",
        "step_limit",
        "steps",
    )

    def __init__(
        self,
        dialog: Dialog,
        caller: CallerInfo | Mapping[str, Any] | None = None,
        now: datetime | None = None,
        business_hours: HoursSpec = None,
        *,
        language: str | None = None,
        step_limit: int = DEFAULT_STEP_LIMIT,
        start_at: str | None = None,
    ) -> None:
        """``start_at`` begins the session at that node of the main flow instead of its
        ``start`` (an agent sends a caller to one step, e.g. a payment; ``ValueError`` if the
        main flow has no such node)."""
        self.dialog = dialog
        if isinstance(caller, CallerInfo):
            caller_vars = caller.as_vars()
        else:
            caller_vars = _caller_vars(caller or {})
        moment = now or datetime.now()
        if business_hours is None:
            business_hours = dialog.business_hours
        model = dialog.model
        lang = language or caller_vars["language"]
        if lang not in model.languages:
            lang = model.language
        self.globals: dict[str, Any] = {
            "caller": caller_vars,
            "now": time_vars(moment),
            "business_hours_open": hours_open(business_hours, moment),
            "language": lang,
            "lookup_status": None,
            "lookup_error": None,
        }
        self.frames: list[_Frame] = [
            _Frame(dialog.main, dict(dialog.main.variables), None, self.globals)
        ]
        if start_at is not None:
            if start_at not in dialog.main.nodes:
                raise ValueError(f"the dialog {dialog.name} has no node '{start_at}'")
            self.frames[0].node_id = start_at
        self.step_limit = step_limit
        self.steps = 0
        self.done = False
        self.started = False
        self.outcome: str | None = None
        self.handoff: dict[str, Any] | None = None
        self.answers: list[tuple[str, str, Any]] = []
        # Every survey question put to the caller, answered or not (for drop-off figures).
        self.asked: list[dict[str, Any]] = []
        self._waiting = _IDLE
        self._no_input = 0
        self._no_match = 0
        self._question = 0
        self._buffer = ""
        self._visited: list[str] = []
        self._inputs: list[tuple[str, str, Any]] = []
        self._errors: list[str] = []

    # ----------------------------------------------------------------- public API

    @property
    def node(self) -> str:
        """Label of the current node (``sub.node`` inside a sub-dialog)."""
        frame = self.frames[-1]
        return _label(frame)

    @property
    def variables(self) -> dict[str, Any]:
        """The main dialog's variables plus the session's language."""
        return {**self.frames[0].vars, "language": self.globals["language"]}

    @property
    def waiting_for(self) -> str | None:
        """ "input", "lookup" or None."""
        return {_INPUT: "input", _LOOKUP: "lookup"}.get(self._waiting)

    def start(self) -> list[Action]:
        """Run from the start node until the dialog needs an event (or ends)."""
        if self.started:
            return []
        self.started = True
        out: list[Action] = []
        self._guarded(self._run, out)
        return out

    def feed(self, event: Event) -> list[Action]:
        """Apply one event and run until the dialog needs the next one."""
        out: list[Action] = []
        if self.done or not self.started:
            self._note("ignored", event)
            return out
        self._guarded(self._accept, out, event)
        return out

    @property
    def trace(self) -> dict[str, Any]:
        """What happened, as JSON-able data for the hub to store with the interaction."""
        return {
            "dialog": self.dialog.name,
            "caller": _jsonable(self.globals["caller"]),
            "language": self.globals["language"],
            "nodes": list(self._visited),
            "inputs": [
                {"node": node, "event": kind, "value": value} for node, kind, value in self._inputs
            ],
            "variables": _jsonable(self.variables),
            "survey": [
                {"survey": survey, "question": question, "value": value}
                for survey, question, value in self.answers
            ],
            "survey_asked": [dict(entry) for entry in self.asked],
            "outcome": self.outcome,
            "handoff": _jsonable(self.handoff),
            "steps": self.steps,
            "errors": list(self._errors),
        }

    # ----------------------------------------------------------------- the loop

    def _guarded(self, run: Callable[..., None], out: list[Action], *args: Any) -> None:
        try:
            run(out, *args)
        except Exception as exc:  # a bug must not crash the call: end it cleanly
            self._errors.append(f"internal error at {self.node}: {type(exc).__name__}: {exc}")
            self._finish("error", Hangup("error"), out)

    def _run(self, out: list[Action]) -> None:
        while not self.done and self._waiting == _IDLE:
            if self.steps >= self.step_limit:
                self._errors.append(f"step limit of {self.step_limit} reached at {self.node}")
                self._finish("step_limit", Hangup("step limit"), out)
                return
            self.steps += 1
            frame = self.frames[-1]
            node = frame.flow.nodes.get(frame.node_id)
            if node is None:
                self._fail(f"no node '{frame.node_id}' in {frame.flow.name}", out)
                continue
            self._visited.append(frame.node_id if frame.flow.name == "main" else _label(frame))
            try:
                _HANDLERS[type(node)](self, node, frame, out)
            except ExpressionError as exc:
                self._fail(self._where(frame, node, exc), out)

    def _accept(self, out: list[Action], event: Event) -> None:
        if isinstance(event, HangUp):
            self._note("hangup", event)
            self._finish("caller_hangup", None, out)
            return
        frame = self.frames[-1]
        node = frame.flow.nodes[frame.node_id]
        if self._waiting == _LOOKUP:
            if isinstance(event, LookupResult):
                self._note("lookup", event)
                self._waiting = _IDLE
                try:
                    self._lookup_done(node, frame, event)
                except ExpressionError as exc:
                    self._fail(self._where(frame, node, exc), out)
                self._run(out)
            else:
                self._note("ignored", event)
            return
        if self._waiting != _INPUT or isinstance(event, LookupResult):
            self._note("ignored", event)
            return
        try:
            self._input(node, frame, event, out)
        except ExpressionError as exc:
            self._waiting = _IDLE
            self._fail(self._where(frame, node, exc), out)
        self._run(out)

    def _where(self, frame: _Frame, node: Any, exc: ExpressionError) -> str:
        """``file:line: node 'x': message``, the line of the failing expression if known."""
        line = self.dialog.node_line(frame.flow, frame.node_id)
        for path, _kind, source in code_in_node(node):
            if exc.source and exc.source.replace(" ", "") in source.replace(" ", ""):
                line = self.dialog.node_line(frame.flow, frame.node_id, *path)
                break
        return f"{self.dialog.file}:{line}: node '{_label(frame)}': {exc}"

    def _goto(self, frame: _Frame, target: str) -> None:
        frame.node_id = target

    def _finish(self, outcome: str, action: Action | None, out: list[Action]) -> None:
        self.done = True
        self._waiting = _IDLE
        self.outcome = outcome
        if action is not None:
            self.handoff = action_dict(action)
            out.append(action)

    def _fail(self, message: str, out: list[Action]) -> None:
        """An error in the dialog itself: go to ``on_error`` (a few times at most) or end."""
        self._errors.append(message)
        target = self.dialog.model.on_error
        if (
            target is None
            or len(self._errors) > _MAX_ERRORS
            or target not in self.dialog.main.nodes
        ):
            self._finish("error", Hangup("error"), out)
            return
        del self.frames[1:]
        self._waiting = _IDLE
        self._goto(self.frames[0], target)

    def _note(self, kind: str, event: Event) -> None:
        """Record an input; a flood of ignored events cannot grow a session without bound."""
        if len(self._inputs) < MAX_TRACED_INPUTS:
            self._inputs.append((self.node, kind, _event_value(event)))
        elif self._inputs[-1][1] != "truncated":
            self._inputs[-1] = (self.node, "truncated", None)

    # ----------------------------------------------------------------- helpers

    def _scope(self, frame: _Frame) -> Scope:
        return frame.scope

    def _text(self, text: Text, scope: Scope) -> str:
        if isinstance(text, str):
            return self.dialog.template(text).render(scope)
        lang = self.globals["language"]
        chosen = text.get(lang) or text.get(self.dialog.model.language)
        if chosen is None:
            chosen = next(iter(text.values()), "")
        return self.dialog.template(chosen).render(scope)

    def _say(self, text: Text | None, frame: _Frame, out: list[Action], barge_in: bool) -> None:
        if text is not None:
            out.append(
                Say(self._text(text, self._scope(frame)), self.globals["language"], None, barge_in)
            )

    def _phrases(self, phrases: list[str] | dict[str, list[str]]) -> list[str]:
        if isinstance(phrases, list):
            return phrases
        lang = self.globals["language"]
        return phrases.get(lang) or phrases.get(self.dialog.model.language) or []

    def _end_flow(self, frame: _Frame, out: list[Action]) -> None:
        if len(self.frames) == 1:
            self._finish("completed", Hangup("completed"), out)
            return
        self.frames.pop()
        parent = self.frames[-1]
        call = frame.call
        assert call is not None
        for here, there in call.outputs.items():
            if there not in frame.vars:
                raise ExpressionError(f"sub-dialog '{call.dialog}' did not set '{there}'")
            parent.vars[here] = frame.vars[there]
        self._goto(parent, call.next)

    # ----------------------------------------------------------------- node kinds

    def _do_say(self, node: SayNode, frame: _Frame, out: list[Action]) -> None:
        scope = self._scope(frame)
        text = self._text(node.text, scope) if node.text is not None else ""
        audio = None
        if node.audio is not None:
            audio = node.audio if isinstance(node.audio, str) else self._pick(node.audio)
        out.append(Say(text, self.globals["language"], audio, node.barge_in))
        if node.next is None:
            self._end_flow(frame, out)
        else:
            self._goto(frame, node.next)

    def _pick(self, per_language: dict[str, str]) -> str:
        lang = self.globals["language"]
        found = per_language.get(lang) or per_language.get(self.dialog.model.language)
        return found if found is not None else next(iter(per_language.values()), "")

    def _do_input(
        self, node: MenuNode | AskNode | SurveyNode, frame: _Frame, out: list[Action]
    ) -> None:
        self._no_input = self._no_match = 0
        self._buffer = ""
        if isinstance(node, SurveyNode):
            self._say(node.intro, frame, out, True)
            self._question = -1
            self._next_question(node, frame, out)
            return
        self._prompt(node, frame, out, None)

    def _prompt(self, node: Any, frame: _Frame, out: list[Action], text: Text | None) -> None:
        """Say the (re)prompt and listen."""
        question = self._current_question(node)
        prompt = text if text is not None else (question.prompt if question else node.prompt)
        self._say(prompt, frame, out, node.barge_in)
        lang = self.globals["language"]
        key = ("listen", id(node), self._question if question is not None else -1, lang)
        listen = self.dialog.cache.get(key)
        if listen is None:
            max_digits, terminator = _keys_shape(node, question)
            listen = self.dialog.cache[key] = Listen(
                expect=_expect(node, question),
                node=_label(frame),
                min_digits=node.min_length if isinstance(node, AskNode) else 1,
                max_digits=max_digits,
                terminator=terminator,
                timeout_s=node.timeout_s,
                hints=self._collect_hints(node, question),
                lang=lang,
                options=self._options(node, question),
            )
        out.append(listen)
        self._waiting = _INPUT

    def _collect_hints(self, node: Any, question: SurveyQuestion | None) -> tuple[str, ...]:
        phrases: list[str] = []
        if isinstance(node, MenuNode):
            for option in node.options:
                phrases.extend(self._phrases(option.phrases))
        elif isinstance(node, AskNode):
            for choice in node.choices:
                phrases.extend(self._phrases(choice.phrases))
            phrases.extend(node.hints)
        elif question is not None:
            for choice in question.choices:
                phrases.extend(self._phrases(choice.phrases))
        return tuple(phrases)

    def _options(self, node: Any, question: SurveyQuestion | None) -> tuple[tuple[str, str], ...]:
        """The keyed choices with their first phrase as the label (a text menu's lines)."""
        if isinstance(node, MenuNode):
            choices: list[Any] = list(node.options)
        elif isinstance(node, AskNode):
            choices = list(node.choices)
        elif question is not None:
            choices = list(question.choices)
        else:
            return ()
        out = []
        for choice in choices:
            phrases = self._phrases(choice.phrases)
            label = phrases[0] if phrases else str(getattr(choice, "value", ""))
            if choice.digit is not None and label:
                out.append((str(choice.digit), label))
        return tuple(out)

    def _current_question(self, node: Any) -> SurveyQuestion | None:
        if isinstance(node, SurveyNode) and 0 <= self._question < len(node.questions):
            return node.questions[self._question]
        return None

    def _next_question(self, node: SurveyNode, frame: _Frame, out: list[Action]) -> None:
        scope = self._scope(frame)
        index = self._question + 1
        while index < len(node.questions):
            question = node.questions[index]
            if question.when is None:
                break
            wanted = self.dialog.expression(question.when).evaluate(scope)
            if not isinstance(wanted, bool):
                raise ExpressionError(
                    f"question '{question.id}' when: needs true or false, got {type_name(wanted)}"
                )
            if wanted:
                break
            index += 1
        self._question = index
        self._no_input = self._no_match = 0
        if index >= len(node.questions):
            self._waiting = _IDLE
            self._goto(frame, node.next)
            return
        question = node.questions[index]
        self.asked.append(
            {
                "survey": node.name or frame.node_id,
                "question": question.id,
                "kind": question.kind,
                "min": question.min,
                "max": question.max,
            }
        )
        self._prompt(node, frame, out, None)

    def _input(self, node: Any, frame: _Frame, event: Event, out: list[Action]) -> None:
        question = self._current_question(node)
        if isinstance(event, NoInput) and self._buffer:
            # Keys then silence: the inter-digit timeout ends the entry, as on any IVR.
            event = Digits(self._buffer)
            self._buffer = ""
        if isinstance(event, NoInput):
            self._note("noinput", event)
            self._retry(node, frame, node.no_input, "no_input", out)
            return
        if isinstance(event, Digit):
            max_digits, terminator = _keys_shape(node, question)
            if event.digit == terminator:
                entry: str | Utterance = self._buffer
                self._buffer = ""
            else:
                self._buffer += event.digit
                if len(self._buffer) < max_digits:
                    return  # keep collecting
                entry, self._buffer = self._buffer, ""
        elif isinstance(event, Digits):
            entry = event.digits
            terminator = _keys_shape(node, question)[1]
            if terminator and entry.endswith(terminator):
                entry = entry[: -len(terminator)]
            self._buffer = ""
        elif isinstance(event, Utterance):
            entry = event
        else:
            self._note("ignored", event)
            return
        self._note(
            "digits" if isinstance(entry, str) else "speech",
            Digits(entry) if isinstance(entry, str) else entry,
        )
        if isinstance(entry, Utterance) and entry.confidence < self.dialog.model.min_confidence:
            self._retry(node, frame, node.no_match, "no_match", out)
            return
        if isinstance(node, MenuNode):
            target = self._menu_choice(node, entry)
            if target is None:
                self._retry(node, frame, node.no_match, "no_match", out)
            else:
                self._waiting = _IDLE
                self._goto(frame, target)
            return
        if isinstance(node, AskNode):
            ok, value = self._ask_value(node, entry)
            if ok and node.validate_ is not None:
                scope = Scope({**frame.vars, "value": value}, self.globals)
                verdict = self.dialog.expression(node.validate_).evaluate(scope)
                if not isinstance(verdict, bool):
                    raise ExpressionError(
                        f"validate: needs true or false, got {type_name(verdict)}"
                    )
                ok = verdict
            if not ok:
                self._retry(node, frame, node.no_match, "no_match", out)
                return
            frame.vars[node.var] = value
            self._waiting = _IDLE
            self._goto(frame, node.next)
            return
        assert question is not None
        ok, value = self._survey_value(question, entry)
        if not ok:
            self._retry(node, frame, node.no_match, "no_match", out)
            return
        answers = dict(frame.vars.get(frame.node_id) or {})
        answers[question.id] = value
        frame.vars[frame.node_id] = answers
        survey = node.name or frame.node_id
        self.answers.append((survey, question.id, value))
        out.append(SurveyAnswer(survey, question.id, value, question.kind))
        self._next_question(node, frame, out)

    def _retry(
        self, node: Any, frame: _Frame, retry: Retry | None, kind: str, out: list[Action]
    ) -> None:
        count = self._no_input + 1 if kind == "no_input" else self._no_match + 1
        if kind == "no_input":
            self._no_input = count
        else:
            self._no_match = count
        allowed = retry.retries if retry is not None else _DEFAULT_RETRY_COUNT
        self._buffer = ""
        if count > allowed:
            self._waiting = _IDLE
            if retry is None:
                self._finish("hangup", Hangup(kind), out)
            else:
                self._goto(frame, retry.fallback)
            return
        if self.steps >= self.step_limit:
            self._waiting = _IDLE  # the loop ends the session
            return
        self.steps += 1  # a re-prompt is progress too, so endless retries hit the limit
        prompts = retry.prompts if retry is not None else []
        text = prompts[min(count, len(prompts)) - 1] if prompts else None
        self._prompt(node, frame, out, text)

    def _menu_choice(self, node: MenuNode, entry: str | Utterance) -> str | None:
        if isinstance(entry, Utterance):
            keys = matching.spoken_digits(entry.text)
            if keys is None:
                index = matching.best_match(
                    entry.text,
                    ((i, self._phrases(o.phrases)) for i, o in enumerate(node.options)),
                )
                return None if index is None else node.options[index].next
            entry = keys
        for option in node.options:
            if option.digit == entry:
                return option.next
        return None

    def _choice(self, choices: list[Choice], entry: str | Utterance) -> tuple[bool, Value]:
        if isinstance(entry, str):
            for choice in choices:
                if choice.digit == entry:
                    return True, choice.value
            return False, None
        index = matching.best_match(
            entry.text,
            ((i, [*self._phrases(c.phrases), str(c.value)]) for i, c in enumerate(choices)),
        )
        return (False, None) if index is None else (True, choices[index].value)

    def _today(self) -> date:
        return date.fromisoformat(self.globals["now"]["date"])

    def _ask_value(self, node: AskNode, entry: str | Utterance) -> tuple[bool, Value]:
        expect = node.expect
        if expect == "speech":
            text = entry if isinstance(entry, str) else entry.text.strip()
            return bool(text), text
        if expect == "choice":
            return self._choice(node.choices, entry)
        if expect == "yes_no":
            return _yes_no(entry)
        if expect == "digits":
            keys = entry if isinstance(entry, str) else matching.spoken_digits(entry.text)
            if keys is None or not keys.isdecimal():
                return False, None
            return node.min_length <= len(keys) <= node.max_length, keys
        if expect == "date":
            text = entry if isinstance(entry, str) else entry.text
            found = matching.date_in(text, self._today(), node.date_order)
            return (False, None) if found is None else (True, found.isoformat())
        # amount
        if isinstance(entry, str):
            amount = matching.amount_from_keys(entry)
        else:
            amount = matching.number_in(entry.text)
        return amount is not None, amount

    def _survey_value(self, question: SurveyQuestion, entry: str | Utterance) -> tuple[bool, Value]:
        if question.kind == "scale":
            number: Value
            if isinstance(entry, str):
                number = int(entry) if entry.isdecimal() else None
            else:
                number = matching.number_in(entry.text)
            if isinstance(number, int) and question.min <= number <= question.max:
                return True, number
            return False, None
        if question.kind == "choice":
            return self._choice(question.choices, entry)
        if question.kind == "yes_no":
            return _yes_no(entry)
        text = entry if isinstance(entry, str) else entry.text.strip()
        return bool(text), text

    def _do_lookup(self, node: LookupNode, frame: _Frame, out: list[Action]) -> None:
        scope = self._scope(frame)
        url = self.dialog.template(node.url).render(scope, _url_quote)
        headers = {k: self.dialog.template(v).render(scope) for k, v in node.headers.items()}
        body = self._render_data(node.body, scope)
        out.append(
            Lookup(
                node.method,
                url,
                _label(frame),
                headers,
                dict(node.secret_headers),
                body,
                node.timeout_s,
            )
        )
        self._waiting = _LOOKUP

    def _lookup_done(self, node: LookupNode, frame: _Frame, result: LookupResult) -> None:
        self.globals["lookup_status"] = result.status
        error = result.error
        if error is None and not result.ok:
            error = f"HTTP status {result.status}"
        values: dict[str, Any] = {}
        if error is None:
            for var, path in node.map.items():
                found, value = _json_path(result.body, path)
                if not found:
                    error = f"field '{path}' missing in the response"
                    break
                values[var] = value
        self.globals["lookup_error"] = error
        if error is not None:
            self._errors.append(f"lookup {_label(frame)}: {error}")
            self._goto(frame, node.on_error)
            return
        frame.vars.update(values)
        self._goto(frame, node.next)

    def _render_data(self, data: Any, scope: Scope) -> Any:
        if isinstance(data, str):
            return self.dialog.template(data).value(scope)
        if isinstance(data, dict):
            return {k: self._render_data(v, scope) for k, v in data.items()}
        if isinstance(data, list):
            return [self._render_data(v, scope) for v in data]
        return data

    def _do_branch(self, node: BranchNode, frame: _Frame, out: list[Action]) -> None:
        scope = self._scope(frame)
        for case in node.cases:
            verdict = self.dialog.expression(case.when).evaluate(scope)
            if not isinstance(verdict, bool):
                raise ExpressionError(
                    f"condition `{case.when}` must be true or false, got {type_name(verdict)}"
                )
            if verdict:
                self._goto(frame, case.next)
                return
        self._goto(frame, node.else_)

    def _do_set(self, node: SetNode, frame: _Frame, out: list[Action]) -> None:
        scope = self._scope(frame)
        for name, source in node.values.items():
            value = (
                self.dialog.expression(source).evaluate(scope)
                if isinstance(source, str)
                else source
            )
            if name == "language":
                if value not in self.dialog.model.languages:
                    raise ExpressionError(
                        f"language {value!r} is not one of the dialog's languages"
                    )
                self.globals["language"] = value
            else:
                frame.vars[name] = value
        self._goto(frame, node.next)

    def _do_goto(self, node: GotoNode, frame: _Frame, out: list[Action]) -> None:
        self._goto(frame, node.target)

    def _do_subdialog(self, node: SubdialogNode, frame: _Frame, out: list[Action]) -> None:
        flow = self.dialog.flows.get(node.dialog)
        if flow is None or node.dialog == "main":
            raise ExpressionError(f"no sub-dialog named '{node.dialog}'")
        if len(self.frames) >= 16:
            raise ExpressionError("sub-dialogs nested more than 16 deep")
        scope = self._scope(frame)
        variables = dict(flow.variables)
        for name, source in node.params.items():
            variables[name] = (
                self.dialog.expression(source).evaluate(scope)
                if isinstance(source, str)
                else source
            )
        self.frames.append(_Frame(flow, variables, node, self.globals))

    def _do_return(self, node: ReturnNode, frame: _Frame, out: list[Action]) -> None:
        scope = self._scope(frame)
        for name, source in node.values.items():
            frame.vars[name] = (
                self.dialog.expression(source).evaluate(scope)
                if isinstance(source, str)
                else source
            )
        self._end_flow(frame, out)

    def _priority(self, priority: int | str, scope: Scope) -> int:
        if isinstance(priority, int):
            return priority
        value = self.dialog.template(priority).value(scope)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ExpressionError(f"priority must be a whole number, got {value!r}") from None

    def _do_queue(self, node: QueueNode, frame: _Frame, out: list[Action]) -> None:
        scope = self._scope(frame)
        data = self._render_data(node.data, scope)
        action = Queue(node.queue, self._priority(node.priority, scope), tuple(node.skills), data)
        self._say(node.prompt, frame, out, False)
        self._finish("queued", action, out)

    def _do_transfer(self, node: TransferNode, frame: _Frame, out: list[Action]) -> None:
        number = self.dialog.template(node.number).render(self._scope(frame))
        self._say(node.prompt, frame, out, False)
        self._finish("transferred", Transfer(number), out)

    def _do_voicemail(self, node: VoicemailNode, frame: _Frame, out: list[Action]) -> None:
        self._say(node.prompt, frame, out, False)
        self._finish("voicemail", Voicemail(node.mailbox, node.max_seconds), out)

    def _do_callback(self, node: CallbackNode, frame: _Frame, out: list[Action]) -> None:
        scope = self._scope(frame)
        number = self.dialog.template(node.number).render(scope)
        data = self._render_data(node.data, scope)
        action = Callback(node.queue, number, self._priority(node.priority, scope), data)
        self._say(node.prompt, frame, out, False)
        self._finish("callback", action, out)

    def _do_hangup(self, node: HangupNode, frame: _Frame, out: list[Action]) -> None:
        self._say(node.prompt, frame, out, False)
        self._finish("hangup", Hangup(node.reason), out)


_HANDLERS: dict[type, Callable[[Interpreter, Any, _Frame, list[Action]], None]] = {
    SayNode: Interpreter._do_say,
    MenuNode: Interpreter._do_input,
    AskNode: Interpreter._do_input,
    SurveyNode: Interpreter._do_input,
    LookupNode: Interpreter._do_lookup,
    BranchNode: Interpreter._do_branch,
    SetNode: Interpreter._do_set,
    GotoNode: Interpreter._do_goto,
    SubdialogNode: Interpreter._do_subdialog,
    ReturnNode: Interpreter._do_return,
    QueueNode: Interpreter._do_queue,
    TransferNode: Interpreter._do_transfer,
    VoicemailNode: Interpreter._do_voicemail,
    CallbackNode: Interpreter._do_callback,
    HangupNode: Interpreter._do_hangup,
}


def _label(frame: _Frame) -> str:
    name = frame.flow.name
    return frame.node_id if name == "main" else f"{name}.{frame.node_id}"


def _url_quote(text: str) -> str:
    return quote(text, safe="")


def _yes_no(entry: str | Utterance) -> tuple[bool, Value]:
    if isinstance(entry, str):
        answer = {"1": True, "2": False}.get(entry)
    else:
        answer = matching.yes_or_no(entry.text)
    return answer is not None, answer


def _expect(node: Any, question: SurveyQuestion | None) -> str:
    if isinstance(node, MenuNode):
        return "menu"
    if isinstance(node, AskNode):
        return node.expect
    assert question is not None
    return {"scale": "digits", "text": "speech"}.get(question.kind, question.kind)


def _keys_shape(node: Any, question: SurveyQuestion | None) -> tuple[int, str | None]:
    """How many keys make an entry, and which key ends one early."""
    if isinstance(node, AskNode) and node.expect in ("digits", "amount", "date"):
        return (8 if node.expect == "date" else node.max_length), node.terminator
    if question is not None and question.kind == "scale" and question.max >= 10:
        return 2, "#"
    return 1, None


def _json_path(data: Any, path: str) -> tuple[bool, Any]:
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif (
            isinstance(current, list)
            and part.lstrip("-").isdecimal()
            and -len(current) <= int(part) < len(current)
        ):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def _event_value(event: Event) -> Any:
    if isinstance(event, Digit):
        return event.digit
    if isinstance(event, Digits):
        return event.digits
    if isinstance(event, Utterance):
        return {"text": event.text, "confidence": event.confidence}
    if isinstance(event, LookupResult):
        return {"status": event.status, "error": event.error}
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
