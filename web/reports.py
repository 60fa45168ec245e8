"""Reports for supervisors and admins: definitions, the historical report with its charts,
agent activity, exports (CSV, XLSX) and saved reports e-mailed on a schedule."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Request, Router, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Response, Template
from sqlmodel import Session, select

from hub.reports.agents import agent_activity
from hub.reports.delivery import EVERY, schedule_job
from hub.reports.export import XLSX_TYPE, table, to_csv, to_xlsx
from hub.reports.figures import (
    BIN_LABELS,
    DEFINITIONS,
    Dimension,
    Period,
    Report,
    ReportRequest,
    Totals,
    build_report,
    queue_rule_labels,
)
from hub.reports.params import BadReportRequest, parse
from hub.reports.required import DEFAULT_SL_TARGET_PCT, agents_required
from hub.reports.rollups import repeat_days
from models import Queue, ReportSchedule, Role
from web.common import UnprocessableError, page, role_guard, services_of, user_of

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _request(request: Request, params: dict[str, Any]) -> ReportRequest:
    settings = services_of(request).settings
    try:
        return parse(params, timezone=settings.timezone, max_days=settings.reports_max_days)
    except BadReportRequest as exc:
        raise UnprocessableError(str(exc)) from exc


async def _run(request: Request, work: Any, *args: Any) -> Any:
    async with services_of(request).sessionmaker() as db:
        return await db.run_sync(work, *args)


def _days(request: Request) -> list[int]:
    return repeat_days(services_of(request).settings.reports_repeat_days)


def chart_data(
    report: Report, by_agent: Report, by_hour: Report, required: dict[datetime, int]
) -> dict[str, Any]:
    """What the page's charts draw (web/static/reports.js); plain numbers and labels."""
    periods: dict[datetime, Any] = {}
    for row in report.rows:
        periods.setdefault(row.period, []).append(row.totals)
    trend = []
    for period in sorted(periods):
        merged = Totals()
        for totals in periods[period]:
            merged.merge(totals)
        trend.append((report.period_label(period), merged))
    heat = []
    for row in by_hour.rows:
        heat.append(
            {
                "day": row.period.strftime("%Y-%m-%d %a"),
                "hour": row.period.hour,
                "v": int(row.totals["offered"]),
            }
        )
    per_agent: dict[str, Totals] = {}  # the range may cover parts of two months
    for row in by_agent.rows:
        if row.key is not None:
            per_agent.setdefault(row.label, Totals()).merge(row.totals)
    return {
        "labels": [label for label, _ in trend],
        "offered": [int(t["offered"]) for _, t in trend],
        "answered": [int(t["answered"]) for _, t in trend],
        "abandoned": [int(t["abandoned"]) for _, t in trend],
        "required": [required.get(period, 0) for period in sorted(periods)],
        "sl": [t.service_level_pct for _, t in trend],
        "asa": [t.asa_seconds for _, t in trend],
        "bins": BIN_LABELS,
        "hist_answered": report.total.answered_hist,
        "hist_abandoned": report.total.abandoned_hist,
        "agents": list(per_agent),
        "talk": [t.avg_talk_seconds or 0 for t in per_agent.values()],
        "hold": [t.avg_hold_seconds or 0 for t in per_agent.values()],
        "wrap": [t.avg_wrap_seconds or 0 for t in per_agent.values()],
        "heat": heat,
    }


def _whole(request: ReportRequest, period: Period, by: Dimension) -> ReportRequest:
    return ReportRequest(request.start, request.end, period, by, request.timezone, request.queue_id)


@get("/")
async def report_page(request: Request) -> Template:
    params = dict(request.query_params)
    req = _request(request, params)
    days = _days(request)
    report = await _run(request, build_report, req, days)
    by_agent = await _run(request, build_report, _whole(req, Period.MONTH, Dimension.AGENT), [])
    by_hour = await _run(request, build_report, _whole(req, Period.HOUR, Dimension.TOTAL), [])
    slots = Period.INTERVAL if req.period is Period.INTERVAL else Period.HOUR
    by_queue = await _run(request, build_report, _whole(req, slots, Dimension.QUEUE), [])

    def extras(db: Session) -> tuple[list[Queue], list[ReportSchedule]]:
        queues = list(db.exec(select(Queue).order_by(Queue.name)).all())
        schedules = list(db.exec(select(ReportSchedule).order_by(ReportSchedule.name)).all())
        return queues, schedules

    queues, schedules = await _run(request, extras)
    query = "&".join(f"{k}={v}" for k, v in _form_of(req).items() if v != "")
    return page(
        "reports/page.html",
        request,
        req=req,
        form=_form_of(req),
        report=report,
        cells=table(report),
        periods=list(Period),
        dimensions=list(Dimension),
        queues=queues,
        schedules=schedules,
        query=query,
        charts=chart_data(
            report,
            by_agent,
            by_hour,
            agents_required(
                by_queue,
                req.period,
                {
                    q.id: (q.alert_sl_below_pct or DEFAULT_SL_TARGET_PCT, q.sla_seconds)
                    for q in queues
                },
            ),
        ),
    )


