"""Admin pages: queues, skills, agents (users), disposition codes, not-ready reasons,
business hours, and the audit log.

Every change writes an AuditEntry with the value before it (and after), in the same
transaction as the change. Bad input gets a 422 that names the field; the page shows it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from litestar import Request, Router, get, post
from litestar.datastructures import FormMultiDict
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import ChannelKind
from hub import audit, canned
from hub.auth import hash_password
from hub.events import ROUTING_TOPIC
from hub.routing.decision import BESIDE_CALL, TOTAL
from hub.routing.snapshot import as_utc
from hub.service_level import DENOMINATOR_LABELS, Denominator
from models import (
    Agent,
    AgentSkill,
    BusinessHours,
    CannedResponse,
    Dialog,
    Disposition,
    Inbox,
    NotReadyReason,
    Queue,
    QueueSkill,
    Role,
    Skill,
    Strategy,
    SupervisorQueue,
    User,
)
from models.base import utcnow
from web.admin_usage import uses_of
from web.common import (
    ClientError,
    UnprocessableError,
    form_int,
    opt_int,
    page,
    role_guard,
    services_of,
    user_of,
)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHANNELS = [k.value for k in ChannelKind]
# Limits kept beside the per-channel capacity (hub.routing.decision.free_slots); blank = none.
LIMITS = {
    TOTAL: "Open conversations across channels",
    BESIDE_CALL: "Chats beside a call",
}
_CODE = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,31}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
# What a softphone can type and digest (RFC 3261 §25) carries without quoting trouble.
_SIP_PASSWORD = re.compile(r"^[A-Za-z0-9\-_.~!*+=@#]{8,128}$")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)\s*-\s*(([01]\d|2[0-3]):[0-5]\d|24:00)$")


class Conflict(ClientError):
    status_code = 409


# ---------------------------------------------------------------- form parsing


def text(
    form: FormMultiDict, field: str, label: str, *, max_len: int, required: bool = True
) -> str:
    value = str(form.get(field) or "").strip()
    if required and not value:
        raise UnprocessableError(f"{label} is required.")
    if len(value) > max_len:
        raise UnprocessableError(f"{label} is too long (at most {max_len} characters).")
    return value


def code(form: FormMultiDict, field: str = "code") -> str:
    value = text(form, field, "Code", max_len=32)
    if not _CODE.fullmatch(value):
        raise UnprocessableError(
            "Code must be lower-case letters, digits, '_' or '-' (at most 32 characters)."
        )
    return value


def checked(form: FormMultiDict, field: str) -> bool:
    return str(form.get(field) or "") in ("on", "true", "1", "yes")


def parse_weekly(form: FormMultiDict) -> dict[str, list[list[str]]]:
    """One text field per day, e.g. ``09:00-12:00, 13:00-17:00``; empty means closed."""
    weekly: dict[str, list[list[str]]] = {}
    for day in DAYS:
        raw = str(form.get(f"day_{day}") or "").strip()
        if not raw:
            continue
        ranges = []
        for part in re.split(r"[,;]\s*", raw):
            match = _RANGE.fullmatch(part.strip())
            if not match:
                raise UnprocessableError(
                    f"{day.capitalize()}: “{part.strip()}” is not a range like 09:00-17:00."
                )
            start, end = (p.strip() for p in part.split("-"))
            if end <= start:
                raise UnprocessableError(
                    f"{day.capitalize()}: {part.strip()} ends before it starts."
                )
            ranges.append([start, end])
        weekly[day] = ranges
    return weekly


def parse_holidays(form: FormMultiDict) -> list[str]:
    out = []
    for raw in re.split(r"[\s,;]+", str(form.get("holidays") or "").strip()):
        if not raw:
            continue
        try:
            out.append(date.fromisoformat(raw).isoformat())
        except ValueError:
            raise UnprocessableError(f"Holiday “{raw}” is not a date like 2026-12-25.") from None
    return sorted(set(out))


def timezone(form: FormMultiDict) -> str:
    value = text(form, "timezone", "Time zone", max_len=64)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnprocessableError(f"“{value}” is not a time zone (e.g. Europe/Berlin).") from None
    return value


def skill_levels(form: FormMultiDict, skills: list[Skill], prefix: str) -> dict[int, int]:
    """``{skill_id: level}`` from one select per skill (0 or empty: not required/held)."""
    levels = {}
    for skill in skills:
        level = opt_int(form.get(f"{prefix}{skill.id}"), f"Level of {skill.name}", lo=0, hi=5)
        if level:
            levels[skill.id] = level  # type: ignore[index]
    return levels


# ---------------------------------------------------------------- sections


@dataclass
class Section:
    """One admin page: how to list, load and save one kind of row."""

    key: str
    title: str
    model: type[SQLModel]
    columns: list[tuple[str, Callable[[Any, dict[str, Any]], Any]]]
    form_template: str
    save: Callable[[AsyncSession, Any, FormMultiDict, dict[str, Any]], Awaitable[Any]]
    order_by: Any
    deletable: bool = True
    creatable: bool = True  # False: rows made elsewhere (inboxes), only edited here


async def lookups(db: AsyncSession) -> dict[str, Any]:
    skills = list((await db.exec(select(Skill).order_by(Skill.name))).all())
    queues = list((await db.exec(select(Queue).order_by(Queue.name))).all())
    hours = list((await db.exec(select(BusinessHours).order_by(BusinessHours.name))).all())
    queue_skills: dict[int, dict[int, int]] = {}
    for row in (await db.exec(select(QueueSkill))).all():
        queue_skills.setdefault(row.queue_id, {})[row.skill_id] = row.min_level
    agents = {a.user_id: a for a in (await db.exec(select(Agent))).all()}
    agent_skills: dict[int, dict[int, int]] = {}
    for row in (await db.exec(select(AgentSkill))).all():
        agent_skills.setdefault(row.agent_id, {})[row.skill_id] = row.level
    published = await db.exec(
        select(Dialog.id, Dialog.name)
        .where(col(Dialog.published_version_id).is_not(None))
        .order_by(col(Dialog.name))
    )
    monitored: dict[int, set[int]] = {}
    for row in (await db.exec(select(SupervisorQueue))).all():
        monitored.setdefault(row.user_id, set()).add(row.queue_id)
    return {
        "survey_dialogs": dict(published.all()),  # published dialogs a queue may survey with
        "monitored": monitored,  # supervisor user id → queues they may monitor (none: all)
        "skills": skills,
        "skill_names": {s.id: s.name for s in skills},
        "queues": queues,
        "queue_names": {q.id: q.name for q in queues},
        "hours": hours,
        "hours_names": {h.id: h.name for h in hours},
        "queue_skills": queue_skills,
        "agents": agents,
        "agent_skills": agent_skills,
        "channels": CHANNELS,
        "limits": LIMITS,
        "strategies": [s.value for s in Strategy],
        "sl_denominators": [(d.value, label) for d, label in DENOMINATOR_LABELS.items()],
        "roles": [r.value for r in Role],
        "days": DAYS,
        "canned_variables": canned.VARIABLES,
    }


async def save_skill(db: AsyncSession, row: Skill, form: FormMultiDict, _lk: dict) -> Skill:
    row.name = text(form, "name", "Name", max_len=64)
    row.description = text(form, "description", "Description", max_len=500, required=False)
    return row


async def save_code_row(db: AsyncSession, row: Any, form: FormMultiDict, _lk: dict) -> Any:
    row.code = code(form)
    row.label = text(form, "label", "Label", max_len=128)
    row.active = checked(form, "active")
    return row


async def save_hours(db: AsyncSession, row: BusinessHours, form: FormMultiDict, _lk: dict) -> Any:
    row.name = text(form, "name", "Name", max_len=64)
    row.timezone = timezone(form)
    row.weekly = parse_weekly(form)
    row.holidays = parse_holidays(form)
    return row


async def save_recording_policy(
    db: AsyncSession, row: Inbox, form: FormMultiDict, _lk: dict
) -> Inbox:
    """An inbox's recordings after redaction: only the redacted copy (the default), or the
    original too, playable only by the role named here."""
    keep = checked(form, "keep_original_audio")
    role = str(form.get("original_audio_role") or "").strip()
    if keep and role not in {r.value for r in Role}:
        raise UnprocessableError("Name the role that may play original recordings.")
    row.keep_original_audio = keep
    row.original_audio_role = role if keep else None
    return row


def _policy(row: Inbox) -> str:
    if row.keep_original_audio:
        return f"original kept, playable by {row.original_audio_role}"
    return "redacted copy only"


async def save_queue(db: AsyncSession, row: Queue, form: FormMultiDict, lk: dict) -> Queue:
    row.name = text(form, "name", "Name", max_len=64)
    channels = [c for c in form.getall("channels") if c in CHANNELS] if "channels" in form else []
    if not channels:
        raise UnprocessableError("Pick at least one channel the queue serves.")
    row.channels = channels
    row.priority = form_int(form.get("priority") or 0, "Priority", lo=-100, hi=100)
    strategy = str(form.get("strategy") or "")
    if strategy not in lk["strategies"]:
        raise UnprocessableError("Pick a routing strategy.")
    row.strategy = strategy
    lk["report_rule_before"] = (row.sla_seconds, row.sl_denominator, row.short_abandon_seconds)
    row.sla_seconds = form_int(form.get("sla_seconds"), "Service level target", lo=1, hi=86400)
    denominator = str(form.get("sl_denominator") or Denominator.ANSWERED_ABANDONED)
    if denominator not in {d.value for d in Denominator}:
        raise UnprocessableError("Pick what the service level counts.")
    row.sl_denominator = denominator
    row.short_abandon_seconds = form_int(
        form.get("short_abandon_seconds") or 0, "Short abandon", lo=0, hi=600
    )
    row.alert_waiting = opt_int(form.get("alert_waiting"), "Alert when waiting", lo=1, hi=100000)
    row.alert_longest_wait_seconds = opt_int(
        form.get("alert_longest_wait_seconds"), "Alert when the longest wait", lo=1, hi=86400
    )
    row.alert_sl_below_pct = opt_int(
        form.get("alert_sl_below_pct"), "Alert when service level is below", lo=1, hi=100
    )
    row.offer_timeout_seconds = form_int(
        form.get("offer_timeout_seconds"), "Offer timeout", lo=5, hi=600
    )
    row.wrapup_seconds = form_int(form.get("wrapup_seconds"), "Wrap-up timeout", lo=0, hi=3600)
    row.announce_seconds = (
        opt_int(form.get("announce_seconds"), "Announcement interval", lo=0, hi=3600) or 0
    )
    row.overflow_after_seconds = opt_int(
        form.get("overflow_after_seconds"), "Overflow after", lo=1, hi=86400
    )
    row.overflow_queue_id = opt_int(form.get("overflow_queue_id"), "Overflow queue", lo=1)
    if row.overflow_queue_id is not None:
        if row.overflow_queue_id not in lk["queue_names"]:
            raise UnprocessableError("The overflow queue does not exist.")
        if row.id is not None and row.overflow_queue_id == row.id:
            raise UnprocessableError("A queue cannot overflow into itself.")
    save_nobody_answers(row, form)
    max_wait_overflow = row.max_wait_action == "overflow" and row.max_wait_seconds is not None
    if row.overflow_queue_id is None and max_wait_overflow:
        raise UnprocessableError("Maximum wait → overflow needs an overflow queue.")
    if (row.overflow_after_seconds is None) != (row.overflow_queue_id is None) and not (
        max_wait_overflow and row.overflow_after_seconds is None
    ):
        raise UnprocessableError("Overflow needs both a time and a target queue (or neither).")
    row.overflow_relax_skills = checked(form, "overflow_relax_skills")
    row.hours_id = opt_int(form.get("hours_id"), "Business hours", lo=1)
    if row.hours_id is not None and row.hours_id not in lk["hours_names"]:
        raise UnprocessableError("Those business hours do not exist.")
    row.active = checked(form, "active")
    row.survey_dialog_id = opt_int(form.get("survey_dialog_id"), "Post-call survey", lo=1)
    if row.survey_dialog_id is not None and row.survey_dialog_id not in lk["survey_dialogs"]:
        raise UnprocessableError("The post-call survey must be a published dialog.")
    lk["extra"] = skill_levels(form, lk["skills"], "skill_")
    return row


MAX_WAIT_ACTIONS = {
    "voicemail": "voicemail",
    "callback": "offer a callback",
    "overflow": "overflow",
}


def save_nobody_answers(row: Queue, form: FormMultiDict) -> None:
    """The queue's "when nobody can answer" fields (``hub.nobody_answers``)."""
    row.max_wait_seconds = opt_int(form.get("max_wait_seconds"), "Maximum wait", lo=5, hi=86400)
    action = str(form.get("max_wait_action") or "voicemail")
    if action not in MAX_WAIT_ACTIONS:
        raise UnprocessableError("Pick what happens after the maximum wait.")
    row.max_wait_action = action
    key = str(form.get("callback_key") or "").strip()
    if key and (len(key) != 1 or key not in "0123456789*#"):
        raise UnprocessableError("The callback key is one key: 0-9, * or #.")
    row.callback_key = key
    row.callback_retry_seconds = form_int(
        form.get("callback_retry_seconds") or 300, "Callback retry interval", lo=5, hi=86400
    )
    row.callback_max_tries = form_int(
        form.get("callback_max_tries") or 3, "Callback tries", lo=1, hi=10
    )
    onduty = str(form.get("onduty_number") or "").strip()
    if onduty:
        from hub.outbound_calls import DialRefused, dialable_number

        if not onduty.startswith("+"):
            raise UnprocessableError("Enter the on-duty number with its country code (+…).")
        try:
            onduty = dialable_number(onduty, "ZZ")
        except DialRefused as bad:
            raise UnprocessableError(f"On-duty number: {bad.reason}") from None
    row.onduty_number = onduty


