"""Canned responses: replies that admins write once and agents insert with ``/shortcut``."""

from __future__ import annotations

from sqlalchemy import Column, Index, Text, text
from sqlmodel import Field, SQLModel, UniqueConstraint


class CannedResponse(SQLModel, table=True):
    """One canned reply, for one queue's conversations or (``queue_id`` empty) for all.

    ``body`` may hold variables such as ``{{customer.name}}``; ``hub.canned`` fills in the
    known ones and never evaluates the text as a template. A shortcut is unique per queue,
    and among the global ones (a partial index: NULLs never clash in a plain unique key).
    """

    __table_args__ = (
        UniqueConstraint("queue_id", "shortcut"),
        Index(
            "uq_cannedresponse_global_shortcut",
            "shortcut",
            unique=True,
            sqlite_where=text("queue_id IS NULL"),
            postgresql_where=text("queue_id IS NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    queue_id: int | None = Field(default=None, foreign_key="queue.id", index=True)
    shortcut: str = Field(max_length=32)
    title: str = Field(max_length=128)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    active: bool = True