def _form_of(req: ReportRequest) -> dict[str, str]:
    return {
        "start": str(req.start),
        "end": str(req.end),
        "period": req.period.value,
        "by": req.by.value,
        "queue_id": "" if req.queue_id is None else str(req.queue_id),
    }


@get("/definitions")
async def definitions_page(request: Request) -> Template:
    rules = await _run(request, queue_rule_labels)
    return page(
        "reports/definitions.html",
        request,
        definitions=DEFINITIONS,
        rules=rules,
        repeat_days=_days(request),
        timezone=services_of(request).settings.timezone,
    )


def _filename(req: ReportRequest, ext: str) -> str:
    return f"report-{req.start}-{req.end}-{req.period.value}-{req.by.value}.{ext}"


@get("/export.csv")
async def export_csv(request: Request) -> Response:
    req = _request(request, dict(request.query_params))
    report = await _run(request, build_report, req, _days(request))
    return Response(
        content=to_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(req, "csv")}"'},
    )


@get("/export.xlsx")
async def export_xlsx(request: Request) -> Response:
    req = _request(request, dict(request.query_params))
    report = await _run(request, build_report, req, _days(request))
    return Response(
        content=to_xlsx(report),
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{_filename(req, "xlsx")}"'},
    )


@get("/agents")
async def agents_page(request: Request) -> Template:
    req = _request(request, dict(request.query_params))
    activity = await _run(request, agent_activity, req)
    start, end = req.utc_range
    zone = ZoneInfo(req.timezone)
    timeline = {
        "start": start.timestamp() * 1000,
        "end": end.timestamp() * 1000,
        "offset_minutes": [
            # the zone's offset at the range's start, so the axis reads local time
            int((start.astimezone(zone).utcoffset() or timedelta()).total_seconds() // 60)
        ],
        "agents": [a.name for a in activity],
        "spans": [
            {
                "agent": a.name,
                "state": s.state,
                "reason": s.reason or "",
                "from": s.start.timestamp() * 1000,
                "to": s.end.timestamp() * 1000,
            }
            for a in activity
            for s in a.spans
        ],
    }
    channels = sorted({channel for a in activity for channel in a.handled})
    return page(
        "reports/agents.html",
        request,
        req=req,
        form=_form_of(req),
        activity=activity,
        channels=channels,
        timeline=timeline,
        states=["ready", "not_ready", "busy", "wrap_up"],
    )


@post("/schedules", status_code=303)
async def create_schedule(request: Request, data: FormData) -> Redirect:
    """Save the report on screen to be e-mailed daily or weekly."""
    settings = services_of(request).settings
    name = str(data.get("name", "")).strip()
    email_to = str(data.get("email_to", "")).strip()
    every = str(data.get("every", "daily"))
    file_format = str(data.get("file_format", "xlsx"))
    if not name or len(name) > 100:
        raise UnprocessableError("Give the saved report a name (at most 100 characters).")
    if "@" not in email_to or len(email_to) > 300 or any(c in email_to for c in "\r\n,;"):
        raise UnprocessableError("Send to must be one e-mail address.")
    if every not in EVERY:
        raise UnprocessableError("Every must be daily or weekly.")
    if file_format not in ("csv", "xlsx"):
        raise UnprocessableError("Format must be CSV or XLSX.")
    req = _request(request, data)
    at_hour = int(str(data.get("hour", "6")) or 6) if str(data.get("hour", "6")).isdigit() else -1
    if not 0 <= at_hour <= 23:
        raise UnprocessableError("Send at must be an hour from 0 to 23.")
    zone = ZoneInfo(settings.timezone)
    local_now = datetime.now(UTC).astimezone(zone)
    first = datetime.combine(local_now.date(), time(at_hour), zone)
    if first <= local_now:
        first = datetime.combine(local_now.date() + timedelta(days=1), time(at_hour), zone)
    params = _form_of(req)
    params.pop("start"), params.pop("end")
    schedule = ReportSchedule(
        name=name,
        params=params,
        email_to=email_to,
        every=every,
        file_format=file_format,
        next_run_at=first.astimezone(UTC),
        created_by=user_of(request).id,
    )

    def save(db: Session) -> None:
        db.add(schedule)
        db.flush()
        schedule_job(db, schedule)

    await services_of(request).transactions.run(save)
    return Redirect(
        "/reports?" + "&".join(f"{k}={v}" for k, v in _form_of(req).items()), status_code=303
    )


@post("/schedules/{schedule_id:int}/delete", status_code=303)
async def delete_schedule(request: Request, schedule_id: FromPath[int]) -> Redirect:
    def remove(db: Session) -> bool:
        row = db.get(ReportSchedule, schedule_id)
        if row is None:
            return False
        db.delete(row)
        return True

    if not await services_of(request).transactions.run(remove):
        raise NotFoundException(f"Saved report {schedule_id} does not exist.")
    return Redirect("/reports", status_code=303)


reports_router = Router(
    path="/reports",
    guards=[role_guard(Role.SUPERVISOR)],
    route_handlers=[
        report_page,
        definitions_page,
        export_csv,
        export_xlsx,
        agents_page,
        create_schedule,
        delete_schedule,
    ],
)

route_handlers: list = [reports_router]