async def after_queue(db: AsyncSession, row: Queue, lk: dict) -> None:
    levels: dict[int, int] = lk.get("extra", {})
    await db.exec(delete(QueueSkill).where(col(QueueSkill.queue_id) == row.id))  # type: ignore[call-overload]
    for skill_id, level in levels.items():
        db.add(QueueSkill(queue_id=row.id, skill_id=skill_id, min_level=level))  # type: ignore[arg-type]
    rule = (row.sla_seconds, row.sl_denominator, row.short_abandon_seconds)
    if lk.get("report_rule_before") not in (None, rule):
        # the report figures of the recent past are computed again under the new rule
        from hub.jobs import enqueue
        from hub.reports.rollups import REBUILD_JOB

        enqueue(db, REBUILD_JOB, {"queue_id": row.id})


async def save_user(db: AsyncSession, row: User, form: FormMultiDict, lk: dict) -> User:
    username = text(form, "username", "Username", max_len=64)
    if not _USERNAME.fullmatch(username):
        raise UnprocessableError("Username: 2–64 letters, digits, '.', '_' or '-'.")
    row.username = username
    row.display_name = text(form, "display_name", "Display name", max_len=128)
    role = str(form.get("role") or "")
    if role not in lk["roles"]:
        raise UnprocessableError("Pick a role.")
    row.role = role
    row.active = checked(form, "active")
    password = str(form.get("password") or "")
    if password:
        if len(password) < 8:
            raise UnprocessableError("The password needs at least 8 characters.")
        if len(password) > 256:
            raise UnprocessableError("The password is too long.")
        row.password_hash = hash_password(password)
    elif not getattr(row, "password_hash", None):
        raise UnprocessableError("A new user needs a password (at least 8 characters).")
    capacity = {}
    for channel in CHANNELS:
        value = opt_int(form.get(f"cap_{channel}"), f"Capacity for {channel}", lo=0, hi=50)
        if value is None and checked(form, "is_agent"):
            # A blank used to mean "takes none" without a word: say so, and ask for a 0.
            raise UnprocessableError(
                f"Capacity for {channel} is blank: enter how many {channel} conversations "
                "this agent can hold at once (0 for none)."
            )
        if value is not None:
            capacity[channel] = value
    for key, label in LIMITS.items():
        value = opt_int(form.get(f"cap_{key}"), label, lo=0, hi=50)
        if value is not None:
            capacity[key] = value
    extension = text(form, "extension", "Extension", max_len=32, required=False)
    if extension and not extension.isdigit():
        raise UnprocessableError("The extension must be digits only.")
    if extension:
        taken = (
            await db.exec(
                select(Agent.id).where(
                    Agent.extension == extension,
                    True if row.id is None else Agent.user_id != row.id,
                )
            )
        ).first()
        if taken is not None:
            raise UnprocessableError(f"Extension {extension} belongs to another agent.")
    sip_password = str(form.get("sip_password") or "")
    if sip_password and not _SIP_PASSWORD.fullmatch(sip_password):
        raise UnprocessableError(
            "The SIP password needs 8–128 characters: letters, digits and - _ . ~ ! * + = @ #"
        )
    lk["monitored_ids"] = [q.id for q in lk["queues"] if checked(form, f"monitor_{q.id}")]
    lk["extra"] = {
        "enabled": checked(form, "is_agent"),
        "capacity": capacity,
        "extension": extension or None,
        "sip_password": sip_password or None,
        "skills": skill_levels(form, lk["skills"], "skill_"),
    }
    return row


