"""Audit trail: every admin and supervisor action, with the value before it."""

from __future__ import annotations

from typing import Any

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from models import AuditEntry


def snapshot(row: SQLModel | None) -> dict[str, Any] | None:
    """A JSON-able copy of a row, for ``before``/``after``."""
    if row is None:
        return None
    return row.model_dump(mode="json")


def record(
    db: AsyncSession,
    *,
    user_id: int | None,
    action: str,
    entity: str,
    entity_id: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit row to the caller's transaction (it commits with the change itself)."""
    entry = AuditEntry(
        user_id=user_id,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        before=before,
        after=after,
    )
    db.add(entry)
    return entry
