"""Load a dialog from YAML, keeping line numbers so every message can say ``file:line``.

The YAML is composed into nodes first (they carry marks), converted to plain data while the
path of every key is recorded with its line, then validated by the pydantic models. Every
expression and template is compiled here once, so a syntax error is a load error and the
interpreter never parses at run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ivr_dialogs.expressions import Expression, ExpressionError
from ivr_dialogs.hours import BusinessHours
from ivr_dialogs.schema import (
    AskNode,
    BranchNode,
    CallbackNode,
    DialogModel,
    LookupNode,
    MenuNode,
    QueueNode,
    ReturnNode,
    SayNode,
    SetNode,
    SubDialog,
    SubdialogNode,
    SurveyNode,
    TransferNode,
    VoicemailNode,
)
from ivr_dialogs.templates import Template

YamlPath = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about a dialog, pointing at the line an admin must change."""

    file: str
    line: int
    code: str
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message} [{self.code}]"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "code": self.code,
            "message": self.message,
            "severity": self.severity,
        }


class DialogError(Exception):
    """A dialog that cannot be loaded; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class Flow:
    """One set of nodes with its own variables: the main dialog or one sub-dialog."""

    name: str  # "main" or the sub-dialog's name
    start: str
    nodes: dict[str, Any]
    params: tuple[str, ...]
    variables: dict[str, Any]
    path: YamlPath  # where its nodes live in the YAML, e.g. ("subdialogs", "pin", "nodes")


class Dialog:
    """A loaded, compiled dialog. Immutable and shared by every session that runs it."""

    def __init__(self, model: DialogModel, source: str, file: str, lines: dict[YamlPath, int]):
        self.model = model
        self.source = source
        self.file = file
        self.lines = lines
        self.name = model.dialog
        self.main = Flow(
            "main", model.start, dict(model.nodes), (), dict(model.variables), ("nodes",)
        )
        self.flows: dict[str, Flow] = {"main": self.main}
        for name, sub in model.subdialogs.items():
            self.flows[name] = _flow(name, sub)
        self.expressions: dict[str, Expression] = {}
        self.templates: dict[str, Template] = {}
        self.cache: dict[Any, Any] = {}
        """Per-dialog memo for the interpreter (e.g. recognizer hints per node and language)."""
        self.business_hours: BusinessHours | None = None
        if model.business_hours is not None:
            try:
                self.business_hours = BusinessHours.parse(model.business_hours)
            except ValueError as exc:
                line = self.line_of("business_hours")
                raise DialogError(
                    [Problem(file, line, "schema", f"business_hours: {exc}")]
                ) from None
        self._compile_all()

    def __repr__(self) -> str:
        return f"Dialog({self.name!r}, {self.file!r})"

    def line_of(self, *path: Any) -> int:
        """The line of the deepest part of ``path`` found in the YAML (1 if none)."""
        best = 1
        current: YamlPath = ()
        for part in path:
            candidate = (*current, str(part))
            if candidate in self.lines:
                current = candidate
                best = self.lines[candidate]
        return best

    def node_line(self, flow: Flow, node_id: str, *rest: Any) -> int:
        return self.line_of(*flow.path, node_id, *rest)

    def expression(self, source: str) -> Expression:
        found = self.expressions.get(source)
        if found is None:
            found = self.expressions[source] = Expression(source)
        return found

    def template(self, source: str) -> Template:
        found = self.templates.get(source)
        if found is None:
            found = self.templates[source] = Template(source)
        return found

    def _compile_all(self) -> None:
        problems: list[Problem] = []
        for flow in self.flows.values():
            for node_id, node in flow.nodes.items():
                for rel_path, kind, text in code_in_node(node):
                    try:
                        if kind == "expr":
                            self.expression(text)
                        else:
                            self.template(text)
                    except ExpressionError as exc:
                        line = self.node_line(flow, node_id, *rel_path)
                        what = "expression" if kind == "expr" else "template"
                        problems.append(Problem(self.file, line, "syntax", f"bad {what}: {exc}"))
        if problems:
            raise DialogError(problems)


def _flow(name: str, sub: SubDialog) -> Flow:
    return Flow(
        name,
        sub.start,
        dict(sub.nodes),
        tuple(sub.params),
        dict(sub.variables),
        ("subdialogs", name, "nodes"),
    )


# --------------------------------------------------------------------------- code in nodes


def _texts(value: Any, path: YamlPath) -> Iterator[tuple[YamlPath, str, str]]:
    if value is None:
        return
    if isinstance(value, str):
        yield path, "template", value
    elif isinstance(value, dict):
        for lang, text in value.items():
            yield (*path, lang), "template", text


def _values(value: Any, path: YamlPath, kind: str) -> Iterator[tuple[YamlPath, str, str]]:
    """Strings nested in data (a lookup body, set values) as expressions or templates."""
    if isinstance(value, str):
        yield path, kind, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _values(item, (*path, str(key)), kind)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _values(item, (*path, str(index)), kind)


def _retry_texts(node: Any) -> Iterator[tuple[YamlPath, str, str]]:
    for name in ("no_input", "no_match"):
        retry = getattr(node, name)
        if retry is not None:
            for index, prompt in enumerate(retry.prompts):
                yield from _texts(prompt, (name, "prompts", str(index)))


def code_in_node(node: Any) -> Iterator[tuple[YamlPath, str, str]]:
    """Every expression ("expr") and template ("template") in a node, with its YAML path."""
    if isinstance(node, SayNode):
        yield from _texts(node.text, ("text",))
    elif isinstance(node, MenuNode):
        yield from _texts(node.prompt, ("prompt",))
        yield from _retry_texts(node)
    elif isinstance(node, AskNode):
        yield from _texts(node.prompt, ("prompt",))
        yield from _retry_texts(node)
        if node.validate_ is not None:
            yield ("validate",), "expr", node.validate_
    elif isinstance(node, LookupNode):
        yield ("url",), "template", node.url
        yield from _values(node.headers, ("headers",), "template")
        yield from _values(node.body, ("body",), "template")
    elif isinstance(node, BranchNode):
        for index, case in enumerate(node.cases):
            yield ("cases", str(index), "when"), "expr", case.when
    elif isinstance(node, SetNode | ReturnNode):
        yield from _values(node.values, ("values",), "expr")
    elif isinstance(node, SubdialogNode):
        yield from _values(node.params, ("params",), "expr")
    elif isinstance(node, QueueNode | CallbackNode):
        yield from _texts(node.prompt, ("prompt",))
        if isinstance(node.priority, str):
            yield ("priority",), "template", node.priority
        yield from _values(node.data, ("data",), "template")
        if isinstance(node, CallbackNode):
            yield ("number",), "template", node.number
    elif isinstance(node, TransferNode):
        yield from _texts(node.prompt, ("prompt",))
        yield ("number",), "template", node.number
    elif isinstance(node, VoicemailNode):
        yield from _texts(node.prompt, ("prompt",))
    elif isinstance(node, SurveyNode):
        yield from _texts(node.intro, ("intro",))
        yield from _retry_texts(node)
        for index, question in enumerate(node.questions):
            yield from _texts(question.prompt, ("questions", str(index), "prompt"))
            if question.when is not None:
                yield ("questions", str(index), "when"), "expr", question.when
    else:  # hangup, goto
        prompt = getattr(node, "prompt", None)
        yield from _texts(prompt, ("prompt",))


# --------------------------------------------------------------------------- YAML


def _plain(node: yaml.Node, path: YamlPath, lines: dict[YamlPath, int], file: str) -> Any:
    """Convert composed YAML to data, recording each path's line and refusing duplicate keys."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _plain(key_node, (*path, "\0key"), {}, file)
            if isinstance(key, list | dict):
                raise DialogError(
                    [
                        Problem(
                            file, key_node.start_mark.line + 1, "yaml", "a key must be plain text"
                        )
                    ]
                )
            if key in result:
                raise DialogError(
                    [
                        Problem(
                            file,
                            key_node.start_mark.line + 1,
                            "duplicate",
                            f"duplicate key {key!r}",
                        )
                    ]
                )
            child = (*path, str(key))
            lines[child] = key_node.start_mark.line + 1
            result[key] = _plain(value_node, child, lines, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _plain(item, (*path, str(index)), lines, file) for index, item in enumerate(node.value)
        ]
    return _scalar(node)