async def after_user(db: AsyncSession, row: User, lk: dict) -> None:
    if "monitored_ids" in lk:  # the queues a supervisor may monitor (web/live_calls.py)
        await db.exec(delete(SupervisorQueue).where(col(SupervisorQueue.user_id) == row.id))  # type: ignore[call-overload]
        for queue_id in lk["monitored_ids"]:
            db.add(SupervisorQueue(user_id=row.id, queue_id=queue_id))  # type: ignore[arg-type]
    profile = lk.get("extra")
    if profile is None:
        return
    agent = (await db.exec(select(Agent).where(Agent.user_id == row.id))).first()
    if not profile["enabled"]:
        return  # an agent profile is kept for history; it simply gets no new skills
    if agent is None:
        agent = Agent(user_id=row.id)  # type: ignore[arg-type]
    agent.capacity = profile["capacity"]
    agent.extension = profile["extension"]
    if profile["sip_password"]:  # empty keeps the phone's password
        agent.sip_password = profile["sip_password"]
    db.add(agent)
    await db.flush()
    await db.exec(delete(AgentSkill).where(col(AgentSkill.agent_id) == agent.id))  # type: ignore[call-overload]
    for skill_id, level in profile["skills"].items():
        db.add(AgentSkill(agent_id=agent.id, skill_id=skill_id, level=level))  # type: ignore[arg-type]


