"""Staffing pages for supervisors and admins (planners): the what-if and the schedule,
staffing groups, shift templates, forecast overrides and uploads, and named rosters.

The numbers come from ``hub.staffing``; every change a planner keeps (groups, templates,
overrides, rosters, who works a shift) is audited with the value before it.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, Router, get, post
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.staffing import example, service
from hub.staffing.schedule import Status, clock
from hub.staffing.service import (
    MODEL_CHANNELS,
    WEEKDAYS,
    DayGrid,
    GroupInputs,
    StaffingInputError,
    parse_clock,
)
from models import (
    Agent,
    AgentSkill,
    Queue,
    Role,
    Roster,
    RosterShift,
    ShiftTemplate,
    Skill,
    StaffingGroup,
    StaffingModel,
    User,
)
from web.common import ClientError, UnprocessableError, page, role_guard, services_of, user_of

MAX_UPLOAD_BYTES = 1_000_000


class Conflict(ClientError):
    status_code = 409


def _bad(exc: Exception) -> UnprocessableError:
    return UnprocessableError(str(exc))


def _int(form: Any, field: str, label: str, lo: int, hi: int, default: int | None = None) -> int:
    raw = str(form.get(field) if form.get(field) is not None else "").strip()
    if raw == "" and default is not None:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise UnprocessableError(f"{label} must be a number.") from None
    if not lo <= value <= hi:
        raise UnprocessableError(f"{label} must be {lo} to {hi}.")
    return value


def _float(form: Any, field: str, label: str, lo: float, hi: float) -> float:
    raw = str(form.get(field) or "").strip()
    try:
        value = float(raw)
    except ValueError:
        raise UnprocessableError(f"{label} must be a number.") from None
    if not lo <= value <= hi:
        raise UnprocessableError(f"{label} must be {lo:g} to {hi:g}.")
    return value


def _text(form: Any, field: str, label: str, max_len: int) -> str:
    value = str(form.get(field) or "").strip()
    if not value:
        raise UnprocessableError(f"{label} is required.")
    if len(value) > max_len:
        raise UnprocessableError(f"{label} is too long (at most {max_len} characters).")
    return value


def _clock(form: Any, field: str, label: str) -> int:
    try:
        return parse_clock(str(form.get(field) or ""), label)
    except StaffingInputError as exc:
        raise _bad(exc) from None


def _tomorrow(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone or "UTC")).date() + timedelta(days=1)


def _grid(params: Any, timezone: str) -> tuple[DayGrid, int]:
    raw_day = str(params.get("day") or "").strip()
    try:
        day = date.fromisoformat(raw_day) if raw_day else _tomorrow(timezone)
    except ValueError:
        raise UnprocessableError(f"Day: “{raw_day}” is not a date like 2026-12-07.") from None
    minutes = _int(params, "minutes", "Interval", 15, 60, default=60)
    open_from = _clock({"v": params.get("open_from") or "07:00"}, "v", "Open from")
    open_to = _clock({"v": params.get("open_to") or "21:00"}, "v", "Open until")
    weeks = _int(params, "weeks", "Weeks of history", 1, 52, default=6)
    try:
        return DayGrid(day, minutes, open_from, open_to), weeks
    except StaffingInputError as exc:
        raise _bad(exc) from None


async def _groups(db: AsyncSession) -> list[StaffingGroup]:
    return list(
        (
            await db.exec(
                select(StaffingGroup)
                .where(StaffingGroup.active == True)  # noqa: E712
                .order_by(col(StaffingGroup.name))
            )
        ).all()
    )


async def _templates(db: AsyncSession) -> list[ShiftTemplate]:
    return list((await db.exec(select(ShiftTemplate).order_by(col(ShiftTemplate.name)))).all())


def _timezone(request: Request) -> str:
    return services_of(request).settings.timezone


# ---------------------------------------------------------------- the what-if and schedule


@get("/")
async def staffing_home() -> Redirect:
    return Redirect("/staffing/plan")


@get("/plan")
async def plan_page(request: Request) -> Template:
    tz = _timezone(request)
    grid, weeks = _grid(request.query_params, tz)
    async with services_of(request).sessionmaker() as db:
        groups = await _groups(db)
        forecasts = await service.forecasts(db, groups, grid, weeks, tz)
        week = []  # the coming week's forecast totals per day, each day a link
        for offset in range(7):
            other = DayGrid(
                grid.day + timedelta(days=offset), grid.minutes, grid.open_from, grid.open_to
            )
            daily = (
                forecasts if offset == 0 else await service.forecasts(db, groups, other, weeks, tz)
            )
            week.append((other.day, [round(sum(f.volumes)) for f in daily]))
    outcome = (
        service.what_if(
            grid,
            [GroupInputs.of(f.group) for f in forecasts],
            {f.group.name: f.volumes for f in forecasts},
        )
        if forecasts
        else None
    )
    return page(
        "staffing/plan.html",
        request,
        grid=grid,
        weeks=weeks,
        forecasts=forecasts,
        week=week,
        outcome=outcome,
        clock=clock,
        tab="plan",
    )


def _inputs_from_form(form: FormMultiDict, group: StaffingGroup) -> GroupInputs:
    p = f"g{group.id}_"
    base = GroupInputs.of(group)
    inputs = service.with_overrides(
        base,
        aht_seconds=_int(
            form, p + "aht", f"{group.name}: handle time", 1, 86_400, base.aht_seconds
        ),
        sl_target_pct=_int(
            form, p + "sl_target", f"{group.name}: service-level target", 1, 99, base.sl_target_pct
        ),
        sl_seconds=_int(
            form, p + "sl_seconds", f"{group.name}: answer within", 1, 86_400, base.sl_seconds
        ),
        shrinkage_pct=_int(
            form, p + "shrinkage", f"{group.name}: shrinkage", 0, 90, base.shrinkage_pct
        ),
        concurrency=_int(
            form, p + "concurrency", f"{group.name}: concurrency", 1, 20, base.concurrency
        ),
        email_target_minutes=_int(
            form,
            p + "email_target",
            f"{group.name}: email target",
            15,
            7 * 24 * 60,
            base.email_target_minutes,
        ),
    )
    return inputs


def _volumes_from_form(
    form: FormMultiDict, group: StaffingGroup, grid: DayGrid, fallback: list[float]
) -> list[float]:
    p = f"g{group.id}_"
    scale = _int(form, p + "scale", f"{group.name}: volume scale", 0, 1000, 100) / 100
    volumes = []
    for start, default in zip(grid.starts, fallback, strict=True):
        field = f"{p}v{start}"
        raw = str(form.get(field) or "").strip()
        if raw == "":
            value = default
        else:
            value = _float(form, field, f"{group.name} at {clock(start)}", 0, 1_000_000)
        volumes.append(round(value * scale, 2))
    return volumes


@post("/plan", status_code=200)
async def plan_post(request: Request) -> Template | Response:
    """The what-if: requirement (and with ``action=schedule`` the plan) for the inputs on
    the form; ``save_overrides`` keeps the volumes, ``save_roster`` keeps the plan."""
    tz = _timezone(request)
    form = await request.form()
    grid, weeks = _grid(form, tz)
    action = str(form.get("action") or "requirement")
    if action not in ("requirement", "schedule", "save_overrides", "save_roster"):
        raise UnprocessableError(f"Unknown action “{action}”.")
    me = user_of(request)
    settings = services_of(request).settings
    async with services_of(request).sessionmaker() as db:
        groups = await _groups(db)
        if not groups:
            raise UnprocessableError("Add a staffing group first (Staffing → Groups).")
        forecasts = await service.forecasts(db, groups, grid, weeks, tz)
        inputs = [_inputs_from_form(form, f.group) for f in forecasts]
        volumes = {
            f.group.name: _volumes_from_form(form, f.group, grid, f.volumes) for f in forecasts
        }
        notice = None
        if action == "save_overrides":
            changed = 0
            for f in forecasts:
                history = f.history.volumes or [0.0] * len(grid.starts)
                values: dict[int, float | None] = {}
                for start, new, old, was in zip(
                    grid.starts, volumes[f.group.name], history, f.overridden, strict=True
                ):
                    if abs(new - old) > 1e-9:
                        values[start] = new
                    elif was:
                        values[start] = None  # back to the history's number
                changed += await service.save_overrides(
                    db, f.group, grid.day, grid.minutes, values, user_id=me.id
                )
            await db.commit()
            notice = f"Saved the forecast: {changed} interval(s) changed."
        templates = await _templates(db) if action in ("schedule", "save_roster") else None
        try:
            outcome = service.what_if(
                grid, inputs, volumes, templates, time_limit=settings.staffing_solver_seconds
            )
        except (StaffingInputError, ValueError) as exc:
            raise _bad(exc) from None
        if action == "save_roster":
            if outcome.plan is None or outcome.plan.status is Status.INFEASIBLE:
                raise UnprocessableError(
                    "There is no plan to save: "
                    + "; ".join(outcome.plan.problems if outcome.plan else [])
                )
            try:
                roster = await service.save_roster(
                    db,
                    str(form.get("roster_name") or ""),
                    outcome,
                    {t.name: t for t in templates or []},
                    user_id=me.id,
                )
            except StaffingInputError as exc:
                raise _bad(exc) from None
            await db.commit()
            url = f"/staffing/rosters/{roster.id}"
            return Response(content="", status_code=200, headers={"HX-Redirect": url})
    return Template(
        template_name="staffing/_result.html",
        context={
            "outcome": outcome,
            "grid": grid,
            "notice": notice,
            "clock": clock,
            "chart_json": json.dumps(outcome.chart()) if outcome.plan else "",
        },
    )


@post("/example", status_code=200)
async def load_example(request: Request) -> Response:
    """The children's hospital appointment center (``hub.staffing.example``) for a day."""
    form = await request.form()
    grid, _weeks = _grid({"day": form.get("day")}, _timezone(request))
    if grid.day.weekday() >= 5:
        raise UnprocessableError("The example center is open on weekdays: pick Monday to Friday.")
    async with services_of(request).sessionmaker() as db:
        await example.load_example(db, grid.day, user_id=user_of(request).id)
        await db.commit()
    url = f"/staffing/plan?day={grid.day.isoformat()}&minutes=60&open_from=07:00&open_to=21:00"
    return Response(content="", headers={"HX-Redirect": url})


