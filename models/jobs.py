"""Background jobs: rows in the hub's own database, so a job is never lost.

A job is written in the same transaction as whatever creates it (a voice note, a
recording, a callback request): if that transaction rolls back, the job never existed. The
runner (``hub.jobs``) claims due jobs, runs the handler registered for their kind, and
records the outcome here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field, timestamp_field


class JobState(StrEnum):
    PENDING = "pending"  # waiting for ``run_at``
    RUNNING = "running"  # claimed by ``locked_by`` until ``locked_until`` (the lease)
    DONE = "done"
    FAILED = "failed"  # out of attempts; ``last_error`` says why


class Job(SQLModel, table=True):
    """One unit of background work of a registered ``kind``.

    ``locked_by`` is the claim token of the runner that holds the job and ``locked_until``
    its lease: a job whose lease ran out (its process died) is claimed again, as a further
    attempt.
    """

    # The claim scans due jobs in order: (state, run_at) keeps it an index range scan however
    # many finished jobs the table holds.
    __table_args__ = (Index("ix_job_state_run_at", "state", "run_at"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64, index=True)
    payload: dict[str, Any] = json_field()
    state: str = Field(default=JobState.PENDING, max_length=16)
    run_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    attempts: int = 0  # attempts started so far, the running one included
    max_attempts: int = 5
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    locked_by: str | None = Field(default=None, max_length=64)
    locked_until: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    finished_at: datetime | None = timestamp_field()
