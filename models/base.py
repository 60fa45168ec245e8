"""Column helpers shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def created_at_field() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


def timestamp_field(*, index: bool = False) -> Any:
    """A nullable timezone-aware timestamp (state transitions are stamped; reports read them)."""
    return Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True, index=index)
    )


def json_field(default_factory: Any = dict, *, nullable: bool = False) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=nullable))