@post("/forecast/upload", status_code=200)
async def forecast_upload(request: Request) -> Template:
    """CSV ``group,date,time,volume``: the planner's forecast replaces history's numbers."""
    form = await request.form()
    minutes = _int(form, "minutes", "Interval", 15, 60, 60)
    if minutes not in (15, 30, 60):
        raise UnprocessableError("Interval must be 15, 30 or 60 minutes.")
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise UnprocessableError("Choose a CSV file to upload.")
    raw = await upload.read()
    if len(raw) > MAX_UPLOAD_BYTES:
        raise UnprocessableError("The file is too large (at most 1 MB).")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnprocessableError("The file is not UTF-8 text (save it as CSV UTF-8).") from None
    me = user_of(request)
    async with services_of(request).sessionmaker() as db:
        groups = {g.name: g for g in await _groups(db)}
        try:
            rows = service.parse_forecast_csv(text, groups, minutes)
        except StaffingInputError as exc:
            raise _bad(exc) from None
        batches: dict[tuple[int, date], dict[int, float | None]] = {}
        for row in rows:
            batches.setdefault((row.group.id or 0, row.day), {})[row.start] = row.volume
        by_id = {g.id: g for g in groups.values()}
        changed = 0
        for (group_id, day), values in batches.items():
            changed += await service.save_overrides(
                db, by_id[group_id], day, minutes, values, user_id=me.id, source="upload"
            )
        await db.commit()
    return Template(
        template_name="staffing/_notice.html",
        context={"notice": f"Uploaded {len(rows)} line(s); {changed} interval(s) changed."},
    )