async def save_canned(
    db: AsyncSession, row: CannedResponse, form: FormMultiDict, lk: dict
) -> CannedResponse:
    shortcut = text(form, "shortcut", "Shortcut", max_len=32).lstrip("/").lower()
    if not canned.SHORTCUT.fullmatch(shortcut):
        raise UnprocessableError(
            "Shortcut: one word of lower-case letters, digits, '_' or '-' (at most 32)."
        )
    row.shortcut = shortcut
    row.title = text(form, "title", "Title", max_len=128)
    row.body = text(form, "body", "Text", max_len=5000)
    unknown = canned.unknown_variables(row.body)
    if unknown:
        known = ", ".join(f"{{{{{name}}}}}" for name in canned.VARIABLES)
        raise UnprocessableError(
            f"Unknown variable(s): {', '.join(f'{{{{{u}}}}}' for u in unknown)}. "
            f"The variables are {known}."
        )
    row.queue_id = opt_int(form.get("queue_id"), "Queue", lo=1)
    if row.queue_id is not None and row.queue_id not in lk["queue_names"]:
        raise UnprocessableError("That queue does not exist.")
    row.active = checked(form, "active")
    return row


def _preview(body: str, size: int = 80) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= size else flat[: size - 1] + "…"


def is_locked(user: User) -> bool:
    locked_until = as_utc(user.locked_until)
    return locked_until is not None and locked_until > utcnow()


