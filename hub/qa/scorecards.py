"""Scorecards: evaluation forms, answering them (automatically where a rule can), scoring,
the weekly sample, calibration and roll-ups.

A form's ``definition``:

    {"sections": [{"title": "Opening", "questions": [
        {"id": "disclosure", "text": "Gave the recording disclosure", "kind": "yesno",
         "weight": 2, "critical": true, "allow_na": false,
         "auto": {"category": "Recording disclosure"}},
        {"id": "empathy", "text": "Empathy", "kind": "scale", "max": 5, "weight": 1},
        {"id": "calm", "text": "No long silences", "kind": "yesno", "weight": 1,
         "auto": {"metric": "longest_silence_seconds", "op": "<", "value": 10}}]}]}

Scoring: a yes/no question earns its weight for "yes"; a scale question earns
``weight * value / max``; "na" leaves the question out of both sides. The score is the
earned share of the possible, 0–100. A critical question answered "no" fails the form: its
score is 0, whatever else was earned. An ``auto`` question is answered from the
interaction's categories (yes when tagged) or its transcript metrics; the evaluator's own
answer overrides it, and the evaluation keeps both.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.qa.categories import METRICS, OPS, _metric_value
from models import (
    Category,
    Evaluation,
    EvaluationForm,
    Interaction,
    InteractionCategory,
    Transcript,
    TranscriptStatus,
)

KINDS = ("yesno", "scale")
_ID = re.compile(r"^[a-z0-9_]{1,32}$")
SAMPLE_PER_AGENT = 3


class FormError(ValueError):
    """A form that cannot be saved, or answers that cannot be scored; says why."""


def questions(definition: dict[str, Any]) -> list[dict[str, Any]]:
    return [q for s in definition.get("sections", []) for q in s.get("questions", [])]


def validate_form(definition: dict[str, Any]) -> dict[str, Any]:
    sections = definition.get("sections")
    if not isinstance(sections, list) or not sections:
        raise FormError("A form needs at least one section.")
    seen: set[str] = set()
    out_sections = []
    for s in sections:
        title = str(s.get("title") or "").strip()
        if not title:
            raise FormError("Every section needs a title.")
        qs = []
        for q in s.get("questions") or []:
            qid = str(q.get("id") or "")
            if not _ID.match(qid) or qid in seen:
                raise FormError(f"Question id {qid!r} must be unique: a-z, 0-9 and _.")
            seen.add(qid)
            kind = q.get("kind", "yesno")
            if kind not in KINDS:
                raise FormError(f"Question {qid}: kind must be yesno or scale.")
            weight = q.get("weight", 1)
            if not isinstance(weight, int | float) or weight <= 0:
                raise FormError(f"Question {qid}: weight must be a positive number.")
            item: dict[str, Any] = {
                "id": qid,
                "text": str(q.get("text") or qid),
                "kind": kind,
                "weight": float(weight),
                "critical": bool(q.get("critical")),
                "allow_na": bool(q.get("allow_na", True)),
            }
            if kind == "scale":
                top = q.get("max", 5)
                if not isinstance(top, int) or not 2 <= top <= 10:
                    raise FormError(f"Question {qid}: a scale goes from 0 to 2…10.")
                item["max"] = top
                if item["critical"]:
                    raise FormError(f"Question {qid}: only yes/no questions can be critical.")
            auto = q.get("auto")
            if auto:
                if kind != "yesno":
                    raise FormError(f"Question {qid}: only yes/no questions answer themselves.")
                if "category" in auto:
                    item["auto"] = {"category": str(auto["category"])}
                elif auto.get("metric") in METRICS and auto.get("op") in OPS:
                    item["auto"] = {
                        "metric": auto["metric"],
                        "op": auto["op"],
                        "value": float(auto.get("value", 0)),
                    }
                else:
                    raise FormError(f"Question {qid}: auto needs a category or a metric rule.")
            qs.append(item)
        if not qs:
            raise FormError(f"Section {title!r} has no questions.")
        out_sections.append({"title": title, "questions": qs})
    return {"sections": out_sections}


async def auto_answers(
    db: AsyncSession, definition: dict[str, Any], interaction_id: int
) -> dict[str, str]:
    """What the categories and metrics say for each ``auto`` question: "yes" or "no"."""
    tagged = set(
        (
            await db.exec(
                select(Category.name)
                .join(InteractionCategory, col(InteractionCategory.category_id) == Category.id)
                .where(InteractionCategory.interaction_id == interaction_id)
            )
        ).all()
    )
    transcript = (
        await db.exec(
            select(Transcript).where(
                Transcript.interaction_id == interaction_id,
                Transcript.status == TranscriptStatus.DONE.value,
            )
        )
    ).first()
    metrics = transcript.metrics if transcript else None
    out: dict[str, str] = {}
    for q in questions(definition):
        auto = q.get("auto")
        if not auto:
            continue
        if "category" in auto:
            out[q["id"]] = "yes" if auto["category"] in tagged else "no"
        else:
            value = _metric_value(metrics, auto["metric"])
            if value is not None:
                out[q["id"]] = "yes" if OPS[auto["op"]](value, auto["value"]) else "no"
    return out


@dataclass
class Scored:
    score: float
    failed_critical: bool
    answers: dict[str, Any]


def score(
    definition: dict[str, Any], given: dict[str, str], auto: dict[str, str] | None = None
) -> Scored:
    """Score the evaluator's answers (``given``: id → "yes"/"no"/"na"/"0".."max"), falling back
    to the automatic answer where the evaluator gave none."""
    auto = auto or {}
    earned = possible = 0.0
    failed = False
    answers: dict[str, Any] = {}
    for q in questions(definition):
        own = (given.get(q["id"]) or "").strip()
        machine = auto.get(q["id"])
        value = own or machine
        if not value:
            raise FormError(f"Answer {q['text']!r}.")
        if value == "na":
            if not q["allow_na"]:
                raise FormError(f"{q['text']!r} cannot be not applicable.")
        elif q["kind"] == "yesno":
            if value not in ("yes", "no"):
                raise FormError(f"{q['text']!r} takes yes, no or n/a.")
            possible += q["weight"]
            earned += q["weight"] if value == "yes" else 0
            failed = failed or (q["critical"] and value == "no")
        else:
            try:
                number = int(value)
            except ValueError:
                raise FormError(f"{q['text']!r} takes a number from 0 to {q['max']}.") from None
            if not 0 <= number <= q["max"]:
                raise FormError(f"{q['text']!r} takes a number from 0 to {q['max']}.")
            possible += q["weight"]
            earned += q["weight"] * number / q["max"]
            value = number
        answers[q["id"]] = {
            "value": value,
            "auto": machine,
            "overridden": bool(own) and machine is not None and own != machine,
        }
    total = 0.0 if failed else (round(100 * earned / possible, 1) if possible else 100.0)
    return Scored(total, failed, answers)


async def evaluate_interaction(
    db: AsyncSession,
    *,
    form: EvaluationForm,
    interaction: Interaction,
    evaluator_id: int,
    given: dict[str, str],
    comments: list[dict[str, Any]] | None = None,
) -> Evaluation:
    """Score and store one evaluation (in the caller's transaction)."""
    auto = await auto_answers(db, form.definition, interaction.id)  # type: ignore[arg-type]
    scored = score(form.definition, given, auto)
    evaluation = Evaluation(
        form_id=form.id,  # type: ignore[arg-type]
        interaction_id=interaction.id,  # type: ignore[arg-type]
        agent_id=interaction.agent_id,
        queue_id=interaction.queue_id,
        evaluator_id=evaluator_id,
        answers=scored.answers,
        comments=comments or [],
        score=scored.score,
        failed_critical=scored.failed_critical,
        answered_at=datetime.now(UTC),
    )
    db.add(evaluation)
    return evaluation


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def weekly_sample(
    db: AsyncSession, week_of: date, per_agent: int = SAMPLE_PER_AGENT
) -> dict[int, list[int]]:
    """A random sample of each agent's closed interactions of that week (Monday–Sunday).

    Seeded by the week and the agent, so every QA user (and every reload) sees the same
    sample for a week; the sample does not change when more evaluations are done."""
    start = datetime.combine(week_start(week_of), datetime.min.time(), tzinfo=UTC)
    end = start + timedelta(days=7)
    rows = (
        await db.exec(
            select(Interaction.agent_id, Interaction.id)
            .where(
                col(Interaction.agent_id).is_not(None),
                col(Interaction.created_at) >= start,
                col(Interaction.created_at) < end,
            )
            .order_by(col(Interaction.id))
        )
    ).all()
    by_agent: dict[int, list[int]] = defaultdict(list)
    for agent_id, interaction_id in rows:
        by_agent[agent_id].append(interaction_id)  # type: ignore[index]
    sample = {}
    for agent_id, ids in sorted(by_agent.items()):
        rng = random.Random(f"{start.date().isoformat()}:{agent_id}")
        sample[agent_id] = sorted(rng.sample(ids, min(per_agent, len(ids))))
    return sample


@dataclass
class Calibration:
    """Several evaluators' answers to one interaction on one form, side by side."""

    evaluations: list[Evaluation]
    differing: list[str] = field(default_factory=list)  # question ids answered differently
    score_spread: float = 0.0


def calibration(evaluations: list[Evaluation]) -> Calibration:
    if not evaluations:
        return Calibration([])
    ids = sorted({q for e in evaluations for q in e.answers})
    differing = [
        q for q in ids if len({str(e.answers.get(q, {}).get("value")) for e in evaluations}) > 1
    ]
    scores = [e.score for e in evaluations]
    return Calibration(evaluations, differing, round(max(scores) - min(scores), 1))


@dataclass
class RollUp:
    key: Any
    count: int
    mean: float
    failed: int


async def rollups(db: AsyncSession, by: str) -> list[RollUp]:
    """Mean score, count and critical failures per agent, queue or form."""
    column = {
        "agent": Evaluation.agent_id,
        "queue": Evaluation.queue_id,
        "form": Evaluation.form_id,
    }[by]
    rows = (await db.exec(select(column, Evaluation.score, Evaluation.failed_critical))).all()
    groups: dict[Any, list[tuple[float, bool]]] = defaultdict(list)
    for key, value, failed in rows:
        groups[key].append((value, failed))
    return [
        RollUp(key, len(v), round(sum(s for s, _ in v) / len(v), 1), sum(f for _, f in v))
        for key, v in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    ]
