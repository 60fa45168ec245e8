"""Survey answers: stored once per interaction when a dialog session ends, and the
statistics page's numbers (count, distribution, mean, CSAT, NPS, drop-off) per question.

``store_answers`` is the one writer: the IVR on a call (``hub.call_ivr``), a text
conversation's bot (``hub.text_dialogs``) and the post-call survey all hand it the
interpreter's trace. It runs inside the caller's transaction and skips questions already
stored for the interaction, so a retried job never counts an answer twice.

Every question put to the contact is a row (``trace["survey_asked"]``), answered or not:
"reached" is the rows, "answered" the rows with a value, and the difference is the drop-off.

Date filters are the organization's days (``settings.timezone``), not UTC's.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Interaction, SurveyAnswer, utcnow

CSAT_SCALE = (1, 5)  # CSAT: the share of 4s and 5s
NPS_SCALE = (0, 10)  # NPS: promoters (9-10) minus detractors (0-6), in points


# ---------------------------------------------------------------- from a trace


@dataclass(frozen=True, slots=True)
class AskedQuestion:
    """One question put to the contact, with the answer if one came."""

    survey: str
    question: str
    kind: str
    scale_min: int | None
    scale_max: int | None
    answered: bool
    value_text: str | None
    value_number: float | None


def _value(kind: str, value: Any) -> tuple[str | None, float | None]:
    """The answer as text, and as a number when it is one (yes/no as 1/0)."""
    if value is None:
        return None, None
    if isinstance(value, bool) or (kind == "yes_no" and str(value).lower() in ("yes", "no")):
        yes = value if isinstance(value, bool) else str(value).lower() == "yes"
        return ("yes" if yes else "no"), (1.0 if yes else 0.0)
    if isinstance(value, int | float):
        return str(value), float(value)
    return str(value), None


def _guess_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "yes_no"
    if isinstance(value, int | float):
        return "scale"
    return "text"


def answers_from_trace(trace: dict[str, Any]) -> list[AskedQuestion]:
    """Every question asked in a dialog session, in order; a question asked twice (a survey
    visited again) keeps its first place and its last answer."""
    given: dict[tuple[str, str], Any] = {}
    for entry in trace.get("survey") or []:
        given[(str(entry["survey"]), str(entry["question"]))] = entry.get("value")
    asked: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in trace.get("survey_asked") or []:
        asked.setdefault((str(entry["survey"]), str(entry["question"])), entry)
    for key, value in given.items():  # traces written before "survey_asked" existed
        asked.setdefault(key, {"kind": _guess_kind(value)})
    out = []
    for (survey, question), entry in asked.items():
        kind = str(entry.get("kind") or "text")
        answered = (survey, question) in given
        text, number = _value(kind, given.get((survey, question)))
        out.append(
            AskedQuestion(
                survey=survey,
                question=question,
                kind=kind,
                scale_min=entry.get("min") if kind == "scale" else None,
                scale_max=entry.get("max") if kind == "scale" else None,
                answered=answered,
                value_text=text,
                value_number=number,
            )
        )
    return out


async def store_answers(
    db: AsyncSession, interaction_id: int, trace: dict[str, Any], *, at: datetime | None = None
) -> int:
    """Add the session's survey rows to ``db`` (the caller commits); returns how many were
    new. Questions already stored for this interaction are left as they are."""
    asked = answers_from_trace(trace)
    if not asked:
        return 0
    interaction = await db.get(Interaction, interaction_id)
    if interaction is None:
        return 0
    stored = set(
        (
            await db.exec(
                select(SurveyAnswer.survey, SurveyAnswer.question).where(
                    SurveyAnswer.interaction_id == interaction_id
                )
            )
        ).all()
    )
    version = trace.get("version") or {}
    moment = at or utcnow()
    added = 0
    for position, item in enumerate(asked):
        if (item.survey, item.question) in stored:
            continue
        db.add(
            SurveyAnswer(
                interaction_id=interaction_id,
                dialog=str(version.get("dialog") or trace.get("dialog") or "")[:64],
                dialog_version=version.get("number"),
                survey=item.survey[:64],
                question=item.question[:64],
                position=position,
                kind=item.kind,
                scale_min=item.scale_min,
                scale_max=item.scale_max,
                answered=item.answered,
                value_text=item.value_text,
                value_number=item.value_number,
                channel=interaction.channel,
                queue_id=interaction.queue_id,
                agent_id=interaction.agent_id,
                asked_at=moment,
                answered_at=moment if item.answered else None,
            )
        )
        added += 1
    if added:
        await db.flush()
    return added


# ---------------------------------------------------------------- statistics


def local_day_range(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    """From midnight of ``first`` to midnight after ``last``, the organization's days, in UTC."""
    zone = ZoneInfo(timezone or "UTC")
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


@dataclass(frozen=True, slots=True)
class SurveyFilter:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    queue_id: int | None = None
    agent_id: int | None = None


@dataclass
class QuestionStats:
    question: str
    kind: str
    scale_min: int | None = None
    scale_max: int | None = None
    reached: int = 0
    answered: int = 0
    distribution: list[tuple[str, int]] = field(default_factory=list)
    mean: float | None = None
    csat: float | None = None  # % of 4-5 on a 1-5 scale
    nps: float | None = None  # % promoters - % detractors on a 0-10 scale

    @property
    def dropped(self) -> int:
        return self.reached - self.answered

    @property
    def drop_off(self) -> float | None:
        """The share of contacts who reached the question and left it unanswered, in %."""
        return round(100 * self.dropped / self.reached, 1) if self.reached else None

    @property
    def scale(self) -> tuple[int, int] | None:
        if self.kind != "scale" or self.scale_min is None or self.scale_max is None:
            return None
        return self.scale_min, self.scale_max


