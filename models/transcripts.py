"""Transcripts of calls and voicemail, per speaker, for QA search and playback.

A ``Transcript`` is one recording's transcription (a job of the job runner fills it); its
``TranscriptSegment`` rows are what QA reads, searches and redacts. ``text`` is always the
redacted text: only redacted text is indexed or shown. ``original_text`` is kept only when
the inbox's policy keeps originals, and only a role the admin names may read it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field, timestamp_field


class TranscriptStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Speaker(StrEnum):
    CUSTOMER = "customer"  # the recording's left channel
    IVR = "ivr"  # right channel while the dialog spoke
    AGENT = "agent"  # right channel while an agent leg was up (``agent_id`` names them)
    SUPERVISOR = "supervisor"
    EXTERNAL = "external"


class Transcript(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    recording_id: int | None = Field(default=None, foreign_key="recording.id", unique=True)
    status: str = Field(default=TranscriptStatus.QUEUED, max_length=16, index=True)
    error: str | None = Field(default=None, max_length=500)  # why it failed
    language: str = Field(default="en", max_length=16)
    metrics: dict[str, Any] = json_field()  # talk share, silences, overtalk, sentiment…
    created_at: datetime = created_at_field()
    finished_at: datetime | None = timestamp_field()


class TranscriptSegment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    transcript_id: int = Field(foreign_key="transcript.id", index=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    speaker: str = Field(max_length=16)  # a Speaker
    agent_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    start_ms: int
    end_ms: int
    text: str = Field(sa_column=Column(Text, nullable=False))  # redacted
    original_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    words: list[dict[str, Any]] = json_field(default_factory=list)  # {w, start_ms, end_ms}
    sentiment: float | None = None  # -1 … 1
