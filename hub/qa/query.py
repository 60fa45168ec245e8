"""The QA search language, parsed once and compiled for SQLite FTS5 and PostgreSQL tsquery.

What a user may type (case-insensitive operators):

- ``refund`` — a word; ``cancel*`` — a prefix; ``"credit card"`` — a phrase;
- ``manager NEAR supervisor`` (within 10 words) or ``manager NEAR/3 supervisor``;
- ``-angry`` or ``NOT angry`` — without that word (a query needs one word that is not negated);
- ``refund OR return`` — either; everything else must all match (AND).

Words are cut the way both indexes cut them (letters and digits), so ``don't`` searches the
phrase "don t". Only these tokens reach the database: the compiled query cannot inject
operators of the engine's own syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_NEAR = 50
DEFAULT_NEAR = 10
MAX_TERMS = 32

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_LEX = re.compile(r'"([^"]*)"?|(\()|(\))|(\S+)')
_NEAR = re.compile(r"near(?:/(\d+))?", re.IGNORECASE)


class QueryError(ValueError):
    """A query that cannot be searched; the message is shown to the user as is."""


@dataclass(frozen=True)
class Term:
    word: str
    prefix: bool = False


@dataclass(frozen=True)
class Phrase:
    words: tuple[str, ...]


@dataclass(frozen=True)
class Near:
    items: tuple[Term | Phrase, ...]
    distance: int


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Term | Phrase | Near | Or


@dataclass(frozen=True)
class Query:
    must: tuple[Node, ...]
    must_not: tuple[Node, ...]

    def words(self) -> list[str]:
        """Every positive word, for highlighting elsewhere (categories, the player)."""
        out: list[str] = []

        def walk(node: Node) -> None:
            if isinstance(node, Term):
                out.append(node.word)
            elif isinstance(node, Phrase):
                out.extend(node.words)
            else:
                for item in node.items:
                    walk(item)

        for node in self.must:
            walk(node)
        return out


def _atom(raw: str, quoted: bool) -> Term | Phrase | None:
    prefix = not quoted and raw.endswith("*")
    words = tuple(w.lower() for w in _WORD.findall(raw))
    if not words:
        return None
    if len(words) == 1 and not quoted:
        return Term(words[0], prefix)
    if len(words) == 1:
        return Term(words[0])
    return Phrase(words)


def parse(text: str) -> Query:
    tokens: list[tuple[str, bool]] = []  # (text, quoted)
    for m in _LEX.finditer(text):
        if m.group(1) is not None:
            tokens.append((m.group(1), True))
        elif m.group(4) is not None:
            tokens.append((m.group(4), False))
        # parentheses carry no meaning of their own here
    must: list[Node] = []
    must_not: list[Node] = []
    negate = False
    pending_or = False
    i = 0
    count = 0
    while i < len(tokens):
        raw, quoted = tokens[i]
        upper = raw.upper()
        if not quoted and upper == "NOT":
            negate = True
            i += 1
            continue
        if not quoted and upper == "OR":
            pending_or = bool(must) and not negate
            i += 1
            continue
        if not quoted and upper == "AND":
            i += 1
            continue
        neg = negate
        if not quoted and raw.startswith("-") and len(raw) > 1:
            neg, raw = True, raw[1:]
        atom = _atom(raw, quoted)
        i += 1
        if atom is None:
            negate = False
            continue
        node: Node = atom
        # NEAR chains: a NEAR b NEAR/3 c
        while i + 1 < len(tokens) and not tokens[i][1] and _NEAR.fullmatch(tokens[i][0]):
            distance = int(_NEAR.fullmatch(tokens[i][0]).group(1) or DEFAULT_NEAR)  # type: ignore[union-attr]
            if not 0 < distance <= MAX_NEAR:
                raise QueryError(f"NEAR distance must be between 1 and {MAX_NEAR}.")
            nxt = _atom(tokens[i + 1][0], tokens[i + 1][1])
            i += 2
            if nxt is None:
                continue
            items = node.items if isinstance(node, Near) else (node,)
            node = Near(
                (*items, nxt), min(distance, node.distance) if isinstance(node, Near) else distance
            )
        count += 1
        if count > MAX_TERMS:
            raise QueryError(f"A query may have at most {MAX_TERMS} terms.")
        if neg:
            must_not.append(node)
        elif pending_or and must:
            prev = must.pop()
            items = prev.items if isinstance(prev, Or) else (prev,)
            must.append(Or((*items, node)))
        else:
            must.append(node)
        negate = False
        pending_or = False
    if not must:
        if must_not:
            raise QueryError("Add a word to search for: a query cannot only exclude words.")
        raise QueryError("Type a word or a phrase to search for.")
    return Query(tuple(must), tuple(must_not))


# --- SQLite FTS5 -------------------------------------------------------------------------


def _fts_atom(node: Term | Phrase) -> str:
    if isinstance(node, Term):
        return f'"{node.word}"' + ("*" if node.prefix else "")
    return '"' + " ".join(node.words) + '"'


def _fts(node: Node) -> str:
    if isinstance(node, Term | Phrase):
        return _fts_atom(node)
    if isinstance(node, Near):
        return "NEAR(" + " ".join(_fts_atom(i) for i in node.items) + f", {node.distance})"
    return "(" + " OR ".join(_fts(i) for i in node.items) + ")"


def to_fts5(query: Query) -> str:
    """An FTS5 MATCH expression: ``a AND b NOT c`` (FTS5's NOT is binary)."""
    expr = " AND ".join(_fts(n) for n in query.must)
    for node in query.must_not:
        expr = f"({expr}) NOT {_fts(node)}"
    return expr


# --- PostgreSQL tsquery -----------------------------------------------------------------


def _ts_atom(node: Term | Phrase) -> str:
    if isinstance(node, Term):
        return f"'{node.word}'" + (":*" if node.prefix else "")
    return "(" + " <-> ".join(f"'{w}'" for w in node.words) + ")"


def _ts_near(a: Term | Phrase, b: Term | Phrase, distance: int) -> str:
    """FTS5's NEAR (either order, at most ``distance`` words between) as tsquery's
    exact-distance operator, one alternative per distance and order."""
    left, right = _ts_atom(a), _ts_atom(b)
    options = [
        f"{x} <{d}> {y}" for d in range(1, distance + 2) for x, y in ((left, right), (right, left))
    ]
    return "(" + " | ".join(options) + ")"


def _ts(node: Node) -> str:
    if isinstance(node, Term | Phrase):
        return _ts_atom(node)
    if isinstance(node, Near):
        pairs = [
            _ts_near(node.items[i], node.items[i + 1], node.distance)
            for i in range(len(node.items) - 1)
        ]
        return "(" + " & ".join(pairs) + ")"
    return "(" + " | ".join(_ts(i) for i in node.items) + ")"


def to_tsquery(query: Query) -> str:
    """A ``to_tsquery('simple', …)`` expression; every lexeme is quoted."""
    parts = [_ts(n) for n in query.must] + [f"!{_ts(n)}" for n in query.must_not]
    return " & ".join(parts)


def _has_near(node: Node) -> bool:
    return isinstance(node, Near) or (isinstance(node, Or) and any(map(_has_near, node.items)))


def _ts_loose(node: Node) -> str:
    if isinstance(node, Term | Phrase):
        return _ts_atom(node)
    if isinstance(node, Near):
        return "(" + " & ".join(_ts_atom(i) for i in node.items) + ")"
    return "(" + " | ".join(_ts_loose(i) for i in node.items) + ")"


def to_tsquery_candidates(query: Query) -> str | None:
    """For a query with NEAR: a looser tsquery (each NEAR as the AND of its parts, a negated
    NEAR left out) that every match of ``to_tsquery`` also matches, for the GIN index to find
    the candidates by; ``to_tsquery`` then checks them. tsquery has no "within n words": NEAR
    is one alternative per distance and order, and the GIN index evaluates every alternative
    (two words within 5, 1,388 matches of 10,000,000 segments: 54 ms to look up, 8 ms as an
    AND; bench/README.md). None for a query without NEAR."""
    if not any(map(_has_near, query.must + query.must_not)):
        return None
    parts = [_ts_loose(n) for n in query.must]
    parts += [f"!{_ts(n)}" for n in query.must_not if not _has_near(n)]
    return " & ".join(parts)