def sign_in_state(user: User) -> str:
    """Locked (until when), wrong passwords in a row, or ok."""
    if is_locked(user):
        return f"locked until {as_utc(user.locked_until):%H:%M} UTC"  # type: ignore[str-format]
    if user.failed_logins:
        return f"{user.failed_logins} wrong password(s) in a row"
    return "ok"


def _join(values: Any) -> str:
    return ", ".join(str(v) for v in values)


SECTIONS: dict[str, Section] = {
    s.key: s
    for s in (
        Section(
            "queues",
            "Queues",
            Queue,
            [
                ("Name", lambda r, lk: r.name),
                ("Channels", lambda r, lk: _join(r.channels)),
                (
                    "Skills",
                    lambda r, lk: _join(
                        f"{lk['skill_names'].get(s, s)} ≥ {lvl}"
                        for s, lvl in lk["queue_skills"].get(r.id, {}).items()
                    ),
                ),
                ("Priority", lambda r, lk: r.priority),
                ("Strategy", lambda r, lk: r.strategy.replace("_", " ")),
                ("SLA", lambda r, lk: f"{r.sla_seconds} s ({r.sl_denominator.replace('_', ' ')})"),
                (
                    "Offer / wrap-up",
                    lambda r, lk: f"{r.offer_timeout_seconds} s / {r.wrapup_seconds} s",
                ),
                (
                    "Overflow",
                    lambda r, lk: (
                        f"→ {lk['queue_names'].get(r.overflow_queue_id, '?')} after "
                        f"{r.overflow_after_seconds} s"
                        if r.overflow_queue_id
                        else "—"
                    ),
                ),
                ("Hours", lambda r, lk: lk["hours_names"].get(r.hours_id, "always")),
                ("Active", lambda r, lk: "yes" if r.active else "no"),
            ],
            "admin/forms/queue.html",
            save_queue,
            Queue.name,
        ),
        Section(
            "skills",
            "Skills",
            Skill,
            [("Name", lambda r, lk: r.name), ("Description", lambda r, lk: r.description)],
            "admin/forms/skill.html",
            save_skill,
            Skill.name,
        ),
        Section(
            "agents",
            "Agents and users",
            User,
            [
                ("Username", lambda r, lk: r.username),
                ("Name", lambda r, lk: r.display_name),
                ("Role", lambda r, lk: r.role),
                (
                    "Skills",
                    lambda r, lk: _join(
                        f"{lk['skill_names'].get(s, s)} {lvl}"
                        for s, lvl in lk["agent_skills"]
                        .get(getattr(lk["agents"].get(r.id), "id", None), {})
                        .items()
                    ),
                ),
                (
                    "Capacity",
                    lambda r, lk: _join(
                        f"{k} {v}"
                        for k, v in getattr(lk["agents"].get(r.id), "capacity", {}).items()
                    ),
                ),
                ("Extension", lambda r, lk: getattr(lk["agents"].get(r.id), "extension", "") or ""),
                ("Active", lambda r, lk: "yes" if r.active else "no"),
                ("Sign-in", lambda r, lk: sign_in_state(r)),
            ],
            "admin/forms/user.html",
            save_user,
            User.username,
            deletable=False,
        ),
        Section(
            "dispositions",
            "Disposition codes",
            Disposition,
            [
                ("Code", lambda r, lk: r.code),
                ("Label", lambda r, lk: r.label),
                ("Active", lambda r, lk: "yes" if r.active else "no"),
            ],
            "admin/forms/code.html",
            save_code_row,
            Disposition.code,
        ),
        Section(
            "reasons",
            "Not-ready reasons",
            NotReadyReason,
            [
                ("Code", lambda r, lk: r.code),
                ("Label", lambda r, lk: r.label),
                ("Active", lambda r, lk: "yes" if r.active else "no"),
            ],
            "admin/forms/code.html",
            save_code_row,
            NotReadyReason.code,
        ),
        Section(
            "hours",
            "Business hours",
            BusinessHours,
            [
                ("Name", lambda r, lk: r.name),
                ("Time zone", lambda r, lk: r.timezone),
                (
                    "Weekly",
                    lambda r, lk: (
                        "; ".join(
                            f"{d} {', '.join(f'{a}-{b}' for a, b in r.weekly[d])}"
                            for d in DAYS
                            if d in r.weekly
                        )
                        or "closed"
                    ),
                ),
                ("Holidays", lambda r, lk: _join(r.holidays) or "—"),
            ],
            "admin/forms/hours.html",
            save_hours,
            BusinessHours.name,
        ),
        Section(
            "canned",
            "Canned responses",
            CannedResponse,
            [
                ("Shortcut", lambda r, lk: f"/{r.shortcut}"),
                ("Title", lambda r, lk: r.title),
                (
                    "Queue",
                    lambda r, lk: (
                        lk["queue_names"].get(r.queue_id, "?") if r.queue_id else "all queues"
                    ),
                ),
                ("Text", lambda r, lk: _preview(r.body)),
                ("Active", lambda r, lk: "yes" if r.active else "no"),
            ],
            "admin/forms/canned.html",
            save_canned,
            CannedResponse.shortcut,
        ),
        Section(
            "recording-policy",
            "Recording policy",
            Inbox,
            [
                ("Inbox", lambda r, lk: r.name),
                ("Channel", lambda r, lk: r.kind),
                ("After redaction", lambda r, lk: _policy(r)),
            ],
            "admin/forms/recording_policy.html",
            save_recording_policy,
            Inbox.name,
            deletable=False,
            creatable=False,
        ),
    )
}
AFTER_SAVE: dict[str, Callable[[AsyncSession, Any, dict], Awaitable[None]]] = {
    "queues": after_queue,
    "agents": after_user,
}