# ---------------------------------------------------------------- groups and templates


GROUP_FIELDS = (
    "name",
    "model",
    "skill",
    "queue_id",
    "aht_seconds",
    "sl_target_pct",
    "sl_seconds",
    "shrinkage_pct",
    "concurrency",
    "email_target_minutes",
    "active",
)


async def _lookups(db: AsyncSession) -> dict[str, Any]:
    return {
        "queues": list((await db.exec(select(Queue).order_by(col(Queue.name)))).all()),
        "skills": [s.name for s in (await db.exec(select(Skill).order_by(col(Skill.name)))).all()],
    }


@get("/groups")
async def groups_page(request: Request) -> Template:
    async with services_of(request).sessionmaker() as db:
        rows = list((await db.exec(select(StaffingGroup).order_by(col(StaffingGroup.name)))).all())
        lk = await _lookups(db)
    edit_id = request.query_params.get("edit")
    editing = next((g for g in rows if str(g.id) == str(edit_id)), None)
    return page(
        "staffing/groups.html",
        request,
        rows=rows,
        lk=lk,
        editing=editing,
        models=[m.value for m in StaffingModel],
        tab="groups",
    )


def _fill_group(group: StaffingGroup, form: FormMultiDict, queue_ids: set[int]) -> None:
    group.name = _text(form, "name", "Name", 64)
    model = str(form.get("model") or "")
    if model not in {m.value for m in StaffingModel}:
        raise UnprocessableError("Model must be calls, chat or email.")
    group.model = model
    group.channels = list(MODEL_CHANNELS[StaffingModel(model)])
    group.skill = _text(form, "skill", "Skill or language", 64)
    queue_raw = str(form.get("queue_id") or "").strip()
    if queue_raw:
        if not queue_raw.isdigit() or int(queue_raw) not in queue_ids:
            raise UnprocessableError("Queue: pick one from the list.")
        group.queue_id = int(queue_raw)
    else:
        group.queue_id = None
    group.aht_seconds = _int(form, "aht_seconds", "Handle time (s)", 1, 86_400)
    group.sl_target_pct = _int(form, "sl_target_pct", "Service-level target (%)", 1, 99)
    group.sl_seconds = _int(form, "sl_seconds", "Answer within (s)", 1, 86_400)
    group.shrinkage_pct = _int(form, "shrinkage_pct", "Shrinkage (%)", 0, 90)
    group.concurrency = _int(form, "concurrency", "Concurrency", 1, 20, 1)
    group.email_target_minutes = _int(
        form, "email_target_minutes", "Email target (min)", 15, 7 * 24 * 60, 240
    )
    group.active = str(form.get("active") or "") in ("on", "1", "true")


