"""The dialog language as pydantic models; the JSON Schema admins' editors use comes from here.

One YAML file holds one dialog: a map of named nodes, each with a ``type``. Strings that say
something to the caller are templates (``{{ expression }}`` holes); ``when``, ``validate``,
``set`` values and sub-dialog ``params`` are expressions. See ``LANGUAGE.md``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
NodeId = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")]


def _digit_text(value: Any) -> Any:
    """YAML reads ``digit: 1`` as a number; a keypad digit is text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Digit = Annotated[str, BeforeValidator(_digit_text), Field(pattern=r"^[0-9*#]$")]
Text = str | dict[str, str]
"""A prompt: one template, or one template per language code (``{en: ..., fr: ...}``)."""
Phrases = list[str] | dict[str, list[str]]
"""Speech phrases: one list for every language, or a list per language code."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Retry(_Model):
    """What happens when the caller says nothing (no_input) or nothing that fits (no_match)."""

    prompts: list[Text] = Field(
        default_factory=list,
        description="Escalating prompts, one per attempt; the last repeats. "
        "Empty: repeat the node's prompt.",
    )
    retries: int = Field(2, ge=0, le=10, description="Attempts before the fallback.")
    fallback: NodeId = Field(description="Node to go to once the retries are used up.")


class _Node(_Model):
    description: str | None = None


class _InputNode(_Node):
    no_input: Retry | None = None
    no_match: Retry | None = None
    timeout_s: float = Field(5.0, gt=0, le=120)
    barge_in: bool = True


class SayNode(_Node):
    """Play a prompt (text per language and/or an audio file), then go on."""

    type: Literal["say"]
    text: Text | None = None
    audio: Text | None = Field(None, description="Audio file per language; text is the fallback.")
    barge_in: bool = False
    next: NodeId | None = Field(None, description="Missing: the (sub-)dialog ends here.")

    @model_validator(mode="after")
    def _something_to_say(self) -> SayNode:
        if self.text is None and self.audio is None:
            raise ValueError("a say node needs text or audio")
        return self


class MenuOption(_Model):
    digit: Digit | None = None
    phrases: Phrases = Field(default_factory=list, description="Words or synonyms that pick it.")
    next: NodeId

    @model_validator(mode="after")
    def _selectable(self) -> MenuOption:
        if self.digit is None and not self.phrases:
            raise ValueError("a menu option needs a digit or phrases")
        return self


class MenuNode(_InputNode):
    """Offer options chosen by keypad digit and/or spoken phrase."""

    type: Literal["menu"]
    prompt: Text
    options: list[MenuOption] = Field(min_length=1)


class Choice(_Model):
    value: str | int | float | bool
    digit: Digit | None = None
    phrases: Phrases = Field(default_factory=list)


class AskNode(_InputNode):
    """Collect one value into a variable, optionally checked by a ``validate`` expression."""

    type: Literal["ask"]
    prompt: Text
    var: Identifier
    expect: Literal["digits", "speech", "choice", "yes_no", "date", "amount"]
    min_length: int = Field(1, ge=0, le=64)
    max_length: int = Field(16, ge=1, le=64)
    terminator: Literal["#", "*"] | None = "#"
    choices: list[Choice] = Field(default_factory=list)
    date_order: Literal["dmy", "mdy", "ymd"] = Field(
        "dmy", description="Order of keypad date digits (DDMMYYYY by default)."
    )
    validate_: str | None = Field(
        None,
        alias="validate",
        description="Expression over `value` that must be true; false counts as a no-match.",
    )
    hints: list[str] = Field(default_factory=list, description="Extra phrases for the recognizer.")
    next: NodeId

    @model_validator(mode="after")
    def _consistent(self) -> AskNode:
        if self.expect == "choice" and not self.choices:
            raise ValueError("expect: choice needs choices")
        if self.min_length > self.max_length:
            raise ValueError("min_length is greater than max_length")
        return self


class LookupNode(_Node):
    """Call the customer's own system over HTTP and map JSON fields into variables.

    Secrets never live here: ``secret_headers`` name them as ``${NAME}``, and the runner fills
    them from settings (``HUB_DIALOG_SECRET_NAME``).
    """

    type: Literal["lookup"]
    method: Literal["GET", "POST"] = "GET"
    url: str = Field(description="Template; holes are URL-encoded.")
    headers: dict[str, str] = Field(default_factory=dict, description="Templates.")
    secret_headers: dict[str, str] = Field(
        default_factory=dict, description="Header values with ${SECRET_NAME} placeholders."
    )
    body: Any = Field(None, description="JSON body for POST; strings are templates.")
    timeout_s: float = Field(3.0, gt=0, le=60)
    map: dict[Identifier, str] = Field(
        default_factory=dict, description="variable: JSON path in the response (a.b.0.c)."
    )
    next: NodeId
    on_error: NodeId = Field(description="Where to go on a timeout, HTTP error or bad JSON.")


class BranchCase(_Model):
    when: str = Field(description="Expression that must be true or false.")
    next: NodeId


class BranchNode(_Node):
    """Go to the first case whose condition holds, else to ``else``."""

    type: Literal["branch"]
    cases: list[BranchCase] = Field(min_length=1)
    else_: NodeId = Field(alias="else")


class SetNode(_Node):
    """Compute variables; string values are expressions (write text as `'text'`)."""

    type: Literal["set"]
    values: dict[Identifier, Any] = Field(min_length=1)
    next: NodeId


class GotoNode(_Node):
    type: Literal["goto"]
    target: NodeId


class SubdialogNode(_Node):
    """Run a sub-dialog of this file with parameters, copy its outputs back, then go on."""

    type: Literal["subdialog"]
    dialog: Identifier
    params: dict[Identifier, Any] = Field(default_factory=dict, description="Expressions.")
    outputs: dict[Identifier, Identifier] = Field(
        default_factory=dict, description="variable here: variable in the sub-dialog."
    )
    next: NodeId


class ReturnNode(_Node):
    """End a sub-dialog (values are expressions); at the top level, end the dialog."""

    type: Literal["return"]
    values: dict[Identifier, Any] = Field(default_factory=dict)


class QueueNode(_Node):
    """Hand the contact to an ACD queue, with data for the agent's screen pop."""

    type: Literal["queue"]
    queue: str
    priority: int | str = Field(0, description="A number, or a template giving one.")
    skills: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict, description="Templates.")
    prompt: Text | None = None


