"""A small, sandboxed expression language for dialog conditions and computed values.

Admins write conditions such as ``caller.vip >= 2 and business_hours_open`` in YAML. Python's
``eval`` would hand them the whole interpreter, so this module has its own tokenizer, a Pratt
parser and a compiler that turns the tree into plain closures: fast to run (a branch costs a
few function calls) and unable to reach anything but the variables it is given.

Grammar, lowest precedence first::

    expr     := a ?? b            (b when a is null, unknown or missing)
              | a or b | a and b | not a
              | a (== != < <= > >= in) b
              | a (+ -) b | a (* / %) b | -a
              | primary (.name | [expr])*
    primary  := number | 'text' | "text" | true | false | null | [a, b] | name | f(args) | (expr)

``if(condition, a, b)`` evaluates only the branch it picks.

Types are strict so mistakes surface as clear messages: ``"12" + 1`` is an error, not "121";
``and``/``or``/``not`` want booleans.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Value = Any
"""A dialog value: None, bool, int, float, str, list or dict (JSON's types)."""


class ExpressionError(Exception):
    """A syntax, name or type error in an expression, with a message an admin can act on."""

    def __init__(self, message: str, source: str = "", position: int | None = None) -> None:
        self.message = message
        self.source = source
        self.position = position
        where = f" at column {position + 1}" if position is not None else ""
        text = f"{message}{where}" + (f" in `{source}`" if source else "")
        super().__init__(text)


class UnknownName(ExpressionError):
    """A variable or field that does not exist (``??`` catches this one)."""


class Scope:
    """Where names resolve: the frame's own variables first, then the session's globals."""

    __slots__ = ("globals", "locals")

    def __init__(self, local_vars: Mapping[str, Value], global_vars: Mapping[str, Value]) -> None:
        self.locals = local_vars
        self.globals = global_vars

    def lookup(self, name: str) -> Value:
        value = self.locals.get(name, _MISSING)
        if value is _MISSING:
            value = self.globals.get(name, _MISSING)
            if value is _MISSING:
                raise UnknownName(f"unknown variable '{name}'")
        return value


_MISSING = object()

Compiled = Callable[[Scope], Value]

# --------------------------------------------------------------------------- tokenizer

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\?\?|==|!=|<=|>=|[<>+\-*/%().,\[\]])
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number, string, name, op, keyword, end
    text: str
    position: int