async def full_snapshot(db: AsyncSession, key: str, row: Any) -> dict[str, Any] | None:
    """The row, plus its child rows (skills, agent profile), as the audit's before/after."""
    snap = audit.snapshot(row)
    if snap is None:
        return None
    if key == "agents":
        snap.pop("password_hash", None)
        agent = (await db.exec(select(Agent).where(Agent.user_id == row.id))).first()
        if agent is not None:
            snap["agent"] = audit.snapshot(agent)
            if snap["agent"] is not None and snap["agent"].get("sip_password"):
                snap["agent"]["sip_password"] = "(set)"  # noqa: S105 (a marker: no secret in the audit log)
            snap["agent_skills"] = {
                str(s.skill_id): s.level
                for s in (
                    await db.exec(select(AgentSkill).where(AgentSkill.agent_id == agent.id))
                ).all()
            }
    if key == "agents":
        monitored = await db.exec(
            select(SupervisorQueue.queue_id).where(SupervisorQueue.user_id == row.id)
        )
        snap["monitored_queues"] = sorted(monitored.all())
    if key == "queues":
        snap["skills"] = {
            str(s.skill_id): s.min_level
            for s in (await db.exec(select(QueueSkill).where(QueueSkill.queue_id == row.id))).all()
        }
    return snap


