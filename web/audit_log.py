"""The audit log, for people: names instead of ids, a readable diff, filters by date, user
and kind, paging, CSV export, and restoring a configuration change to its previous value
(the restore is audited too)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template
from sqlalchemy import DateTime
from sqlmodel import col, delete, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.attachments import content_disposition
from models import (
    Agent,
    AgentSkill,
    AuditEntry,
    Contact,
    QueueSkill,
    Role,
    User,
)
from web.admin import SECTIONS, Conflict, _config_changed, full_snapshot
from web.common import UnprocessableError, page, role_guard, services_of, user_of

PER_PAGE = 50
CSV_LIMIT = 50_000
# Columns a restore never writes back: identity, secrets, and state the hub keeps itself.
NOT_RESTORED = {"id", "user_id", "password_hash", "created_at", "failed_logins"}
AGENT_RUNTIME = {"presence", "presence_reason", "presence_since", "idle_since", "last_offer_at"}


@dataclass(frozen=True)
class AuditFilter:
    since: date | None = None
    until: date | None = None
    user_id: int | None = None
    entity: str | None = None
    page: int = 1

    @classmethod
    def from_query(cls, params: Any) -> AuditFilter:
        def day(name: str) -> date | None:
            raw = (params.get(name) or "").strip()
            if not raw:
                return None
            try:
                return date.fromisoformat(raw)
            except ValueError:
                raise UnprocessableError(f"{name}: use a date like 2026-12-02.") from None

        def number(name: str) -> int | None:
            raw = (params.get(name) or "").strip()
            if not raw:
                return None
            if not raw.isdigit():
                raise UnprocessableError(f"{name} must be a whole number.")
            return int(raw)

        return cls(
            since=day("since"),
            until=day("until"),
            user_id=number("user"),
            entity=(params.get("entity") or "").strip() or None,
            page=max(1, number("page") or 1),
        )

    def query_string(self, **override: Any) -> str:
        values = {
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "user": self.user_id or "",
            "entity": self.entity or "",
            "page": self.page,
        } | override
        return "&".join(f"{k}={v}" for k, v in values.items() if v not in ("", None))

    def where(self) -> list[Any]:
        clauses: list[Any] = []
        if self.since:
            clauses.append(AuditEntry.at >= datetime.combine(self.since, time(), UTC))
        if self.until:
            end = datetime.combine(self.until + timedelta(days=1), time(), UTC)
            clauses.append(AuditEntry.at < end)
        if self.user_id is not None:
            clauses.append(AuditEntry.user_id == self.user_id)
        if self.entity:
            clauses.append(AuditEntry.entity == self.entity)
        return clauses


def changed_fields(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> list[tuple[str, Any, Any]] | None:
    """For an update, only what changed (old → new); None means show both values whole."""
    if not before or not after:
        return None
    return [
        (key, before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


def readable(value: Any) -> str:
    """A value as a person reads it: lists joined, maps as ``key value``, no JSON quotes."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(readable(v) for v in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{k} {readable(v)}" for k, v in value.items()) or "—"
    return str(value)


def _label(snapshot: dict[str, Any] | None) -> str | None:
    if not snapshot:
        return None
    for key in ("name", "username", "code", "display_name"):
        if snapshot.get(key):
            return str(snapshot[key])
    return None


async def _entity_names(db: AsyncSession, entries: list[AuditEntry]) -> dict[int, str]:
    """entry id → what it was about, by name: the row's current name, else the name it had."""
    names: dict[int, str] = {}
    wanted: dict[str, set[int]] = {}
    for entry in entries:
        if entry.entity_id and entry.entity_id.isdigit():
            wanted.setdefault(entry.entity, set()).add(int(entry.entity_id))
    current: dict[tuple[str, int], str] = {}
    models = {key: section.model for key, section in SECTIONS.items()} | {"contact": Contact}
    for entity, ids in wanted.items():
        model = models.get(entity)
        if model is None:
            continue
        for row in (await db.exec(select(model).where(col(model.id).in_(ids)))).all():  # type: ignore[attr-defined]
            label = _label(row.model_dump())
            if label:
                current[(entity, row.id)] = label  # type: ignore[attr-defined]
    for entry in entries:
        key = (entry.entity, int(entry.entity_id)) if (entry.entity_id or "").isdigit() else None
        name = current.get(key) if key else None  # type: ignore[arg-type]
        name = name or _label(entry.after) or _label(entry.before)
        title = SECTIONS[entry.entity].title if entry.entity in SECTIONS else entry.entity
        names[entry.id] = f"{title}: {name}" if name else f"{title} #{entry.entity_id or '—'}"  # type: ignore[index]
    return names


async def _user_names(db: AsyncSession) -> dict[int, str]:
    return {
        u.id: f"{u.display_name} ({u.username})"
        for u in (await db.exec(select(User))).all()
        if u.id is not None
    }


def _restorable(entry: AuditEntry) -> bool:
    return entry.entity in SECTIONS and entry.action in ("update", "delete") and bool(entry.before)


