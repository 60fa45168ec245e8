"""Report rollups and saved reports: what ``hub.reports`` writes and reads.

Rollups are sums per 15-minute interval in UTC, so any time zone's hours, days, weeks and
months (half-hour and quarter-hour offsets and daylight-saving days too) are unions of
whole intervals. They are derived data: ``hub.reports.rollups`` rebuilds any interval from
the raw ``InteractionEvent`` rows, and a test checks that they agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index
from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field, timestamp_field

WAIT_BINS = (10, 20, 30, 60, 120, 300)  # seconds: upper bounds; a last bin holds the rest


def _bucket_field() -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class RollupFigures(SQLModel):
    """The additive figures a rollup row holds (columns of both rollup tables)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    voicemail: int = 0
    answered_in_sl: int = 0
    sl_counted: int = 0  # the denominator, by the queue's rule (hub.service_level)
    wait_answered_seconds: float = 0.0  # sum of waits of answered contacts (ASA)
    wait_max_seconds: float = 0.0  # longest wait, answered or abandoned
    handled: int = 0  # agent segments finished (wrap-up ended, closed or transferred)
    talk_seconds: float = 0.0
    hold_seconds: float = 0.0
    wrap_seconds: float = 0.0
    transfers: int = 0
    outbound: int = 0  # contacts an agent started (click to dial)
    self_service: int = 0  # contacts that entered the IVR or bot
    contained: int = 0  # of those, finished without reaching an agent or a queue
    callbacks_requested: int = 0  # callers who left a number to be called back
    callbacks_completed: int = 0  # of those, called back and connected
    # wait-time histogram (WAIT_BINS, then the rest): answered and abandoned contacts
    ans_w0: int = 0
    ans_w1: int = 0
    ans_w2: int = 0
    ans_w3: int = 0
    ans_w4: int = 0
    ans_w5: int = 0
    ans_w6: int = 0
    ab_w0: int = 0
    ab_w1: int = 0
    ab_w2: int = 0
    ab_w3: int = 0
    ab_w4: int = 0
    ab_w5: int = 0
    ab_w6: int = 0


class ReportRollup(RollupFigures, table=True):
    """Additive contact and handle figures of one 15-minute interval (UTC) for one
    (queue, channel, inbox, answering agent). Contacts are counted in the interval they
    entered the queue; ``agent_id`` is None for contacts no agent answered."""

    __table_args__ = (Index("ix_reportrollup_bucket_queue", "bucket", "queue_id"),)
    id: int | None = Field(default=None, primary_key=True)
    bucket: datetime = _bucket_field()
    queue_id: int | None = None
    channel: str = Field(max_length=16)
    inbox_id: int | None = None
    agent_id: int | None = None


class ReportRollupQueue(RollupFigures, table=True):
    """``ReportRollup`` summed over agents: what reports by queue, channel or inbox read
    (several times fewer rows than with the agent in the key)."""

    __table_args__ = (Index("ix_reportrollupqueue_bucket_queue", "bucket", "queue_id"),)
    id: int | None = Field(default=None, primary_key=True)
    bucket: datetime = _bucket_field()
    queue_id: int | None = None
    channel: str = Field(max_length=16)
    inbox_id: int | None = None


class ReportRepeat(SQLModel, table=True):
    """Contacts created in one 15-minute interval (UTC), and how many of them came from a
    contact who had another interaction, on any channel, within ``days`` before."""

    __table_args__ = (Index("ix_reportrepeat_bucket_days", "bucket", "days"),)
    id: int | None = Field(default=None, primary_key=True)
    bucket: datetime = _bucket_field()
    days: int
    queue_id: int | None = None
    channel: str = Field(max_length=16)
    inbox_id: int | None = None
    contacts: int = 0
    repeats: int = 0


class ReportSchedule(SQLModel, table=True):
    """A saved report e-mailed as an attachment on a schedule (``hub.reports.delivery``)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    params: dict[str, Any] = json_field()  # the report form's fields
    email_to: str = Field(max_length=300)
    every: str = Field(default="daily", max_length=8)  # daily | weekly
    file_format: str = Field(default="xlsx", max_length=4)  # csv | xlsx
    next_run_at: datetime = _bucket_field()
    last_sent_at: datetime | None = timestamp_field()
    created_by: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = created_at_field()