async def _save_row(
    request: Request, db: AsyncSession, row: Any, entity: str, before: dict | None
) -> None:
    db.add(row)
    try:
        await db.flush()
    except IntegrityError as exc:
        await db.rollback()
        raise Conflict("That name is already taken.") from exc
    audit.record(
        db,
        user_id=user_of(request).id,
        action="create" if before is None else "update",
        entity=entity,
        entity_id=row.id,
        before=before,
        after=audit.snapshot(row),
    )
    await db.commit()


@post("/groups", status_code=200)
async def group_create(request: Request) -> Response:
    return await _group_save(request, None)


@post("/groups/{row_id:int}", status_code=200)
async def group_update(request: Request, row_id: FromPath[int]) -> Response:
    return await _group_save(request, row_id)


async def _group_save(request: Request, row_id: int | None) -> Response:
    form = await request.form()
    async with services_of(request).sessionmaker() as db:
        queue_ids = {q.id for q in (await db.exec(select(Queue))).all() if q.id}
        if row_id is None:
            row, before = StaffingGroup(skill=""), None
        else:
            row = await db.get(StaffingGroup, row_id)
            if row is None:
                raise NotFoundException(f"Staffing group #{row_id} does not exist.")
            before = audit.snapshot(row)
        _fill_group(row, form, queue_ids)  # type: ignore[arg-type]
        await _save_row(request, db, row, "staffing_group", before)
    return Response(content="", headers={"HX-Redirect": "/staffing/groups"})