class TransferNode(_Node):
    type: Literal["transfer"]
    number: str = Field(description="Template giving an external number.")
    prompt: Text | None = None


class VoicemailNode(_Node):
    type: Literal["voicemail"]
    mailbox: str = "default"
    prompt: Text | None = None
    max_seconds: int = Field(120, ge=5, le=600)


class CallbackNode(_Node):
    """Keep the caller's place in a queue and call back on ``number``."""

    type: Literal["callback"]
    queue: str
    number: str = "{{ caller.number }}"
    priority: int | str = 0
    data: dict[str, Any] = Field(default_factory=dict)
    prompt: Text | None = None


class HangupNode(_Node):
    type: Literal["hangup"]
    prompt: Text | None = None
    reason: str = "completed"


class SurveyQuestion(_Model):
    id: Identifier
    prompt: Text
    kind: Literal["scale", "choice", "yes_no", "text"]
    min: int = 1
    max: int = 5
    choices: list[Choice] = Field(default_factory=list)
    when: str | None = Field(None, description="Ask only when this expression is true.")

    @model_validator(mode="after")
    def _consistent(self) -> SurveyQuestion:
        if self.kind == "choice" and not self.choices:
            raise ValueError("kind: choice needs choices")
        if self.kind == "scale" and not 0 <= self.min < self.max <= 10:
            raise ValueError("a scale needs 0 <= min < max <= 10")
        return self