class _DialogLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. A node named ``no`` or an answer ``yes`` stays text."""


_DialogLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_DialogLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _scalar(node: yaml.Node) -> Any:
    """A scalar with the type YAML resolved for it (int, bool, date, text...)."""
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    value = yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    return value.isoformat() if hasattr(value, "isoformat") else value


def _parse_yaml(text: str, file: str) -> tuple[Any, dict[YamlPath, int]]:
    try:
        root = yaml.compose(text, Loader=_DialogLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise DialogError([Problem(file, line, "yaml", f"invalid YAML: {problem}")]) from None
    if root is None:
        raise DialogError([Problem(file, 1, "yaml", "the file is empty")])
    lines: dict[YamlPath, int] = {}
    return _plain(root, (), lines, file), lines


def _schema_problems(exc: ValidationError, file: str, lines: dict[YamlPath, int]) -> list[Problem]:
    problems = []
    for error in exc.errors():
        line = 1
        current: YamlPath = ()
        shown: list[str] = []
        loc = list(error["loc"])
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append("type")
        for part in loc:
            candidate = (*current, str(part))
            if candidate in lines:
                current = candidate
                line = lines[candidate]
                shown.append(str(part))
        where = ".".join(shown) or "(top)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "union_tag_invalid":
            context = error.get("ctx", {})
            message = (
                f"unknown node type {context.get('tag')!r} "
                f"(known: {str(context.get('expected_tags', '')).replace(chr(39), '')})"
            )
        elif error["type"] == "union_tag_not_found":
            message = "a node needs a type (say, menu, ask, ...)"
        problems.append(Problem(file, line, "schema", f"{where}: {message}"))
    # A union error is reported once per member; keep the first per line and message.
    unique: dict[tuple[int, str], Problem] = {}
    for problem in problems:
        unique.setdefault((problem.line, problem.message), problem)
    return list(unique.values())


def parse_dialog_data(text: str, file: str = "<dialog>") -> tuple[Any, dict[YamlPath, int]]:
    """YAML text to data plus its line map (dialog tests files use this too)."""
    return _parse_yaml(text, file)


def load_dialog(path_or_text: str | Path, *, file: str | None = None) -> Dialog:
    """Load a dialog from a path or from YAML text; raises DialogError with ``file:line``s."""
    if isinstance(path_or_text, Path) or (
        "\n" not in path_or_text and path_or_text.endswith((".yaml", ".yml"))
    ):
        path = Path(path_or_text)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DialogError(
                [Problem(str(path), 0, "io", f"cannot read: {exc.strerror}")]
            ) from None
        file = file or str(path)
    else:
        text = str(path_or_text)
    return load_dialog_text(text, file=file or "<dialog>")


def load_dialog_text(text: str, *, file: str = "<dialog>") -> Dialog:
    """Load a dialog from YAML text (never read as a path, e.g. a stored version's source)."""
    data, lines = _parse_yaml(text, file)
    if not isinstance(data, dict):
        raise DialogError([Problem(file, 1, "schema", "a dialog file is a mapping")])
    try:
        model = DialogModel.model_validate(data)
    except ValidationError as exc:
        raise DialogError(_schema_problems(exc, file, lines)) from None
    return Dialog(model, text, file, lines)