@get("/templates")
async def templates_page(request: Request) -> Template:
    async with services_of(request).sessionmaker() as db:
        rows = await _templates(db)
        lk = await _lookups(db)
        groups = list((await db.exec(select(StaffingGroup))).all())
    edit_id = request.query_params.get("edit")
    editing = next((t for t in rows if str(t.id) == str(edit_id)), None)
    skills = sorted(set(lk["skills"]) | {g.skill for g in groups})
    return page(
        "staffing/templates.html",
        request,
        rows=rows,
        skills=skills,
        editing=editing,
        weekdays=WEEKDAYS,
        clock=clock,
        tab="templates",
    )


def _fill_template(t: ShiftTemplate, form: FormMultiDict) -> None:
    t.name = _text(form, "name", "Name", 64)
    t.length_minutes = round(_float(form, "length_hours", "Length (hours)", 0.25, 24) * 60)
    t.earliest_start = _clock(form, "earliest_start", "Earliest start")
    t.latest_start = _clock(form, "latest_start", "Latest start")
    if t.latest_start < t.earliest_start:
        raise UnprocessableError("Latest start must not be before the earliest start.")
    t.start_step_minutes = _int(form, "start_step_minutes", "Start every (min)", 15, 24 * 60, 60)
    t.break_minutes = _int(form, "break_minutes", "Break (min)", 0, 240, 0)
    if t.break_minutes:
        t.break_offset_minutes = _int(
            form, "break_offset_minutes", "Break after (min)", 0, t.length_minutes - t.break_minutes
        )
    else:
        t.break_offset_minutes = None
    t.paid_break = str(form.get("paid_break") or "") in ("on", "1", "true")
    t.cost_per_hour = _float(form, "cost_per_hour", "Cost per hour", 0, 100_000)
    skills = [str(s).strip() for s in form.getall("skills", []) if str(s).strip()]
    if not skills:
        raise UnprocessableError("Pick at least one skill or language the shift brings.")
    t.skills = skills
    days = [d for d in form.getall("weekdays", []) if d in WEEKDAYS]
    t.weekdays = days
    cap = str(form.get("max_count") or "").strip()
    t.max_count = _int(form, "max_count", "At most (agents)", 0, 10_000) if cap else None
    t.active = str(form.get("active") or "") in ("on", "1", "true")


@post("/templates", status_code=200)
async def template_create(request: Request) -> Response:
    return await _template_save(request, None)


@post("/templates/{row_id:int}", status_code=200)
async def template_update(request: Request, row_id: FromPath[int]) -> Response:
    return await _template_save(request, row_id)


async def _template_save(request: Request, row_id: int | None) -> Response:
    form = await request.form()
    async with services_of(request).sessionmaker() as db:
        if row_id is None:
            row, before = ShiftTemplate(), None
        else:
            row = await db.get(ShiftTemplate, row_id)
            if row is None:
                raise NotFoundException(f"Shift template #{row_id} does not exist.")
            before = audit.snapshot(row)
        _fill_template(row, form)  # type: ignore[arg-type]
        await _save_row(request, db, row, "shift_template", before)
    return Response(content="", headers={"HX-Redirect": "/staffing/templates"})


# ---------------------------------------------------------------- rosters


@get("/rosters")
async def rosters_page(request: Request) -> Template:
    async with services_of(request).sessionmaker() as db:
        rows = list(
            (await db.exec(select(Roster).order_by(col(Roster.day).desc(), col(Roster.id)))).all()
        )
    return page("staffing/rosters.html", request, rows=rows, tab="rosters")


