"""People who log in: agents, supervisors, QA staff and admins."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel, UniqueConstraint

from models.base import created_at_field, json_field, timestamp_field


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    QA = "qa"
    ADMIN = "admin"


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    display_name: str = Field(max_length=128)
    password_hash: str
    role: str = Field(default=Role.AGENT, max_length=16)  # a Role
    active: bool = True
    created_at: datetime = created_at_field()
    # Login throttling (hub.login_throttle): wrong passwords in a row, and a temporary lock.
    failed_logins: int = 0
    last_failed_login_at: datetime | None = timestamp_field()
    locked_until: datetime | None = timestamp_field()


class PresenceState(StrEnum):
    OFFLINE = "offline"
    READY = "ready"
    NOT_READY = "not_ready"
    BUSY = "busy"
    WRAP_UP = "wrap_up"


class Agent(SQLModel, table=True):
    """An agent's routing profile and current presence (history in PresenceChange).

    ``capacity`` is per channel, e.g. ``{"voice": 1, "webchat": 3, "email": 5}``.
    ``idle_since`` is when the agent last had no work: longest-idle routing reads it.
    """

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", unique=True)
    capacity: dict[str, int] = json_field()
    presence: str = Field(default=PresenceState.OFFLINE, max_length=16, index=True)
    presence_reason: str | None = Field(default=None, max_length=64)
    presence_since: datetime | None = timestamp_field()
    idle_since: datetime | None = timestamp_field()
    last_offer_at: datetime | None = timestamp_field()
    extension: str | None = Field(default=None, max_length=32)  # SIP extension for a softphone
    # The phone's digest password (RFC 3261 §22): the registrar needs it in clear text (or
    # its realm hash), like every SIP registrar.
    sip_password: str | None = Field(default=None, max_length=128)
    # How the agent takes calls (hub.softphone.devices): "sip" (the registered phone),
    # "browser" (the console's softphone) or "external" (the hub calls device_number)
    device: str = Field(default="sip", max_length=16, sa_column_kwargs={"server_default": "sip"})
    device_number: str | None = Field(default=None, max_length=40)


class Skill(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    description: str = ""


class AgentSkill(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("agent_id", "skill_id"),)
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    skill_id: int = Field(foreign_key="skill.id", index=True)
    level: int = Field(default=1, ge=1, le=5)


class PresenceChange(SQLModel, table=True):
    """Every presence change, kept for reports (occupancy, not-ready time by reason)."""

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    state: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    by_user_id: int | None = Field(default=None, foreign_key="user.id")  # a supervisor forcing it


class NotReadyReason(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=32)
    label: str = Field(max_length=128)
    active: bool = True


class Disposition(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=32)
    label: str = Field(max_length=128)
    active: bool = True


class AuditEntry(SQLModel, table=True):
    """Who changed what, with the value before the change so it can be restored."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = created_at_field()
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    action: str = Field(max_length=64)
    entity: str = Field(max_length=64, index=True)
    entity_id: str | None = Field(default=None, max_length=64)
    before: dict[str, Any] | None = json_field(default_factory=lambda: None, nullable=True)
    after: dict[str, Any] | None = json_field(default_factory=lambda: None, nullable=True)
