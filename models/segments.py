"""Who handled which part of an interaction, and every call control on its timeline.

One interaction per contact: a transfer, a consult, a conference or a supervisor joining
keeps the interaction and adds rows here. ``Interaction.agent_id`` keeps meaning "the
current agent"; reports read segments for everyone who took part.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field, SQLModel, UniqueConstraint

from models.base import created_at_field, json_field, timestamp_field


class SegmentRole(StrEnum):
    AGENT = "agent"  # the agent who has the customer
    CONSULT = "consult"  # an agent called while the customer waits on hold
    CONFERENCE = "conference"  # a third party added to the call
    SUPERVISOR = "supervisor"  # listen, whisper or barge


class ControlKind(StrEnum):
    HOLD = "hold"
    RESUME = "resume"
    REMOTE_HOLD = "remote_hold"  # the agent's own phone held by re-INVITE
    REMOTE_RESUME = "remote_resume"
    MUTE = "mute"
    UNMUTE = "unmute"
    RECORDING_PAUSE = "recording_pause"
    RECORDING_RESUME = "recording_resume"
    DTMF = "dtmf"
    TRANSFER = "transfer"
    CONSULT = "consult"  # the caller on hold while the agent calls another agent
    CONSULT_CANCEL = "consult_cancel"
    CONSULT_COMPLETE = "consult_complete"  # the other agent keeps the caller
    CONFERENCE = "conference"
    DROP = "drop"  # a conferenced party leaves
    SUPERVISOR_JOIN = "supervisor_join"
    SUPERVISOR_MODE = "supervisor_mode"
    SUPERVISOR_LEAVE = "supervisor_leave"
    FORCE_RELEASE = "force_release"
    SELF_SERVICE = "self_service"  # the agent sent the caller to a dialog node
    SELF_SERVICE_RETURN = "self_service_return"  # the dialog's result, back to the agent
    SURVEY = "survey"  # the agent hung up: the caller went on to the queue's survey


class InteractionSegment(SQLModel, table=True):
    """One person's part of an interaction, from joining to leaving."""

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    role: str = Field(max_length=16)  # a SegmentRole
    mode: str | None = Field(default=None, max_length=16)  # supervisors: listen/whisper/barge
    leg_id: int | None = Field(default=None, foreign_key="callleg.id")
    started_at: datetime = created_at_field()
    ended_at: datetime | None = timestamp_field(index=True)
    end_reason: str | None = Field(default=None, max_length=64)


class ControlEvent(SQLModel, table=True):
    """A timestamped call control (hold, transfer, recording pause, intervention...).

    ``recording_offset`` is where on the recording's timeline it happened (seconds of
    audio written so far), so a paused stretch can be shown against the playback.
    """

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    segment_id: int | None = Field(default=None, foreign_key="interactionsegment.id")
    kind: str = Field(max_length=24)  # a ControlKind
    user_id: int | None = Field(default=None, foreign_key="user.id")
    at: datetime = created_at_field()
    recording_offset: float | None = None
    detail: dict[str, Any] = json_field()


class SupervisorQueue(SQLModel, table=True):
    """A queue a supervisor may monitor. A supervisor with no rows may monitor every queue."""

    __table_args__ = (UniqueConstraint("user_id", "queue_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    queue_id: int = Field(foreign_key="queue.id")