async def _agents_by_skill(db: AsyncSession) -> tuple[list[tuple[int, str]], dict[int, set[str]]]:
    rows = (
        await db.exec(
            select(Agent.id, User.display_name)
            .join(User, col(User.id) == col(Agent.user_id))
            .where(User.active == True)  # noqa: E712
            .order_by(col(User.display_name))
        )
    ).all()
    skills: dict[int, set[str]] = {}
    for agent_id, name in (
        await db.exec(
            select(AgentSkill.agent_id, Skill.name).join(
                Skill, col(Skill.id) == col(AgentSkill.skill_id)
            )
        )
    ).all():
        skills.setdefault(agent_id, set()).add(name)
    return [(a, n) for a, n in rows if a is not None], skills


async def _roster_context(db: AsyncSession, roster_id: int) -> dict[str, Any]:
    roster = await db.get(Roster, roster_id)
    if roster is None:
        raise NotFoundException(f"Roster #{roster_id} does not exist.")
    view = await service.roster_view(db, roster)
    agents, skills = await _agents_by_skill(db)
    templates = [t for t in await _templates(db) if t.active]
    names = dict(agents)
    return {
        "view": view,
        "agents": agents,
        "agent_skills": skills,
        "agent_names": names,
        "templates": templates,
        "clock": clock,
        "chart_json": json.dumps(view.chart()),
    }


@get("/rosters/{roster_id:int}")
async def roster_page(request: Request, roster_id: FromPath[int]) -> Template:
    async with services_of(request).sessionmaker() as db:
        ctx = await _roster_context(db, roster_id)
    return page("staffing/roster.html", request, tab="rosters", **ctx)


def _overlaps(a: RosterShift, b: RosterShift) -> bool:
    return a.start_minute < b.start_minute + b.length_minutes and (
        b.start_minute < a.start_minute + a.length_minutes
    )


@post("/rosters/{roster_id:int}/shifts/{shift_id:int}", status_code=200)
async def roster_assign(
    request: Request, roster_id: FromPath[int], shift_id: FromPath[int]
) -> Template:
    """Who works this shift (blank: nobody yet); one agent cannot work two shifts at once."""
    form = await request.form()
    raw = str(form.get("agent_id") or "").strip()
    async with services_of(request).sessionmaker() as db:
        shift = await db.get(RosterShift, shift_id)
        if shift is None or shift.roster_id != roster_id:
            raise NotFoundException(f"Roster #{roster_id} has no shift #{shift_id}.")
        agent_id = None
        if raw:
            if not raw.isdigit() or await db.get(Agent, int(raw)) is None:
                raise UnprocessableError("Agent: pick one from the list.")
            agent_id = int(raw)
            others = (
                await db.exec(
                    select(RosterShift).where(
                        RosterShift.roster_id == roster_id,
                        RosterShift.agent_id == agent_id,
                        RosterShift.id != shift_id,
                    )
                )
            ).all()
            if any(_overlaps(shift, o) for o in others):
                raise Conflict("That agent already works an overlapping shift on this roster.")
        before = audit.snapshot(shift)
        shift.agent_id = agent_id
        db.add(shift)
        await _touch(db, roster_id)
        audit.record(
            db,
            user_id=user_of(request).id,
            action="assign",
            entity="roster_shift",
            entity_id=shift.id,
            before=before,
            after=audit.snapshot(shift),
        )
        await db.commit()
        ctx = await _roster_context(db, roster_id)
    ctx["notice"] = "Saved."
    return Template(template_name="staffing/_roster.html", context=ctx)


async def _touch(db: AsyncSession, roster_id: int) -> None:
    roster = await db.get(Roster, roster_id)
    if roster is not None:
        roster.updated_at = datetime.now().astimezone()
        db.add(roster)


