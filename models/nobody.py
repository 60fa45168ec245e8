"""When nobody can answer: voicemail, queued callbacks and the calls that go out for them.

``Voicemail`` is a message a caller left (its audio is a ``Recording``, its words a
``Transcript``); ``CallbackRequest`` keeps a caller's place while the hub calls them back,
with one ``CallbackAttempt`` per try (reports count them); ``CallOut`` is every call the
hub tried to place through the trunk, allowed or refused, so daily caps count them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from models.base import created_at_field, timestamp_field


class Voicemail(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    recording_id: int | None = Field(default=None, foreign_key="recording.id")
    inbox_id: int = Field(foreign_key="inbox.id", index=True)
    queue_id: int | None = Field(default=None, foreign_key="queue.id")
    reason: str = Field(max_length=32)  # max_wait, closed, dialog, no_agents
    ended_by: str = Field(default="", max_length=16)  # key, silence, max_length, hangup
    duration_seconds: float = 0.0
    created_at: datetime = created_at_field()


class CallbackState(StrEnum):
    WAITING = "waiting"  # queued (its place kept), or waiting for the next try
    DIALING = "dialing"  # an agent accepted: the hub is calling
    CONNECTED = "connected"
    FAILED = "failed"  # no answer after the last try
    REFUSED = "refused"  # the number is not allowed out


class CallbackRequest(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", unique=True)
    queue_id: int | None = Field(default=None, foreign_key="queue.id")
    number: str = Field(max_length=32)  # E.164
    state: str = Field(default=CallbackState.WAITING, max_length=16, index=True)
    tries: int = 0
    max_tries: int = 3
    created_at: datetime = created_at_field()
    finished_at: datetime | None = timestamp_field()


class CallbackAttempt(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="callbackrequest.id", index=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    attempt: int
    started_at: datetime = created_at_field()
    ended_at: datetime | None = timestamp_field()
    outcome: str = Field(default="", max_length=64)  # connected, no answer, busy, …


class CallOut(SQLModel, table=True):
    """One call the hub asked the trunk for (``kind``: callback, forward, dial, transfer)."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    number: str = Field(max_length=32)
    inbox_id: int | None = Field(default=None, foreign_key="inbox.id", index=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    interaction_id: int | None = Field(default=None, foreign_key="interaction.id")
    allowed: bool = True
    reason: str = Field(default="", max_length=200)
    at: datetime = created_at_field()