def _section(key: str) -> Section:
    section = SECTIONS.get(key)
    if section is None:
        raise NotFoundException(f"No admin page called {key}.")
    return section


async def _section_context(db: AsyncSession, section: Section) -> dict[str, Any]:
    rows = list((await db.exec(select(section.model).order_by(section.order_by))).all())
    lk = await lookups(db)
    table = [(row, [fn(row, lk) for _label, fn in section.columns]) for row in rows]
    return {"section": section, "sections": SECTIONS, "table": table, "lk": lk}


# ---------------------------------------------------------------- handlers


@get("/")
async def admin_home() -> Redirect:
    return Redirect("/admin/queues")


@get("/{key:str}")
async def section_page(request: Request, key: FromPath[str]) -> Template:
    section = _section(key)
    async with services_of(request).sessionmaker() as db:
        ctx = await _section_context(db, section)
    if request.headers.get("hx-request") and not request.headers.get("hx-boosted"):
        return Template(template_name="admin/_section.html", context=ctx)
    return page("admin/page.html", request, **ctx)


@get("/{key:str}/new")
async def new_form(request: Request, key: FromPath[str]) -> Template:
    section = _section(key)
    if not section.creatable:
        raise Conflict(f"{section.title}: rows are made elsewhere; edit one instead.")
    async with services_of(request).sessionmaker() as db:
        lk = await lookups(db)
    return Template(
        template_name=section.form_template,
        context={"section": section, "row": None, "lk": lk, "agent": None, "levels": {}},
    )


@get("/{key:str}/{row_id:int}/edit")
async def edit_form(request: Request, key: FromPath[str], row_id: FromPath[int]) -> Template:
    section = _section(key)
    async with services_of(request).sessionmaker() as db:
        row = await db.get(section.model, row_id)
        if row is None:
            raise NotFoundException(f"{section.title}: #{row_id} does not exist.")
        lk = await lookups(db)
    agent = lk["agents"].get(row_id) if key == "agents" else None
    levels: dict[int, int] = {}
    if key == "queues":
        levels = lk["queue_skills"].get(row_id, {})
    elif agent is not None:
        levels = lk["agent_skills"].get(agent.id, {})
    return Template(
        template_name=section.form_template,
        context={"section": section, "row": row, "lk": lk, "agent": agent, "levels": levels},
    )


async def _config_changed(request: Request) -> None:
    """Routing caches queues, hours and skills briefly; every hub process drops its copy."""
    await services_of(request).bus.publish(ROUTING_TOPIC, "config")


async def _save(request: Request, key: str, row_id: int | None) -> Template:
    section = _section(key)
    me = user_of(request)
    form = await request.form()
    async with services_of(request).sessionmaker() as db:
        lk = await lookups(db)
        if row_id is None:
            if not section.creatable:
                raise Conflict(f"{section.title}: rows are made elsewhere; edit one instead.")
            row = section.model()
            before = None
        else:
            row = await db.get(section.model, row_id)
            if row is None:
                raise NotFoundException(f"{section.title}: #{row_id} does not exist.")
            before = await full_snapshot(db, key, row)
        if key == "agents" and row_id == me.id and not checked(form, "active"):
            raise UnprocessableError("You cannot deactivate yourself.")
        if key == "agents" and row_id == me.id and str(form.get("role")) != Role.ADMIN:
            raise UnprocessableError("You cannot remove your own admin role.")
        row = await section.save(db, row, form, lk)
        db.add(row)
        try:
            await db.flush()
            if key in AFTER_SAVE:
                await AFTER_SAVE[key](db, row, lk)
                await db.flush()
        except IntegrityError as exc:
            await db.rollback()
            raise Conflict(f"{section.title}: that name or code is already taken.") from exc
        audit.record(
            db,
            user_id=me.id,
            action="create" if before is None else "update",
            entity=key,
            entity_id=row.id,
            before=before,
            after=await full_snapshot(db, key, row),
        )
        await db.commit()
        ctx = await _section_context(db, section)
    await _config_changed(request)
    ctx["saved"] = f"Saved {section.title.lower()} #{row.id}."
    return Template(template_name="admin/_section.html", context=ctx)