@dataclass
class SurveyStats:
    survey: str
    contacts: int
    questions: list[QuestionStats]


def _where(survey: str, filters: SurveyFilter) -> list[Any]:
    clauses = [
        SurveyAnswer.survey == survey,
        col(SurveyAnswer.asked_at) >= filters.start,
        col(SurveyAnswer.asked_at) < filters.end,
    ]
    if filters.queue_id is not None:
        clauses.append(SurveyAnswer.queue_id == filters.queue_id)
    if filters.agent_id is not None:
        clauses.append(SurveyAnswer.agent_id == filters.agent_id)
    return clauses


async def survey_names(db: AsyncSession) -> list[tuple[str, int]]:
    """Every survey with answers, and how many contacts reached it."""
    rows = await db.exec(
        select(SurveyAnswer.survey, func.count(func.distinct(SurveyAnswer.interaction_id)))
        .group_by(SurveyAnswer.survey)
        .order_by(SurveyAnswer.survey)
    )
    return [(name, int(count)) for name, count in rows.all()]


def summarize(survey: str, rows: Iterable[SurveyAnswer]) -> SurveyStats:
    """The per-question numbers of a set of answer rows (pure: tests feed it built rows)."""
    by_question: dict[str, list[SurveyAnswer]] = {}
    first_position: dict[str, int] = {}
    contacts: set[int] = set()
    for row in rows:
        by_question.setdefault(row.question, []).append(row)
        first_position[row.question] = min(
            first_position.get(row.question, row.position), row.position
        )
        contacts.add(row.interaction_id)
    out = []
    for question in sorted(by_question, key=lambda q: (first_position[q], q)):
        found = by_question[question]
        last = found[-1]
        stats = QuestionStats(question, last.kind, last.scale_min, last.scale_max)
        stats.reached = len(found)
        answers = [r for r in found if r.answered]
        stats.answered = len(answers)
        counts = Counter(r.value_text or "" for r in answers)
        numbers = [r.value_number for r in answers if r.value_number is not None]
        if stats.scale is not None:
            low, high = stats.scale
            keys = [str(v) for v in range(low, high + 1)]
            stats.distribution = [(k, counts.get(k, 0)) for k in keys]
            stats.distribution += [(k, n) for k, n in counts.items() if k not in keys]
        else:
            stats.distribution = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if numbers:
            stats.mean = round(sum(numbers) / len(numbers), 2)
            if stats.scale == CSAT_SCALE:
                stats.csat = round(100 * sum(1 for n in numbers if n >= 4) / len(numbers), 1)
            if stats.scale == NPS_SCALE:
                promoters = sum(1 for n in numbers if n >= 9)
                detractors = sum(1 for n in numbers if n <= 6)
                stats.nps = round(100 * (promoters - detractors) / len(numbers), 1)
        out.append(stats)
    return SurveyStats(survey, len(contacts), out)


async def survey_rows(db: AsyncSession, survey: str, filters: SurveyFilter) -> list[SurveyAnswer]:
    query = (
        select(SurveyAnswer)
        .where(*_where(survey, filters))
        .order_by(col(SurveyAnswer.asked_at), col(SurveyAnswer.id))
    )
    return list((await db.exec(query)).all())


async def survey_stats(db: AsyncSession, survey: str, filters: SurveyFilter) -> SurveyStats:
    return summarize(survey, await survey_rows(db, survey, filters))


# ---------------------------------------------------------------- CSV


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def stats_csv(stats: SurveyStats) -> str:
    """One line per question and value: the page's numbers, for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["survey", "question", "kind", "reached", "answered", "drop_off_pct", "mean", "csat_pct",
         "nps", "value", "count"]
    )  # fmt: skip
    for q in stats.questions:
        head = [stats.survey, q.question, q.kind, q.reached, q.answered, _pct(q.drop_off),
                "" if q.mean is None else q.mean, _pct(q.csat), _pct(q.nps)]  # fmt: skip
        if not q.distribution:
            writer.writerow([*head, "", ""])
        for value, count in q.distribution:
            writer.writerow([*head, _safe_cell(value), count])
    return out.getvalue()


def answers_csv(
    rows: Iterable[SurveyAnswer], timezone: str, names: dict[str, dict[int, str]]
) -> str:
    """Every question reached, one line each, with the local time, queue and agent names."""
    zone = ZoneInfo(timezone or "UTC")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["interaction", "asked_at", "channel", "queue", "agent", "dialog", "version", "survey",
         "question", "kind", "answered", "value", "number"]
    )  # fmt: skip
    for r in rows:
        asked = r.asked_at if r.asked_at.tzinfo else r.asked_at.replace(tzinfo=UTC)
        writer.writerow(
            [
                r.interaction_id,
                asked.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                r.channel,
                names["queues"].get(r.queue_id or 0, ""),
                names["agents"].get(r.agent_id or 0, ""),
                r.dialog,
                r.dialog_version or "",
                r.survey,
                r.question,
                r.kind,
                "yes" if r.answered else "no",
                _safe_cell(r.value_text or ""),
                "" if r.value_number is None else r.value_number,
            ]
        )
    return out.getvalue()


def _safe_cell(text: str) -> str:
    """A customer's words never start a spreadsheet formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