@post("/rosters/{roster_id:int}/shifts", status_code=200)
async def roster_add_shift(request: Request, roster_id: FromPath[int]) -> Template:
    """The planner adds an agent-shift by hand (a template at a start time)."""
    form = await request.form()
    async with services_of(request).sessionmaker() as db:
        roster = await db.get(Roster, roster_id)
        if roster is None:
            raise NotFoundException(f"Roster #{roster_id} does not exist.")
        template_id = _int(form, "template_id", "Template", 1, 2**31)
        template = await db.get(ShiftTemplate, template_id)
        if template is None:
            raise UnprocessableError("Template: pick one from the list.")
        start = _clock(form, "start", "Start")
        plan = roster.plan or {}
        if start < plan.get("open_from", 0) or start + template.length_minutes > plan.get(
            "open_to", 24 * 60
        ):
            raise UnprocessableError("The shift must start and end within the opening hours.")
        paid = template.length_minutes - (0 if template.paid_break else template.break_minutes)
        shift = RosterShift(
            roster_id=roster_id,
            template_id=template.id,
            template_name=template.name,
            start_minute=start,
            length_minutes=template.length_minutes,
            break_offset_minutes=template.break_offset_minutes,
            break_minutes=template.break_minutes,
            cost=round(template.cost_per_hour * paid / 60, 4),
            skills=list(template.skills or []),
        )
        db.add(shift)
        await db.flush()
        await _touch(db, roster_id)
        audit.record(
            db,
            user_id=user_of(request).id,
            action="create",
            entity="roster_shift",
            entity_id=shift.id,
            after=audit.snapshot(shift),
        )
        await db.commit()
        ctx = await _roster_context(db, roster_id)
    ctx["notice"] = f"Added {template.name} at {clock(start)}."
    return Template(template_name="staffing/_roster.html", context=ctx)


@post("/rosters/{roster_id:int}/shifts/{shift_id:int}/delete", status_code=200)
async def roster_remove_shift(
    request: Request, roster_id: FromPath[int], shift_id: FromPath[int]
) -> Template:
    async with services_of(request).sessionmaker() as db:
        shift = await db.get(RosterShift, shift_id)
        if shift is None or shift.roster_id != roster_id:
            raise NotFoundException(f"Roster #{roster_id} has no shift #{shift_id}.")
        before = audit.snapshot(shift)
        await db.delete(shift)
        await _touch(db, roster_id)
        audit.record(
            db,
            user_id=user_of(request).id,
            action="delete",
            entity="roster_shift",
            entity_id=shift_id,
            before=before,
        )
        await db.commit()
        ctx = await _roster_context(db, roster_id)
    ctx["notice"] = "Removed the shift."
    return Template(template_name="staffing/_roster.html", context=ctx)


@post("/rosters/{roster_id:int}/delete", status_code=200)
async def roster_delete(request: Request, roster_id: FromPath[int]) -> Response:
    async with services_of(request).sessionmaker() as db:
        roster = await db.get(Roster, roster_id)
        if roster is None:
            raise NotFoundException(f"Roster #{roster_id} does not exist.")
        before = audit.snapshot(roster)
        await db.exec(delete(RosterShift).where(col(RosterShift.roster_id) == roster_id))  # type: ignore[call-overload]
        await db.delete(roster)
        audit.record(
            db,
            user_id=user_of(request).id,
            action="delete",
            entity="roster",
            entity_id=roster_id,
            before=before,
        )
        await db.commit()
    return Response(content="", headers={"HX-Redirect": "/staffing/rosters"})


staffing_router = Router(
    path="/staffing",
    guards=[role_guard(Role.SUPERVISOR)],
    route_handlers=[
        staffing_home,
        plan_page,
        plan_post,
        load_example,
        forecast_upload,
        groups_page,
        group_create,
        group_update,
        templates_page,
        template_create,
        template_update,
        rosters_page,
        roster_page,
        roster_assign,
        roster_add_shift,
        roster_remove_shift,
        roster_delete,
    ],
)

route_handlers: list = [staffing_router]