@get("/")
async def audit_page(request: Request) -> Template:
    wanted = AuditFilter.from_query(request.query_params)
    async with services_of(request).sessionmaker() as db:
        total = (
            await db.exec(select(func.count()).select_from(AuditEntry).where(*wanted.where()))
        ).one()
        entries = list(
            (
                await db.exec(
                    select(AuditEntry)
                    .where(*wanted.where())
                    .order_by(col(AuditEntry.id).desc())
                    .offset((wanted.page - 1) * PER_PAGE)
                    .limit(PER_PAGE)
                )
            ).all()
        )
        users = await _user_names(db)
        names = await _entity_names(db, entries)
        entities = sorted(
            {e for e in (await db.exec(select(AuditEntry.entity).distinct())).all() if e}
        )
    pages = max(1, -(-total // PER_PAGE))
    return page(
        "admin/audit.html",
        request,
        entries=[
            (e, changed_fields(e.before, e.after), names[e.id], _restorable(e))  # type: ignore[index]
            for e in entries
        ],
        readable=readable,
        users=users,
        entities=entities,
        sections=SECTIONS,
        section=None,
        wanted=wanted,
        total=total,
        pages=pages,
        saved=request.query_params.get("saved"),
    )


def _csv_cell(value: str) -> str:
    """Cells a spreadsheet would run as formulas are quoted (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@get("/export.csv")
async def audit_csv(request: Request) -> Response:
    wanted = AuditFilter.from_query(request.query_params)
    async with services_of(request).sessionmaker() as db:
        entries = list(
            (
                await db.exec(
                    select(AuditEntry)
                    .where(*wanted.where())
                    .order_by(col(AuditEntry.id))
                    .limit(CSV_LIMIT)
                )
            ).all()
        )
        users = await _user_names(db)
        names = await _entity_names(db, entries)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "when (UTC)", "who", "action", "what", "field", "before", "after"])
    for e in entries:
        who = users.get(e.user_id, "system") if e.user_id else "system"
        head = [str(e.id), e.at.strftime("%Y-%m-%d %H:%M:%S"), who, e.action, names[e.id]]  # type: ignore[index]
        changes = changed_fields(e.before, e.after)
        if changes is None:
            rows = [
                [
                    "",
                    json.dumps(e.before) if e.before else "",
                    json.dumps(e.after) if e.after else "",
                ]
            ]
        else:
            rows = [[key, readable(old), readable(new)] for key, old, new in changes]
        for row in rows or [["", "", ""]]:
            writer.writerow([_csv_cell(cell) for cell in head + row])
    return Response(
        content=out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": content_disposition("attachment", "audit-log.csv")},
    )


@post("/{entry_id:int}/restore", status_code=303)
async def restore(request: Request, entry_id: FromPath[int]) -> Redirect:
    """Put a configuration row back as it was before this entry's change (re-creating a
    deleted row under its old id), with its child rows (queue skills, agent profile)."""
    me = user_of(request)
    async with services_of(request).sessionmaker() as db:
        entry = await db.get(AuditEntry, entry_id)
        if entry is None:
            raise NotFoundException(f"Audit entry #{entry_id} does not exist.")
        if not _restorable(entry):
            raise Conflict(
                "Only an update or a deletion of a configuration row can be restored; "
                "a created row can be edited or deleted instead."
            )
        section = SECTIONS[entry.entity]
        before = dict(entry.before or {})
        row_id = int(entry.entity_id or 0)
        row = await db.get(section.model, row_id)
        current = await full_snapshot(db, entry.entity, row) if row is not None else None
        if row is None:
            row = section.model(id=row_id)
        columns = section.model.__table__.columns  # type: ignore[attr-defined]
        for name, value in before.items():
            if name in NOT_RESTORED or name not in columns:
                continue
            if isinstance(columns[name].type, DateTime):
                continue
            setattr(row, name, value)
        db.add(row)
        await db.flush()
        if entry.entity == "queues" and "skills" in before:
            await db.exec(delete(QueueSkill).where(col(QueueSkill.queue_id) == row_id))  # type: ignore[call-overload]
            for skill_id, level in before["skills"].items():
                db.add(QueueSkill(queue_id=row_id, skill_id=int(skill_id), min_level=level))
        if entry.entity == "agents" and before.get("agent"):
            await _restore_agent(db, row_id, before)
        after = await full_snapshot(db, entry.entity, row)
        audit.record(
            db,
            user_id=me.id,
            action=f"restore #{entry.id}",
            entity=entry.entity,
            entity_id=row_id,
            before=current,
            after=after,
        )
        await db.commit()
    await _config_changed(request)
    label = _label(after) or f"#{row_id}"
    saved = f"Restored {section.title.lower()} {label} to its value before change #{entry.id}."
    return Redirect(f"/admin/audit?{urlencode({'saved': saved})}", status_code=303)


async def _restore_agent(db: AsyncSession, user_id: int, before: dict[str, Any]) -> None:
    profile = before["agent"]
    agent = (await db.exec(select(Agent).where(Agent.user_id == user_id))).first()
    if agent is None:
        agent = Agent(user_id=user_id)
    for name, value in profile.items():
        if name in NOT_RESTORED or name in AGENT_RUNTIME or name not in Agent.model_fields:
            continue
        setattr(agent, name, value)
    db.add(agent)
    await db.flush()
    await db.exec(delete(AgentSkill).where(col(AgentSkill.agent_id) == agent.id))  # type: ignore[call-overload]
    for skill_id, level in (before.get("agent_skills") or {}).items():
        db.add(AgentSkill(agent_id=agent.id, skill_id=int(skill_id), level=level))  # type: ignore[arg-type]


route_handlers: list = [
    Router(
        path="/admin/audit",
        guards=[role_guard(Role.ADMIN)],
        route_handlers=[audit_page, audit_csv, restore],
    )
]