def tokenize(source: str) -> list[Token]:
    """Split an expression into tokens; anything unrecognised is a syntax error."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise ExpressionError(f"unexpected character {source[pos]!r}", source, pos)
        kind = match.lastgroup or ""
        text = match.group()
        if kind != "ws":
            if kind == "name" and text in _KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, text, pos))
        pos = match.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


# --------------------------------------------------------------------------- tree

# Nodes are tuples: ("lit", value) ("name", n) ("field", obj, name) ("index", obj, idx)
# ("call", fname, args) ("list", items) ("unary", op, x) ("binary", op, a, b)
Node = tuple[Any, ...]

_BINARY_POWER = {
    "??": 1,
    "or": 2,
    "and": 3,
    "==": 5,
    "!=": 5,
    "<": 5,
    "<=": 5,
    ">": 5,
    ">=": 5,
    "in": 5,
    "+": 6,
    "-": 6,
    "*": 7,
    "/": 7,
    "%": 7,
}


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0

    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.advance()
        if token.text != text or token.kind not in ("op", "keyword"):
            found = token.text or "end of expression"
            raise ExpressionError(
                f"expected '{text}', found '{found}'", self.source, token.position
            )
        return token

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise ExpressionError("empty expression", self.source, 0)
        node = self.expression(0)
        token = self.peek()
        if token.kind != "end":
            raise ExpressionError(f"unexpected '{token.text}'", self.source, token.position)
        return node

    def expression(self, min_power: int) -> Node:
        left = self.prefix()
        while True:
            token = self.peek()
            power = _BINARY_POWER.get(token.text) if token.kind in ("op", "keyword") else None
            if power is None or power <= min_power:
                return left
            self.advance()
            right = self.expression(power)
            left = ("binary", token.text, left, right)

    def prefix(self) -> Node:
        token = self.advance()
        if token.kind == "number":
            value: Value = float(token.text) if "." in token.text else int(token.text)
            return self.postfix(("lit", value))
        if token.kind == "string":
            return self.postfix(("lit", _unquote(token.text)))
        if token.kind == "keyword":
            if token.text in ("true", "false", "null"):
                return ("lit", {"true": True, "false": False, "null": None}[token.text])
            if token.text == "not":
                return ("unary", "not", self.expression(4))
        if token.kind == "op":
            if token.text == "-":
                return ("unary", "-", self.expression(8))
            if token.text == "(":
                inner = self.expression(0)
                self.expect(")")
                return self.postfix(inner)
            if token.text == "[":
                items: list[Node] = []
                if self.peek().text != "]":
                    items.append(self.expression(0))
                    while self.peek().text == ",":
                        self.advance()
                        items.append(self.expression(0))
                self.expect("]")
                return self.postfix(("list", items))
        if token.kind == "name":
            if self.peek().text == "(":
                return self.postfix(self.call(token))
            return self.postfix(("name", token.text))
        found = token.text or "end of expression"
        raise ExpressionError(f"unexpected '{found}'", self.source, token.position)

    def call(self, name: Token) -> Node:
        if name.text not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise ExpressionError(
                f"unknown function '{name.text}' (known: {known})", self.source, name.position
            )
        self.expect("(")
        args: list[Node] = []
        if self.peek().text != ")":
            args.append(self.expression(0))
            while self.peek().text == ",":
                self.advance()
                args.append(self.expression(0))
        self.expect(")")
        low, high = FUNCTIONS[name.text][1]
        if not low <= len(args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise ExpressionError(
                f"{name.text}() takes {want} argument(s), got {len(args)}",
                self.source,
                name.position,
            )
        return ("call", name.text, args)

    def postfix(self, node: Node) -> Node:
        while True:
            token = self.peek()
            if token.text == "." and token.kind == "op":
                self.advance()
                field = self.advance()
                if field.kind not in ("name", "number", "keyword"):
                    raise ExpressionError(
                        "expected a field name after '.'", self.source, field.position
                    )
                node = ("field", node, field.text)
            elif token.text == "[" and token.kind == "op":
                self.advance()
                index = self.expression(0)
                self.expect("]")
                node = ("index", node, index)
            else:
                return node


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse(source: str) -> Node:
    """Parse an expression into a tuple tree (for the validator and the compiler)."""
    return _Parser(source).parse()


def names_read(tree: Node) -> set[str]:
    """Root variable names an expression reads (``caller.vip`` reads ``caller``).

    Names on the left of ``??`` are left out: the admin has said they may be missing.
    """
    found: set[str] = set()

    def walk(node: Node, guarded: bool) -> None:
        kind = node[0]
        if kind == "name":
            if not guarded:
                found.add(node[1])
        elif kind in ("field",):
            walk(node[1], guarded)
        elif kind == "index":
            walk(node[1], guarded)
            walk(node[2], False)
        elif kind == "call":
            for arg in node[2]:
                walk(arg, guarded)
        elif kind == "list":
            for item in node[1]:
                walk(item, guarded)
        elif kind == "unary":
            walk(node[2], guarded)
        elif kind == "binary":
            walk(node[2], guarded or node[1] == "??")
            walk(node[3], guarded)

    walk(tree, False)
    return found


# --------------------------------------------------------------------------- types


def type_name(value: Value) -> str:
    """The admin-facing name of a value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "record"
    return type(value).__name__


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _short(value: Value) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def _need_number(value: Value, what: str) -> float | int:
    if not _is_number(value):
        raise ExpressionError(f"{what} needs a number, got {type_name(value)} {_short(value)}")
    return value  # type: ignore[no-any-return]


def _need_text(value: Value, what: str) -> str:
    if not isinstance(value, str):
        raise ExpressionError(f"{what} needs text, got {type_name(value)} {_short(value)}")
    return value


def _need_bool(value: Value, what: str) -> bool:
    if not isinstance(value, bool):
        raise ExpressionError(
            f"{what} needs true or false, got {type_name(value)} {_short(value)}"
            " (compare it, e.g. `x == 1`)"
        )
    return value


# --------------------------------------------------------------------------- functions


