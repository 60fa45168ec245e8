"""The report form's fields, checked: a bad value gets a message that names it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub.reports.figures import Dimension, Period, ReportRequest


class BadReportRequest(ValueError):
    pass


def today_in(timezone: str, now: datetime | None = None) -> date:
    return (now or datetime.now(ZoneInfo("UTC"))).astimezone(ZoneInfo(timezone)).date()


def _date(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise BadReportRequest(f"{field} must be a date like 2026-12-01.") from None


def parse(
    params: Mapping[str, Any], *, timezone: str, max_days: int, now: datetime | None = None
) -> ReportRequest:
    """A ``ReportRequest`` from form or query fields; the default is today by queue."""
    today = today_in(timezone, now)
    start = _date(params["start"], "From") if params.get("start") else today
    end = _date(params["end"], "To") if params.get("end") else start
    if end < start:
        raise BadReportRequest("To must not be before From.")
    if (end - start).days + 1 > max_days:
        raise BadReportRequest(f"A report covers at most {max_days} days.")
    try:
        period = Period(str(params.get("period") or Period.DAY))
    except ValueError:
        raise BadReportRequest("Period must be interval, hour, day, week or month.") from None
    try:
        by = Dimension(str(params.get("by") or Dimension.QUEUE))
    except ValueError:
        raise BadReportRequest("By must be total, queue, channel, inbox or agent.") from None
    queue_id = None
    if params.get("queue_id"):
        try:
            queue_id = int(str(params["queue_id"]))
        except ValueError:
            raise BadReportRequest("Queue must be a queue id.") from None
    return ReportRequest(start, end, period, by, timezone, queue_id)


def relative(
    params: Mapping[str, Any], every: str, *, timezone: str, now: datetime
) -> ReportRequest:
    """A saved report's range at the time it is sent: the day (or 7 days) before today."""
    today = today_in(timezone, now)
    days = 7 if every == "weekly" else 1
    fields = {
        **params,
        "start": str(today - timedelta(days=days)),
        "end": str(today - timedelta(days=1)),
    }
    return parse(fields, timezone=timezone, max_days=days)
