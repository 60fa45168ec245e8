"""Categories: admins' rules that tag interactions, evaluated after transcription and on
new text, and again over history on request.

A rule (``Category.rule``) is JSON:

    {"match": "all" | "any",
     "phrases": [{"query": "recording disclosure", "speaker": "agent", "first_seconds": 30,
                  "last_seconds": null, "negate": false}],
     "metrics": [{"metric": "longest_silence_seconds", "op": ">", "value": 10}]}

- ``query`` is the search language (``hub.qa.query``): words, ``prefix*`` wildcards,
  ``"phrases"``, ``NEAR``/``NEAR/n``, ``-word``, ``OR``; it must match within one segment or
  message, said by ``speaker`` (any when null) and, for ``first_seconds``, starting that early
  in the call (for text conversations: that long after the first message);
- ``negate`` turns it around: the condition holds when nothing matches ("the agent did not
  give the disclosure in the first 30 s");
- metric conditions read ``Transcript.metrics`` (``METRICS`` names them); a text
  conversation has no transcript, so its metric conditions do not hold.
"""

from __future__ import annotations

import itertools
import logging
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.jobs import ClaimedJob, enqueue
from hub.qa.query import Near, Node, Or, Phrase, Query, QueryError, Term, parse
from models import (
    Category,
    Interaction,
    InteractionCategory,
    Message,
    Transcript,
    TranscriptSegment,
    TranscriptStatus,
)

log = logging.getLogger(__name__)

RERUN_JOB = "qa.categorize_history"
RERUN_CHUNK = 200
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SPEAKER_OF_SENDER = {"contact": "customer", "agent": "agent", "bot": "ivr", "system": "system"}

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
# name shown to admins → path into Transcript.metrics
METRICS: dict[str, tuple[str, ...]] = {
    "longest_silence_seconds": ("longest_silence_seconds",),
    "silence_seconds": ("silence_seconds",),
    "overtalk_count": ("overtalk_count",),
    "duration_seconds": ("duration_seconds",),
    "sentiment_end": ("sentiment", "end"),
    "customer_sentiment_end": ("sentiment", "customer", "end"),
    "agent_talk_share": ("talk_share", "agent"),
}


class RuleError(ValueError):
    """A rule an admin cannot save; the message names the problem."""


@dataclass
class Utterance:
    """One segment or message, as rules see it."""

    source: str
    source_id: int
    speaker: str
    offset_s: float  # from the start of the call / the first message
    tokens: list[str]


def validate_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """The rule, checked and normalized; raises ``RuleError``."""
    match = rule.get("match", "all")
    if match not in ("all", "any"):
        raise RuleError("match must be all or any.")
    phrases = []
    for p in rule.get("phrases") or []:
        query = str(p.get("query") or "").strip()
        try:
            parse(query)
        except QueryError as exc:
            raise RuleError(f"Phrase {query!r}: {exc}") from None
        speaker = p.get("speaker") or None
        if speaker not in (None, "customer", "agent", "ivr"):
            raise RuleError("speaker must be customer, agent or ivr.")
        first = p.get("first_seconds")
        last = p.get("last_seconds")
        for name, value in (("first_seconds", first), ("last_seconds", last)):
            if value is not None and (not isinstance(value, int | float) or value <= 0):
                raise RuleError(f"{name} must be a positive number of seconds.")
        phrases.append(
            {
                "query": query,
                "speaker": speaker,
                "first_seconds": first,
                "last_seconds": last,
                "negate": bool(p.get("negate")),
            }
        )
    metrics = []
    for m in rule.get("metrics") or []:
        if m.get("metric") not in METRICS:
            raise RuleError(f"Unknown metric {m.get('metric')!r}; use one of {', '.join(METRICS)}.")
        if m.get("op") not in OPS:
            raise RuleError("A metric condition's operator must be >, >=, < or <=.")
        try:
            value = float(m.get("value"))
        except (TypeError, ValueError):
            raise RuleError("A metric condition needs a number to compare with.") from None
        metrics.append({"metric": m["metric"], "op": m["op"], "value": value})
    if not phrases and not metrics:
        raise RuleError("A category needs at least one phrase or metric condition.")
    return {"match": match, "phrases": phrases, "metrics": metrics}


# --- matching -----------------------------------------------------------------------------


def _positions(tokens: list[str], node: Term | Phrase) -> list[tuple[int, int]]:
    """(first, last) token positions where ``node`` occurs."""
    if isinstance(node, Term):
        return [
            (i, i)
            for i, t in enumerate(tokens)
            if t == node.word or (node.prefix and t.startswith(node.word))
        ]
    n = len(node.words)
    return [
        (i, i + n - 1) for i in range(len(tokens) - n + 1) if tuple(tokens[i : i + n]) == node.words
    ]


def _matches(tokens: list[str], node: Node) -> bool:
    if isinstance(node, Term | Phrase):
        return bool(_positions(tokens, node))
    if isinstance(node, Or):
        return any(_matches(tokens, i) for i in node.items)
    assert isinstance(node, Near)
    spans = [_positions(tokens, item) for item in node.items]
    if not all(spans):
        return False
    # every consecutive pair close enough, in either order (as FTS5 reads NEAR for two)
    for a_spans, b_spans in itertools.pairwise(spans):
        if not any(
            max(b0 - a1, a0 - b1) - 1 <= node.distance for a0, a1 in a_spans for b0, b1 in b_spans
        ):
            return False
    return True


def query_matches(query: Query, tokens: list[str]) -> bool:
    return all(_matches(tokens, n) for n in query.must) and not any(
        _matches(tokens, n) for n in query.must_not
    )


