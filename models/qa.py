"""QA: the search index of redacted text, categories (rules) and the tags they set.

``QaDoc`` is one searchable piece of a conversation: a transcript segment or a message of a
text channel, its text already redacted. The full-text index over it is dialect-specific
(an FTS5 table kept by triggers on SQLite, a GIN index on PostgreSQL), made by the migration
and named in ``hub.qa.search.INDEX_OBJECTS``.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, SQLModel, UniqueConstraint

from models.base import created_at_field, json_field


class DocSource(StrEnum):
    SEGMENT = "segment"  # a TranscriptSegment
    MESSAGE = "message"  # a Message of a text channel


class QaDoc(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("source", "source_id"),)
    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    source: str = Field(max_length=8)  # a DocSource
    source_id: int
    speaker: str = Field(max_length=16)  # customer, agent, ivr, supervisor, external, system
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    start_ms: int | None = None  # a segment's offset into the recording
    text: str = Field(sa_column=Column(Text, nullable=False))  # redacted


class QaDocDay(SQLModel, table=True):
    """The lowest and highest ``QaDoc`` id among one UTC day's documents: a zone map.

    Documents are indexed about when they happen, so a date filter becomes an id range that
    the full-text index walks directly (FTS5 rowid range; the primary key on PostgreSQL)
    instead of rejecting every newer match one by one. Kept by database triggers on insert
    (migration 0022); ranges only widen, so an old day indexed late makes its own range wide
    (slower, never wrong), and deletes leave it a superset."""

    day: date = Field(primary_key=True)
    min_id: int
    max_id: int


class Category(SQLModel, table=True):
    """An admin's rule; ``rule`` is the parsed form of ``hub.qa.categories.CategoryRule``."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    description: str = Field(default="", max_length=300)
    rule: dict[str, Any] = json_field()
    active: bool = True
    created_at: datetime = created_at_field()


class InteractionCategory(SQLModel, table=True):
    """A category's tag on an interaction, with what matched (segment ids, times)."""

    __table_args__ = (UniqueConstraint("interaction_id", "category_id"),)
    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    category_id: int = Field(foreign_key="category.id", index=True)
    evidence: dict[str, Any] = json_field()
    tagged_at: datetime = created_at_field()


class EvaluationForm(SQLModel, table=True):
    """A scorecard: ``definition`` is checked by ``hub.qa.scorecards.validate_form``."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    definition: dict[str, Any] = json_field()
    active: bool = True
    created_at: datetime = created_at_field()


class EvaluationStatus(StrEnum):
    SUBMITTED = "submitted"
    ACKNOWLEDGED = "acknowledged"  # the agent read it and agrees
    DISPUTED = "disputed"  # the agent disagrees, with a reason


class Evaluation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    form_id: int = Field(foreign_key="evaluationform.id", index=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    queue_id: int | None = Field(default=None, foreign_key="queue.id")
    evaluator_id: int = Field(foreign_key="user.id")
    # question id → {"value": "yes"|"no"|"na"|number, "auto": value or None, "overridden": bool}
    answers: dict[str, Any] = json_field()
    comments: list[dict[str, Any]] = json_field(default_factory=list)  # {at_ms, text}
    score: float = 0.0  # 0…100, 0 when a critical question failed
    failed_critical: bool = False
    status: str = Field(default=EvaluationStatus.SUBMITTED, max_length=16)
    dispute_reason: str = Field(default="", max_length=1000)
    created_at: datetime = created_at_field()
    answered_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
