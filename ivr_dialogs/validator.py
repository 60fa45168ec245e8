"""Find mistakes in a dialog before a caller does, each with the ``file:line`` to fix.

Checks (``code``): unknown targets and sub-dialogs, sub-dialog parameters, unreachable nodes,
input nodes without no-input/no-match handling, loops with no exit, variables read before
they are set (data-flow over every path), prompts missing in a declared language, reserved
variable names, and secrets written into the YAML. Syntax and schema errors are found when
the dialog loads; ``validate_file`` reports those the same way.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from ivr_dialogs.interpreter import BUILTIN_NAMES
from ivr_dialogs.loader import Dialog, DialogError, Flow, Problem, code_in_node, load_dialog
from ivr_dialogs.schema import (
    INPUT_TYPES,
    TERMINAL_TYPES,
    AskNode,
    BranchNode,
    GotoNode,
    LookupNode,
    MenuNode,
    ReturnNode,
    SayNode,
    SetNode,
    SubdialogNode,
    SurveyNode,
)

_PROGRESS = (MenuNode, AskNode, SurveyNode, SetNode, LookupNode, SubdialogNode)
"""Nodes that wait for the caller or change variables: a loop through one can end."""

# An edge: (YAML path inside the node, target node id, variables set when it is taken).
Edge = tuple[tuple[str, ...], str, frozenset[str]]
_NOTHING: frozenset[str] = frozenset()
_SECRET_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SECRET_LOOKING_HEADERS = re.compile(
    r"^(authorization|proxy-authorization|x-api-key|api-key|x-auth-token|cookie)$", re.I
)


def edges(node: Any, node_id: str) -> list[Edge]:
    """Where a node can go next, and what it sets on the way."""
    found: list[Edge] = []
    if isinstance(node, MenuNode):
        for index, option in enumerate(node.options):
            found.append((("options", str(index), "next"), option.next, _NOTHING))
    elif isinstance(node, AskNode):
        found.append((("next",), node.next, frozenset({node.var})))
    elif isinstance(node, SurveyNode):
        found.append((("next",), node.next, frozenset({node_id})))
    elif isinstance(node, LookupNode):
        found.append((("next",), node.next, frozenset(node.map)))
        found.append((("on_error",), node.on_error, _NOTHING))
    elif isinstance(node, BranchNode):
        for index, case in enumerate(node.cases):
            found.append((("cases", str(index), "next"), case.next, _NOTHING))
        found.append((("else",), node.else_, _NOTHING))
    elif isinstance(node, SetNode):
        found.append((("next",), node.next, frozenset(node.values) - {"language"}))
    elif isinstance(node, GotoNode):
        found.append((("target",), node.target, _NOTHING))
    elif isinstance(node, SubdialogNode):
        found.append((("next",), node.next, frozenset(node.outputs)))
    elif isinstance(node, SayNode) and node.next is not None:
        found.append((("next",), node.next, _NOTHING))
    if isinstance(node, MenuNode | AskNode | SurveyNode):
        for name in ("no_input", "no_match"):
            retry = getattr(node, name)
            if retry is not None:
                found.append(((name, "fallback"), retry.fallback, _NOTHING))
    return found


def _ends(node: Any) -> bool:
    """Whether the (sub-)dialog can end at this node."""
    return (
        node.type in TERMINAL_TYPES
        or isinstance(node, ReturnNode)
        or (isinstance(node, SayNode) and node.next is None)
    )


def _sets(node: Any, node_id: str) -> set[str]:
    names: set[str] = set()
    for _path, _target, defs in edges(node, node_id):
        names |= defs
    if isinstance(node, ReturnNode):
        names |= set(node.values)
    return names


def _reads(dialog: Dialog, node: Any, node_id: str) -> Iterator[tuple[tuple[str, ...], str]]:
    for path, kind, source in code_in_node(node):
        compiled = dialog.expression(source) if kind == "expr" else dialog.template(source)
        for name in sorted(compiled.names):
            if isinstance(node, AskNode) and path == ("validate",) and name == "value":
                continue
            if isinstance(node, SurveyNode) and name == node_id:
                continue  # earlier answers of this same survey
            yield path, name


class _Checker:
    def __init__(self, dialog: Dialog, recorded: Collection[tuple[str, str]] = ()) -> None:
        self.dialog = dialog
        self.recorded = frozenset(recorded)
        self.problems: list[Problem] = []

    def add(self, line: int, code: str, message: str, severity: str = "error") -> None:
        self.problems.append(Problem(self.dialog.file, line, code, message, severity))

    def line(self, flow: Flow, node_id: str, *path: str) -> int:
        return self.dialog.node_line(flow, node_id, *path)

    def run(self) -> list[Problem]:
        model = self.dialog.model
        if model.on_error is not None and model.on_error not in self.dialog.main.nodes:
            self.add(
                self.dialog.line_of("on_error"),
                "unknown-target",
                f"on_error: no node named '{model.on_error}'",
            )
        for name, flow in self.dialog.flows.items():
            if flow.start not in flow.nodes:
                where = ("start",) if name == "main" else ("subdialogs", name, "start")
                self.add(
                    self.dialog.line_of(*where), "unknown-target", f"start: no node '{flow.start}'"
                )
                continue
            self.flow(flow)
        self.tests()
        return sorted(self.problems, key=lambda p: (p.line, p.code))

    def flow(self, flow: Flow) -> None:
        graph: dict[str, list[Edge]] = {}
        for node_id, node in flow.nodes.items():
            graph[node_id] = []
            for path, target, defs in edges(node, node_id):
                if target in flow.nodes:
                    graph[node_id].append((path, target, defs))
                else:
                    hint = (
                        " (sub-dialogs cannot jump to the main dialog)"
                        if flow.name != "main"
                        else ""
                    )
                    self.add(
                        self.line(flow, node_id, *path),
                        "unknown-target",
                        f"node '{node_id}': no node named '{target}' to go to{hint}",
                    )
            self.node(flow, node_id, node)
        roots = [flow.start]
        if flow.name == "main" and self.dialog.model.on_error in flow.nodes:
            roots.append(self.dialog.model.on_error)  # type: ignore[arg-type]
        reachable = _reachable(graph, roots)
        for node_id in flow.nodes:
            if node_id not in reachable:
                self.add(
                    self.line(flow, node_id),
                    "unreachable",
                    f"node '{node_id}' can never be reached",
                    "warning",
                )
        self.loops(flow, graph)
        self.variables(flow, graph, roots)

    def node(self, flow: Flow, node_id: str, node: Any) -> None:
        if node.type in INPUT_TYPES:
            for name, code in (
                ("no_input", "no-input-handling"),
                ("no_match", "no-match-handling"),
            ):
                if getattr(node, name) is None:
                    self.add(
                        self.line(flow, node_id),
                        code,
                        f"{node.type} '{node_id}' has no {name} handling "
                        "(prompts, retries, fallback)",
                    )
        if isinstance(node, SubdialogNode):
            self.subdialog_call(flow, node_id, node)
        if isinstance(node, SetNode):
            for name in node.values:
                if name in BUILTIN_NAMES and name != "language":
                    self.add(
                        self.line(flow, node_id, "values", name),
                        "reserved-variable",
                        f"'{name}' is set by the session and cannot be assigned",
                    )
        if isinstance(node, AskNode | LookupNode):
            names = [node.var] if isinstance(node, AskNode) else list(node.map)
            for name in names:
                if name in BUILTIN_NAMES:
                    self.add(
                        self.line(flow, node_id),
                        "reserved-variable",
                        f"'{name}' is set by the session and cannot be assigned",
                    )
        if isinstance(node, LookupNode):
            self.secrets(flow, node_id, node)
        self.prompts(flow, node_id, node)
        self.phrases(flow, node_id, node)

    def subdialog_call(self, flow: Flow, node_id: str, node: SubdialogNode) -> None:
        target = self.dialog.flows.get(node.dialog)
        if target is None or node.dialog == "main":
            known = ", ".join(n for n in self.dialog.flows if n != "main") or "none"
            self.add(
                self.line(flow, node_id, "dialog"),
                "unknown-subdialog",
                f"node '{node_id}': no sub-dialog named '{node.dialog}' (known: {known})",
            )
            return
        for name in node.params:
            if name not in target.params:
                self.add(
                    self.line(flow, node_id, "params", name),
                    "subdialog-params",
                    f"sub-dialog '{node.dialog}' has no parameter '{name}'",
                )
        for name in target.params:
            if name not in node.params:
                self.add(
                    self.line(flow, node_id),
                    "subdialog-params",
                    f"parameter '{name}' of sub-dialog '{node.dialog}' is not given",
                )
        set_inside = set(target.variables) | set(target.params)
        for sub_id, sub_node in target.nodes.items():
            set_inside |= _sets(sub_node, sub_id)
        for here, there in node.outputs.items():
            if there not in set_inside:
                self.add(
                    self.line(flow, node_id, "outputs", here),
                    "read-unset",
                    f"sub-dialog '{node.dialog}' never sets '{there}'",
                )

    def secrets(self, flow: Flow, node_id: str, node: LookupNode) -> None:
        for header, value in node.headers.items():
            if _SECRET_LOOKING_HEADERS.match(header) and "{{" not in value:
                self.add(
                    self.line(flow, node_id, "headers", header),
                    "secret-in-yaml",
                    f"header '{header}' looks like a secret written into the dialog; "
                    f"use secret_headers: {{{header}: 'Bearer ${{NAME}}'}} and set "
                    "HUB_DIALOG_SECRET_NAME",
                )
        for header, value in node.secret_headers.items():
            names = _SECRET_PLACEHOLDER.findall(value)
            if not names:
                self.add(
                    self.line(flow, node_id, "secret_headers", header),
                    "secret-placeholder",
                    f"secret header '{header}' has no ${{NAME}} placeholder",
                )
            for name in names:
                if not _SECRET_NAME.match(name):
                    self.add(
                        self.line(flow, node_id, "secret_headers", header),
                        "secret-placeholder",
                        f"secret name '{name}' must be upper case (A-Z, 0-9, _)",
                    )

    def prompts(self, flow: Flow, node_id: str, node: Any) -> None:
        """Every declared language needs its prompt: a text in that language, or a recording
        of the text the interpreter falls back to (``recorded``: (language, text) pairs)."""
        languages = self.dialog.model.languages
        default = self.dialog.model.language
        for path, text in text_fields(node):
            spoken = path[0] != "audio"  # a recording replaces words, not an audio file
            if isinstance(text, str):
                unrecorded = [
                    lang
                    for lang in languages
                    if lang != default and not (spoken and (lang, text) in self.recorded)
                ]
                if len(languages) > 1 and unrecorded:
                    self.add(
                        self.line(flow, node_id, *path),
                        "missing-prompt",
                        f"node '{node_id}' {'.'.join(path)}: one text for all of "
                        f"{', '.join(languages)}; give one per language or upload a "
                        f"recording in {', '.join(unrecorded)}",
                    )
                continue
            fallback = text.get(default) or next(iter(text.values()), "")
            for lang in languages:
                if lang not in text and not (spoken and (lang, fallback) in self.recorded):
                    self.add(
                        self.line(flow, node_id, *path),
                        "missing-prompt",
                        f"node '{node_id}' {'.'.join(path)}: no prompt in '{lang}'",
                    )
            for lang in text:
                if lang not in languages:
                    self.add(
                        self.line(flow, node_id, *path, lang),
                        "unknown-language",
                        f"node '{node_id}': '{lang}' is not one of the dialog's languages",
                        "warning",
                    )

    def phrases(self, flow: Flow, node_id: str, node: Any) -> None:
        """Speech phrases given per language must cover every declared language."""
        languages = self.dialog.model.languages
        groups: list[tuple[tuple[str, ...], Any]] = []
        if isinstance(node, MenuNode):
            groups = [(("options", str(i)), o.phrases) for i, o in enumerate(node.options)]
        elif isinstance(node, AskNode):
            groups = [(("choices", str(i)), c.phrases) for i, c in enumerate(node.choices)]
        elif isinstance(node, SurveyNode):
            groups = [
                (("questions", str(q), "choices", str(i)), c.phrases)
                for q, question in enumerate(node.questions)
                for i, c in enumerate(question.choices)
            ]
        for path, phrases in groups:
            if isinstance(phrases, dict):
                missing = [lang for lang in languages if lang not in phrases]
                if missing:
                    self.add(
                        self.line(flow, node_id, *path, "phrases"),
                        "missing-phrases",
                        f"node '{node_id}': no phrases in {', '.join(missing)}; "
                        "callers speaking it can only use the keypad",
                        "warning",
                    )

    def loops(self, flow: Flow, graph: dict[str, list[Edge]]) -> None:
        successors = {n: [t for _p, t, _d in out] for n, out in graph.items()}
        for component in _strongly_connected(successors):
            members = set(component)
            first = component[0]
            is_loop = len(component) > 1 or first in successors[first]
            if not is_loop:
                continue
            leaves = any(t not in members for n in component for t in successors[n])
            ends = any(_ends(flow.nodes[n]) or self._sub_can_end(flow.nodes[n]) for n in component)
            names = ", ".join(sorted(members))
            first_line = min(self.line(flow, n) for n in component)
            if not leaves and not ends:
                self.add(
                    first_line, "loop-no-exit", f"nodes {names} form a loop that nothing leaves"
                )
            elif not any(isinstance(flow.nodes[n], _PROGRESS) for n in component):
                self.add(
                    first_line,
                    "loop-no-progress",
                    f"nodes {names} loop without waiting for the caller or changing a variable; "
                    "only the step limit will end it",
                    "warning",
                )

    def _sub_can_end(self, node: Any) -> bool:
        if not isinstance(node, SubdialogNode):
            return False
        target = self.dialog.flows.get(node.dialog)
        return target is not None and any(n.type in TERMINAL_TYPES for n in target.nodes.values())

    def variables(self, flow: Flow, graph: dict[str, list[Edge]], roots: list[str]) -> None:
        initial = frozenset(BUILTIN_NAMES | set(flow.variables) | set(flow.params))
        defined: dict[str, frozenset[str]] = {root: initial for root in roots}
        work = list(roots)
        while work:
            node_id = work.pop()
            here = defined[node_id]
            for _path, target, defs in graph[node_id]:
                arriving = here | defs
                before = defined.get(target)
                after = arriving if before is None else before & arriving
                if after != before:
                    defined[target] = after
                    work.append(target)
        anywhere = set(initial)
        for node_id, node in flow.nodes.items():
            anywhere |= _sets(node, node_id)
        for node_id, node in flow.nodes.items():
            if node_id not in defined:
                continue  # unreachable: reported already
            seen: set[str] = set()
            for path, name in _reads(self.dialog, node, node_id):
                if name in defined[node_id] or name in seen:
                    continue
                seen.add(name)
                line = self.line(flow, node_id, *path)
                if name not in anywhere:
                    self.add(
                        line,
                        "read-unset",
                        f"node '{node_id}' reads '{name}', which is never set "
                        "(declare it under variables:, or write `{name} ?? default`)".replace(
                            "{name}", name
                        ),
                    )
                else:
                    self.add(
                        line,
                        "maybe-unset",
                        f"node '{node_id}' reads '{name}', which is not set on every path to it",
                        "warning",
                    )

    def tests(self) -> None:
        lookups = {
            node_id
            for flow in self.dialog.flows.values()
            for node_id, node in flow.nodes.items()
            if isinstance(node, LookupNode)
        }
        for index, case in enumerate(self.dialog.model.tests):
            for name in case.lookups:
                if name not in lookups:
                    self.add(
                        self.dialog.line_of("tests", index, "lookups", name),
                        "unknown-target",
                        f"test '{case.name}': no lookup node named '{name}'",
                    )


def text_fields(node: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every prompt-like field of a node (text per language), with its YAML path."""
    for name in ("text", "audio", "prompt", "intro"):
        value = getattr(node, name, None)
        if value is not None:
            yield (name,), value
    for name in ("no_input", "no_match"):
        retry = getattr(node, name, None)
        if retry is not None:
            for index, prompt in enumerate(retry.prompts):
                yield (name, "prompts", str(index)), prompt
    if isinstance(node, SurveyNode):
        for index, question in enumerate(node.questions):
            yield ("questions", str(index), "prompt"), question.prompt


def _reachable(graph: dict[str, list[Edge]], roots: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = [r for r in roots if r in graph]
    while stack:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        stack.extend(t for _p, t, _d in graph[node_id])
    return seen


def _strongly_connected(successors: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so a long dialog cannot hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in successors:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = successors[node]
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            for target in targets:
                if target in on_stack:
                    low[node] = min(low[node], low[target])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(component)
    return result


def validate(dialog: Dialog, recorded: Collection[tuple[str, str]] = ()) -> list[Problem]:
    """Every problem found in a loaded dialog, sorted by line. ``recorded`` holds the
    (language, prompt text) pairs an admin uploaded a recording for: such a prompt is
    present in that language even without a text of its own."""
    return _Checker(dialog, recorded).run()


def validate_file(path_or_text: str | Path) -> list[Problem]:
    """Load problems (YAML, schema, syntax) or, if it loads, the validator's findings."""
    try:
        dialog = load_dialog(path_or_text)
    except DialogError as exc:
        return exc.problems
    return validate(dialog)


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)