def _phrase_holds(
    cond: dict[str, Any], utterances: list[Utterance], duration_s: float
) -> tuple[bool, list[dict[str, Any]]]:
    query = parse(cond["query"])
    hits = []
    for u in utterances:
        if cond["speaker"] and u.speaker != cond["speaker"]:
            continue
        if cond["first_seconds"] is not None and u.offset_s > cond["first_seconds"]:
            continue
        if cond["last_seconds"] is not None and u.offset_s < duration_s - cond["last_seconds"]:
            continue
        if query_matches(query, u.tokens):
            hits.append({"source": u.source, "source_id": u.source_id, "at_s": u.offset_s})
    if cond["negate"]:
        return not hits, []
    return bool(hits), hits


def _metric_value(metrics: dict[str, Any] | None, name: str) -> float | None:
    value: Any = metrics
    for key in METRICS[name]:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) else None


def evaluate(
    rule: dict[str, Any],
    utterances: list[Utterance],
    metrics: dict[str, Any] | None,
    duration_s: float,
) -> dict[str, Any] | None:
    """The evidence when ``rule`` holds, else None."""
    results: list[bool] = []
    evidence: dict[str, Any] = {"hits": [], "metrics": {}}
    for cond in rule.get("phrases", []):
        ok, hits = _phrase_holds(cond, utterances, duration_s)
        results.append(ok)
        if ok:
            evidence["hits"].extend(hits)
    for cond in rule.get("metrics", []):
        value = _metric_value(metrics, cond["metric"])
        ok = value is not None and OPS[cond["op"]](value, cond["value"])
        results.append(ok)
        if ok:
            evidence["metrics"][cond["metric"]] = value
    if not results:
        return None
    held = all(results) if rule.get("match", "all") == "all" else any(results)
    return evidence if held else None


# --- loading and tagging ------------------------------------------------------------------


async def _utterances(
    db: AsyncSession, interaction_id: int
) -> tuple[list[Utterance], dict[str, Any] | None, float]:
    transcript = (
        await db.exec(
            select(Transcript)
            .where(
                Transcript.interaction_id == interaction_id,
                Transcript.status == TranscriptStatus.DONE.value,
            )
            .order_by(col(Transcript.id).desc())
        )
    ).first()
    utterances: list[Utterance] = []
    duration = 0.0
    metrics = None
    if transcript is not None:
        metrics = transcript.metrics
        segments = (
            await db.exec(
                select(TranscriptSegment)
                .where(TranscriptSegment.transcript_id == transcript.id)
                .order_by(col(TranscriptSegment.start_ms))
            )
        ).all()
        for s in segments:
            utterances.append(
                Utterance("segment", s.id or 0, s.speaker, s.start_ms / 1000, _tokens(s.text))
            )
            duration = max(duration, s.end_ms / 1000)
        duration = max(duration, float((metrics or {}).get("duration_seconds") or 0))
    messages = (
        await db.exec(
            select(Message)
            .where(Message.interaction_id == interaction_id, col(Message.private).is_(False))
            .order_by(col(Message.id))
        )
    ).all()
    first: datetime | None = None
    for m in messages:
        first = first or m.created_at
        offset = (m.created_at - first).total_seconds()
        text = "\n".join(p for p in (m.subject, m.body) if p)
        utterances.append(
            Utterance(
                "message",
                m.id or 0,
                _SPEAKER_OF_SENDER.get(m.sender_kind, "system"),
                offset,
                _tokens(text),
            )
        )
        duration = max(duration, offset)
    return utterances, metrics, duration


def _tokens(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


async def categorize_interaction(db: AsyncSession, interaction_id: int) -> list[str]:
    """Tag ``interaction_id`` with every active category whose rule holds, replacing the
    tags those categories set before. Adds to the caller's transaction (commit is theirs).
    Returns the names of the categories that hold."""
    categories = (await db.exec(select(Category).where(col(Category.active).is_(True)))).all()
    if not categories:
        return []
    utterances, metrics, duration = await _utterances(db, interaction_id)
    await db.exec(
        delete(InteractionCategory).where(
            col(InteractionCategory.interaction_id) == interaction_id,
            col(InteractionCategory.category_id).in_([c.id for c in categories]),
        )
    )
    names = []
    for category in categories:
        evidence = evaluate(category.rule, utterances, metrics, duration)
        if evidence is not None:
            db.add(
                InteractionCategory(
                    interaction_id=interaction_id,
                    category_id=category.id,  # type: ignore[arg-type]
                    evidence=evidence,
                )
            )
            names.append(category.name)
    return names


def queue_rerun(db: AsyncSession) -> None:
    """Categorize every past interaction again, in chunks, as background jobs."""
    enqueue(db, RERUN_JOB, {"after_id": 0})


def rerun_handler(sessionmaker: Any) -> Callable[[ClaimedJob], Any]:
    """The job that walks history: one chunk per job, then the next chunk's job, so a
    restart resumes where it stopped and each chunk commits on its own."""

    async def run(job: ClaimedJob) -> None:
        after = int(job.payload.get("after_id", 0))
        async with sessionmaker() as db:
            ids = (
                await db.exec(
                    select(Interaction.id)
                    .where(col(Interaction.id) > after)
                    .order_by(col(Interaction.id))
                    .limit(RERUN_CHUNK)
                )
            ).all()
            for interaction_id in ids:
                await categorize_interaction(db, interaction_id)  # type: ignore[arg-type]
            if len(ids) == RERUN_CHUNK:
                enqueue(db, RERUN_JOB, {"after_id": ids[-1]})
            await db.commit()
        log.info("categories rerun: %d interactions after id %d", len(ids), after)

    return run