def _to_number(value: Value) -> int | float:
    if _is_number(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        try:
            result = float(text)
        except ValueError:
            raise ExpressionError(f"number() cannot read {value!r} as a number") from None
        if not math.isfinite(result):
            raise ExpressionError(f"number() cannot read {value!r} as a number")
        return result
    raise ExpressionError(f"number() needs text or a number, got {type_name(value)}")


def _to_text(value: Value) -> str:
    return format_value(value)


def _length(value: Value) -> int:
    if isinstance(value, str | list | dict):
        return len(value)
    raise ExpressionError(f"len() needs text, a list or a record, got {type_name(value)}")


def _round(value: Value, places: Value = 0) -> int | float:
    number = _need_number(value, "round()")
    digits = int(_need_number(places, "round()"))
    return round(number) if digits == 0 else round(number, digits)


def _money(value: Value) -> str:
    return f"{_need_number(value, 'money()'):.2f}"


def _digits(value: Value) -> str:
    return " ".join(_to_text(value).replace(" ", ""))


def _contains(haystack: Value, needle: Value) -> bool:
    return _membership(needle, haystack)


def _minmax(pick: Callable[..., Any], name: str) -> Callable[..., Value]:
    def run(*values: Value) -> Value:
        items = list(values[0]) if len(values) == 1 and isinstance(values[0], list) else values
        if not items:
            raise ExpressionError(f"{name}() of nothing")
        for item in items:
            _need_number(item, f"{name}()")
        return pick(items)

    return run


FUNCTIONS: dict[str, tuple[Callable[..., Value], tuple[int, int]]] = {
    "len": (_length, (1, 1)),
    "lower": (lambda v: _need_text(v, "lower()").lower(), (1, 1)),
    "upper": (lambda v: _need_text(v, "upper()").upper(), (1, 1)),
    "trim": (lambda v: _need_text(v, "trim()").strip(), (1, 1)),
    "number": (_to_number, (1, 1)),
    "int": (lambda v: int(_to_number(v)), (1, 1)),
    "text": (_to_text, (1, 1)),
    "round": (_round, (1, 2)),
    "abs": (lambda v: abs(_need_number(v, "abs()")), (1, 1)),
    "min": (_minmax(min, "min"), (1, 8)),
    "max": (_minmax(max, "max"), (1, 8)),
    "money": (_money, (1, 1)),
    "digits": (_digits, (1, 1)),
    "contains": (_contains, (2, 2)),
    "starts_with": (
        lambda a, b: _need_text(a, "starts_with()").startswith(_need_text(b, "starts_with()")),
        (2, 2),
    ),
    "ends_with": (
        lambda a, b: _need_text(a, "ends_with()").endswith(_need_text(b, "ends_with()")),
        (2, 2),
    ),
    "between": (
        lambda x, lo, hi: _ordered(lo, x, "<=") and _ordered(x, hi, "<="),
        (3, 3),
    ),
    # if(condition, then, else): compiled lazily below, only the chosen branch runs.
    "if": (lambda condition, then, otherwise: then if condition else otherwise, (3, 3)),
}


def format_value(value: Value) -> str:
    """How a value reads in a prompt: 12.5 as "12.5", 3.0 as "3", true as "yes"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return ", ".join(format_value(item) for item in value)
    return str(value)


# --------------------------------------------------------------------------- operators


MAX_NUMBER = 10**15
MAX_LENGTH = 10_000
"""Bounds on computed values, so a dialog loop cannot eat the process's memory."""


def _bounded(value: Value) -> Value:
    if _is_number(value):
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise ExpressionError(f"number out of range (more than {MAX_NUMBER:.0e})")
    elif isinstance(value, str | list) and len(value) > MAX_LENGTH:
        raise ExpressionError(f"{type_name(value)} longer than {MAX_LENGTH} items")
    return value


def _add(a: Value, b: Value) -> Value:
    if (
        (_is_number(a) and _is_number(b))
        or (isinstance(a, str) and isinstance(b, str))
        or (isinstance(a, list) and isinstance(b, list))
    ):
        return _bounded(a + b)
    raise ExpressionError(
        f"cannot add {type_name(a)} {_short(a)} and {type_name(b)} {_short(b)}"
        " (use text(x) or number(x) to convert)"
    )


def _arith(op: str) -> Callable[[Value, Value], Value]:
    def run(a: Value, b: Value) -> Value:
        x = _need_number(a, f"'{op}'")
        y = _need_number(b, f"'{op}'")
        if op == "-":
            return _bounded(x - y)
        if op == "*":
            return _bounded(x * y)
        if y == 0:
            raise ExpressionError(f"division by zero in '{op}'")
        if op == "%":
            return x % y
        result = _bounded(x / y)
        return (
            int(result)
            if result.is_integer() and isinstance(x, int) and isinstance(y, int)
            else result
        )

    return run


def _ordered(a: Value, b: Value, op: str) -> bool:
    both_numbers = _is_number(a) and _is_number(b)
    if not both_numbers and not (isinstance(a, str) and isinstance(b, str)):
        raise ExpressionError(
            f"cannot compare {type_name(a)} {_short(a)} {op} {type_name(b)} {_short(b)}"
        )
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _equal(a: Value, b: Value) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _membership(item: Value, container: Value) -> bool:
    if isinstance(container, str):
        return _need_text(item, "'in' on text") in container
    if isinstance(container, list):
        return any(_equal(item, x) for x in container)
    if isinstance(container, dict):
        return item in container
    raise ExpressionError(
        f"'in' needs text, a list or a record on the right, got {type_name(container)}"
    )


def _field(value: Value, name: str, label: str) -> Value:
    if isinstance(value, dict):
        if name in value:
            return value[name]
        raise UnknownName(f"'{label}' has no field '{name}'")
    if isinstance(value, list) and name.isdecimal():
        return _index(value, int(name), label)
    raise ExpressionError(f"'{label}' is {type_name(value)}, it has no field '{name}'")


def _index(value: Value, key: Value, label: str) -> Value:
    if isinstance(value, list | str):
        if not isinstance(key, int) or isinstance(key, bool):
            raise ExpressionError(
                f"index into '{label}' must be a whole number, got {type_name(key)}"
            )
        if -len(value) <= key < len(value):
            return value[key]
        raise UnknownName(f"'{label}' has no item {key} (it has {len(value)})")
    if isinstance(value, dict):
        return _field(value, str(key), label)
    raise ExpressionError(f"cannot index '{label}', it is {type_name(value)}")


# --------------------------------------------------------------------------- compiler


def _label(node: Node) -> str:
    if node[0] == "name":
        return str(node[1])
    if node[0] == "field":
        return f"{_label(node[1])}.{node[2]}"
    if node[0] == "index":
        return f"{_label(node[1])}[...]"
    return "value"


def _compile(node: Node) -> Compiled:
    kind = node[0]
    if kind == "lit":
        value = node[1]
        return lambda scope: value
    if kind == "name":
        name = node[1]
        return lambda scope: scope.lookup(name)
    if kind == "field":
        obj = _compile(node[1])
        field_name = node[2]
        label = _label(node[1])
        return lambda scope: _field(obj(scope), field_name, label)
    if kind == "index":
        obj = _compile(node[1])
        key = _compile(node[2])
        label = _label(node[1])
        return lambda scope: _index(obj(scope), key(scope), label)
    if kind == "list":
        items = [_compile(item) for item in node[1]]
        return lambda scope: [item(scope) for item in items]
    if kind == "call" and node[1] == "if":
        condition, then, otherwise = (_compile(arg) for arg in node[2])

        def choose(scope: Scope) -> Value:
            if _need_bool(condition(scope), "if()"):
                return then(scope)
            return otherwise(scope)

        return choose
    if kind == "call":
        function = FUNCTIONS[node[1]][0]
        args = [_compile(arg) for arg in node[2]]
        if len(args) == 1:
            only = args[0]
            return lambda scope: function(only(scope))
        return lambda scope: function(*[arg(scope) for arg in args])
    if kind == "unary":
        operand = _compile(node[2])
        if node[1] == "not":
            return lambda scope: not _need_bool(operand(scope), "'not'")
        return lambda scope: -_need_number(operand(scope), "'-'")
    op = node[1]
    left = _compile(node[2])
    right = _compile(node[3])
    if op == "and":
        return lambda scope: _need_bool(left(scope), "'and'") and _need_bool(right(scope), "'and'")
    if op == "or":
        return lambda scope: _need_bool(left(scope), "'or'") or _need_bool(right(scope), "'or'")
    if op == "??":

        def coalesce(scope: Scope) -> Value:
            try:
                value = left(scope)
            except UnknownName:
                return right(scope)
            return right(scope) if value is None else value

        return coalesce
    if op == "==":
        return lambda scope: _equal(left(scope), right(scope))
    if op == "!=":
        return lambda scope: not _equal(left(scope), right(scope))
    if op in ("<", "<=", ">", ">="):
        return lambda scope: _ordered(left(scope), right(scope), op)
    if op == "in":
        return lambda scope: _membership(left(scope), right(scope))
    if op == "+":
        return lambda scope: _add(left(scope), right(scope))
    arith = _arith(op)
    return lambda scope: arith(left(scope), right(scope))


class Expression:
    """A parsed and compiled expression; call ``evaluate(scope)``."""

    __slots__ = ("_run", "names", "source", "tree")

    def __init__(self, source: str) -> None:
        self.source = source
        self.tree = parse(source)
        self.names = frozenset(names_read(self.tree))
        self._run = _compile(self.tree)

    def evaluate(self, scope: Scope) -> Value:
        """The value, or ExpressionError naming the expression and what went wrong."""
        try:
            return self._run(scope)
        except ExpressionError as exc:
            raise type(exc)(exc.message, self.source) from None
        except (OverflowError, ValueError, RecursionError) as exc:
            raise ExpressionError(f"cannot compute: {exc}", self.source) from None

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def evaluate(source: str, variables: Mapping[str, Value] | None = None) -> Value:
    """Parse and evaluate once (handy in tests and the REPL; the interpreter caches)."""
    return Expression(source).evaluate(Scope(variables or {}, {}))