@post("/{key:str}", status_code=200)
async def create(request: Request, key: FromPath[str]) -> Template:
    return await _save(request, key, None)


@post("/{key:str}/{row_id:int}", status_code=200)
async def update(request: Request, key: FromPath[str], row_id: FromPath[int]) -> Template:
    return await _save(request, key, row_id)


@post("/{key:str}/{row_id:int}/delete", status_code=200)
async def remove(request: Request, key: FromPath[str], row_id: FromPath[int]) -> Template:
    section = _section(key)
    if not section.deletable:
        raise Conflict(f"{section.title} cannot be deleted; deactivate them instead.")
    me = user_of(request)
    confirmed = (await request.form()).get("confirm") == "1"
    async with services_of(request).sessionmaker() as db:
        row = await db.get(section.model, row_id)
        if row is None:
            raise NotFoundException(f"{section.title}: #{row_id} does not exist.")
        usage = await uses_of(db, key, row_id)
        label = f"“{getattr(row, section.order_by.key)}”"
        if usage.blocking:
            raise Conflict(
                f"Cannot delete {label}: it is {'; '.join(usage.blocking)}. "
                "Deactivate it instead, or change those first."
            )
        if usage.removable and not confirmed:
            ctx = await _section_context(db, section)
            ctx["confirm"] = {"row_id": row_id, "label": label, "uses": usage.removable}
            return Template(template_name="admin/_section.html", context=ctx)
        before = await full_snapshot(db, key, row)
        try:
            if key == "queues":
                await db.exec(delete(QueueSkill).where(col(QueueSkill.queue_id) == row_id))  # type: ignore[call-overload]
                await db.exec(
                    delete(CannedResponse).where(col(CannedResponse.queue_id) == row_id)  # type: ignore[call-overload]
                )
            if key == "skills":
                for child in (QueueSkill, AgentSkill):
                    await db.exec(delete(child).where(col(child.skill_id) == row_id))  # type: ignore[call-overload, attr-defined]
            await db.delete(row)
            audit.record(
                db, user_id=me.id, action="delete", entity=key, entity_id=row_id, before=before
            )
            await db.commit()
        except IntegrityError as exc:
            await db.rollback()
            raise Conflict(
                f"{section.title}: #{row_id} is still in use; deactivate it instead."
            ) from exc
        ctx = await _section_context(db, section)
    await _config_changed(request)
    ctx["saved"] = f"Deleted {section.title.lower()} #{row_id}."
    return Template(template_name="admin/_section.html", context=ctx)


@post("/{key:str}/{row_id:int}/unlock", status_code=200)
async def unlock(request: Request, key: FromPath[str], row_id: FromPath[int]) -> Template:
    """Lift a login lock (and the wrong-password count) early; audited."""
    if key != "agents":
        raise NotFoundException("Only users can be unlocked.")
    me = user_of(request)
    section = _section(key)
    async with services_of(request).sessionmaker() as db:
        user = await db.get(User, row_id)
        if user is None:
            raise NotFoundException(f"Agents and users: #{row_id} does not exist.")
        before = {
            "locked_until": user.locked_until and as_utc(user.locked_until).isoformat(),  # type: ignore[union-attr]
            "failed_logins": user.failed_logins,
        }
        user.locked_until, user.failed_logins, user.last_failed_login_at = None, 0, None
        db.add(user)
        audit.record(
            db,
            user_id=me.id,
            action="unlock",
            entity="agents",
            entity_id=row_id,
            before=before,
            after={"locked_until": None, "failed_logins": 0},
        )
        await db.commit()
        ctx = await _section_context(db, section)
    ctx["saved"] = f"Unlocked {user.username}: they can sign in again."
    return Template(template_name="admin/_section.html", context=ctx)


admin_router = Router(
    path="/admin",
    guards=[role_guard(Role.ADMIN)],
    route_handlers=[admin_home, section_page, new_form, edit_form, create, update, remove, unlock],
)

route_handlers: list = [admin_router]
