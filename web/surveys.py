"""Survey statistics for supervisors and admins: per survey, each question's count,
distribution, mean, CSAT or NPS and drop-off, filtered by the organization's days, a queue
and an agent, and the same numbers (or every answer) as CSV.

The numbers come from ``hub.surveys``; the period is in the organization's time zone
(``HUB_TIMEZONE``), and defaults to the last 30 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Request, Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Response, Template
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.attachments import content_disposition
from hub.surveys import (
    SurveyFilter,
    answers_csv,
    local_day_range,
    stats_csv,
    summarize,
    survey_names,
    survey_rows,
)
from models import Agent, Queue, Role, User
from web.common import UnprocessableError, opt_int, page, role_guard, services_of

DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date


def parse_period(raw_from: Any, raw_to: Any, timezone: str) -> Period:
    """The chosen days (inclusive), or the last 30 of the organization's days."""
    today = datetime.now(UTC).astimezone(ZoneInfo(timezone or "UTC")).date()

    def day(raw: Any, label: str, default: date) -> date:
        text = str(raw or "").strip()
        if not text:
            return default
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise UnprocessableError(f"{label} must be a date like 2026-12-01.") from None

    last = day(raw_to, "To", today)
    first = day(raw_from, "From", last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise UnprocessableError("From must be on or before To.")
    if (last - first).days >= MAX_DAYS:
        raise UnprocessableError(f"Choose at most {MAX_DAYS} days.")
    return Period(first, last)


async def _names(db: AsyncSession) -> dict[str, dict[int, str]]:
    queues = dict((await db.exec(select(Queue.id, Queue.name).order_by(Queue.name))).all())
    agents = dict(
        (
            await db.exec(
                select(Agent.id, User.display_name)
                .join(User, col(User.id) == Agent.user_id)
                .order_by(User.display_name)
            )
        ).all()
    )
    return {"queues": queues, "agents": agents}


async def _filters(request: Request, db: AsyncSession) -> tuple[Period, SurveyFilter]:
    timezone = services_of(request).settings.timezone
    q = request.query_params
    period = parse_period(q.get("from"), q.get("to"), timezone)
    start, end = local_day_range(period.first, period.last, timezone)
    queue_id = opt_int(q.get("queue"), "Queue", lo=1)
    agent_id = opt_int(q.get("agent"), "Agent", lo=1)
    if queue_id is not None and await db.get(Queue, queue_id) is None:
        raise UnprocessableError(f"There is no queue #{queue_id}.")
    if agent_id is not None and await db.get(Agent, agent_id) is None:
        raise UnprocessableError(f"There is no agent #{agent_id}.")
    return period, SurveyFilter(start, end, queue_id, agent_id)


@get("/")
async def surveys_page(request: Request) -> Template:
    async with services_of(request).sessionmaker() as db:
        surveys = await survey_names(db)
    return page("reports/surveys.html", request, surveys=surveys)


async def _known(db: AsyncSession, survey: str) -> None:
    if survey not in {name for name, _count in await survey_names(db)}:
        raise NotFoundException(f"No answers to a survey named '{survey}' are stored.")


@get("/{survey:str}")
async def survey_page(request: Request, survey: FromPath[str]) -> Template:
    async with services_of(request).sessionmaker() as db:
        await _known(db, survey)
        period, filters = await _filters(request, db)
        stats = summarize(survey, await survey_rows(db, survey, filters))
        names = await _names(db)
    query = {
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        **({"queue": filters.queue_id} if filters.queue_id else {}),
        **({"agent": filters.agent_id} if filters.agent_id else {}),
    }
    return page(
        "reports/survey.html",
        request,
        stats=stats,
        period=period,
        filters=filters,
        names=names,
        query=urlencode(query),
        timezone=services_of(request).settings.timezone,
    )


@get("/{survey:str}/export.csv")
async def survey_csv(request: Request, survey: FromPath[str], rows: str = "stats") -> Response:
    """``rows=stats``: the page's numbers; ``rows=answers``: every question reached."""
    if rows not in ("stats", "answers"):
        raise UnprocessableError("rows must be 'stats' or 'answers'.")
    async with services_of(request).sessionmaker() as db:
        await _known(db, survey)
        period, filters = await _filters(request, db)
        found = await survey_rows(db, survey, filters)
        names = await _names(db)
    timezone = services_of(request).settings.timezone
    if rows == "stats":
        text = stats_csv(summarize(survey, found))
    else:
        text = answers_csv(found, timezone, names)
    filename = f"survey-{survey}-{rows}-{period.first}-{period.last}.csv"
    return Response(
        content=text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": content_disposition("attachment", filename)},
    )


route_handlers: list = [
    Router(
        path="/reports/surveys",
        guards=[role_guard(Role.SUPERVISOR)],
        route_handlers=[surveys_page, survey_page, survey_csv],
    )
]