class SurveyNode(_InputNode):
    """Ask a set of questions; each answer becomes a SurveyAnswer and ``<node>.<question>``."""

    type: Literal["survey"]
    name: str | None = Field(None, description="Survey name stored with answers (default: node).")
    intro: Text | None = None
    questions: list[SurveyQuestion] = Field(min_length=1)
    next: NodeId


Node = Annotated[
    SayNode
    | MenuNode
    | AskNode
    | LookupNode
    | BranchNode
    | SetNode
    | GotoNode
    | SubdialogNode
    | ReturnNode
    | QueueNode
    | TransferNode
    | VoicemailNode
    | CallbackNode
    | HangupNode
    | SurveyNode,
    Field(discriminator="type"),
]

INPUT_TYPES = ("menu", "ask", "survey")
TERMINAL_TYPES = ("queue", "transfer", "voicemail", "callback", "hangup")


class SubDialog(_Model):
    """A reusable piece of dialog with its own variables (e.g. PIN verification)."""

    description: str | None = None
    params: list[Identifier] = Field(default_factory=list)
    variables: dict[Identifier, Any] = Field(default_factory=dict)
    start: NodeId
    nodes: dict[NodeId, Node] = Field(min_length=1)


class LookupStub(_Model):
    """A dialog test's answer to a lookup, so tests need no live server."""

    status: int = 200
    json_: Any = Field(None, alias="json")
    error: str | None = None


class Expectation(_Model):
    prompts: list[str] = Field(
        default_factory=list, description="Texts said, in this order (substring, any case)."
    )
    not_prompts: list[str] = Field(default_factory=list)
    variables: dict[str, Any] = Field(default_factory=dict)
    outcome: str | None = None
    path: list[str] = Field(default_factory=list, description="Nodes visited, in this order.")
    handoff: dict[str, Any] = Field(
        default_factory=dict, description="Fields of the final action (queue, priority, ...)."
    )
    survey: dict[str, Any] = Field(default_factory=dict, description="question: answer")


class TestCase(_Model):
    __test__ = False  # not a pytest class

    name: str
    caller: dict[str, Any] = Field(default_factory=dict)
    now: str | None = Field(None, description="ISO date-time the call happens at.")
    business_hours_open: bool | None = None
    language: str | None = None
    lookups: dict[str, LookupStub] = Field(default_factory=dict, description="By lookup node.")
    inputs: list[str | dict[str, Any]] = Field(
        default_factory=list,
        description='"123#" digits, other text is speech, "<noinput>", "<hangup>".',
    )
    expect: Expectation = Field(default_factory=Expectation)


class DialogModel(_Model):
    """A whole dialog file."""

    dialog: Identifier = Field(description="The dialog's name.")
    description: str | None = None
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    default_language: str | None = None
    start: NodeId
    variables: dict[Identifier, Any] = Field(
        default_factory=dict, description="Variables with their starting values."
    )
    business_hours: dict[str, str] | None = Field(
        None,
        description='Default opening hours, e.g. {"mon-fri": "08:00-18:00", "sat": "09:00-12:00"};'
        " the hub passes the inbox's own.",
    )
    min_confidence: float = Field(0.4, ge=0, le=1, description="Lower utterances are no-match.")
    on_error: NodeId | None = Field(None, description="Where to go when an expression fails.")
    subdialogs: dict[Identifier, SubDialog] = Field(default_factory=dict)
    nodes: dict[NodeId, Node] = Field(min_length=1)
    tests: list[TestCase] = Field(default_factory=list)

    @model_validator(mode="after")
    def _languages(self) -> DialogModel:
        if self.default_language is not None and self.default_language not in self.languages:
            raise ValueError(f"default_language {self.default_language!r} is not in languages")
        return self

    @property
    def language(self) -> str:
        return self.default_language or self.languages[0]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a dialog file (for editors and the admin UI)."""
    schema = DialogModel.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Contact Hub dialog"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True)
