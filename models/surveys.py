"""Survey answers, one row per question put to a contact, so reports can count drop-off.

A row is written when a dialog session ends (``hub.surveys.store_answers``): the IVR on a
call, a text conversation's bot, or the post-call survey. A question asked but never
answered is a row with ``answered=False`` and no value, which is how the statistics page
tells "reached" from "answered". The queue and agent are the interaction's at the time the
answers were stored; one row per (interaction, survey, question) makes a retried job harmless.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, SQLModel, UniqueConstraint

from models.base import timestamp_field


class SurveyAnswer(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("interaction_id", "survey", "question"),)
    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    dialog: str = Field(max_length=64)  # the dialog's name
    dialog_version: int | None = None  # its version number, when the hub stored it
    survey: str = Field(max_length=64, index=True)  # the survey node's name
    question: str = Field(max_length=64)
    position: int = 0  # the order it was asked in, within this interaction
    kind: str = Field(max_length=16)  # scale, choice, yes_no, text
    scale_min: int | None = None  # for kind scale: 1..5 is CSAT, 0..10 is NPS
    scale_max: int | None = None
    answered: bool = False
    value_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    value_number: float | None = None  # scale values; yes_no as 1/0
    channel: str = Field(max_length=16)
    queue_id: int | None = Field(default=None, foreign_key="queue.id", index=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    asked_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
    answered_at: datetime | None = timestamp_field()
