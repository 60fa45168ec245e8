"""Calls: the SIP legs of a voice interaction and their recordings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field, timestamp_field


class CallLegKind(StrEnum):
    CUSTOMER = "customer"  # the caller (or the called customer of an outbound call)
    AGENT = "agent"  # the agent's device: a registered SIP phone
    SUPERVISOR = "supervisor"  # listen, whisper, barge
    EXTERNAL = "external"  # a transfer or forward to an outside number


class CallLeg(SQLModel, table=True):
    """One SIP dialog of a call, with its timestamps and RTP counters (RFC 3550).

    ``node`` is the hub process that carries the leg's media: a leg left open by a process
    that died is closed as dropped when that process starts again.
    """

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    kind: str = Field(max_length=16)  # a CallLegKind
    direction: str = Field(max_length=8)  # "inbound" | "outbound"
    sip_call_id: str = Field(max_length=255, index=True)
    remote_uri: str = Field(default="", max_length=300)
    agent_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    node: str = Field(default="", max_length=64, index=True)
    started_at: datetime = created_at_field()
    answered_at: datetime | None = timestamp_field()
    ended_at: datetime | None = timestamp_field(index=True)
    end_reason: str | None = Field(default=None, max_length=64)
    rtp: dict[str, Any] = json_field()


class Recording(SQLModel, table=True):
    """A stereo WAV of a call: the caller on the left, the hub's side on the right."""

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    path: str = Field(max_length=500)  # relative to the hub's var directory
    duration_seconds: float = 0.0
    legs: list[int] = json_field(default_factory=list)  # CallLeg ids heard in it
    started_at: datetime = created_at_field()
    ended_at: datetime | None = timestamp_field()
    complete: bool = False  # False while recording, or repaired after a crash
    # After redaction ``path`` is the redacted copy; ``original_path`` is the recording as
    # made, kept only when the inbox's policy keeps originals.
    redacted: bool = False
    original_path: str | None = Field(default=None, max_length=500)
    deleted_at: datetime | None = timestamp_field(index=True)  # audio removed (retention)
