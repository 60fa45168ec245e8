"""Prompt and value templates: literal text with ``{{ expression }}`` holes.

Templates reuse the expression language, so a prompt can say
``"Your balance is {{ money(balance) }} dollars"`` and nothing else can run. A template that is
exactly one hole (``"{{ account }}"``) keeps the value's type, which lets a lookup body send a
number as a number.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ivr_dialogs.expressions import Expression, ExpressionError, Scope, Value, format_value

_HOLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


class Template:
    """A compiled template; ``render`` gives text, ``value`` keeps a lone hole's type."""

    __slots__ = ("_constant", "_parts", "names", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        parts: list[str | Expression] = []
        pos = 0
        for match in _HOLE.finditer(source):
            if match.start() > pos:
                parts.append(source[pos : match.start()])
            inner = match.group(1).strip()
            try:
                parts.append(Expression(inner))
            except ExpressionError as exc:
                raise ExpressionError(exc.message, source, exc.position) from None
            pos = match.end()
        tail = source[pos:]
        if "{{" in tail or "}}" in tail:
            raise ExpressionError("unbalanced '{{' or '}}'", source)
        if tail:
            parts.append(tail)
        self._parts = tuple(parts)
        names: set[str] = set()
        for part in self._parts:
            if isinstance(part, Expression):
                names |= part.names
        self.names = frozenset(names)
        self._constant = source if all(isinstance(p, str) for p in self._parts) else None

    @property
    def is_constant(self) -> bool:
        return self._constant is not None

    def render(self, scope: Scope, escape: Callable[[str], str] | None = None) -> str:
        """Text with every hole filled; ``escape`` (e.g. URL quoting) applies to holes only."""
        if self._constant is not None:
            return self._constant
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
            else:
                text = format_value(part.evaluate(scope))
                out.append(escape(text) if escape else text)
        return "".join(out)

    def value(self, scope: Scope) -> Value:
        """A lone hole's value with its type; otherwise the rendered text."""
        if len(self._parts) == 1 and isinstance(self._parts[0], Expression):
            return self._parts[0].evaluate(scope)
        return self.render(scope)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"
