"""Staffing: the groups sized separately, shift templates, forecast overrides and rosters."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel, UniqueConstraint

from models.base import created_at_field, json_field, timestamp_field


class StaffingModel(StrEnum):
    CALLS = "calls"  # Erlang C
    CHAT = "chat"  # Erlang C over chat slots, agents hold several chats at once
    EMAIL = "email"  # workload: the backlog cleared within its target time


class StaffingGroup(SQLModel, table=True):
    """A skill or language group sized on its own (English calls, Spanish calls, chat…).

    History is the interactions on ``channels`` (and in ``queue_id`` when set); ``skill`` is
    what an agent needs to serve it, matched against a shift template's ``skills``."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    model: str = Field(default=StaffingModel.CALLS, max_length=8)
    channels: list[str] = json_field(default_factory=list)
    queue_id: int | None = Field(default=None, foreign_key="queue.id")
    skill: str = Field(max_length=64)
    aht_seconds: int = 180
    sl_target_pct: int = 80
    sl_seconds: int = 20
    shrinkage_pct: int = 30
    concurrency: int = 1  # chats one agent holds at once
    email_target_minutes: int = 240
    active: bool = True


class ShiftTemplate(SQLModel, table=True):
    """A kind of shift the planner may staff: its length, start window, break and cost, and
    the skills or languages an agent on it brings (which groups it can serve)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    length_minutes: int = 480
    earliest_start: int = 420  # minutes after midnight
    latest_start: int = 780
    start_step_minutes: int = 60
    break_offset_minutes: int | None = None  # minutes after the start
    break_minutes: int = 0
    paid_break: bool = False
    cost_per_hour: float = 20.0
    skills: list[str] = json_field(default_factory=list)
    weekdays: list[str] = json_field(default_factory=list)  # "mon"…"sun"; empty: every day
    max_count: int | None = None
    active: bool = True


class ForecastOverride(SQLModel, table=True):
    """The planner's own volume for one interval of one group and day (typed or uploaded)."""

    __table_args__ = (UniqueConstraint("group_id", "day", "start_minute", "minutes"),)
    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="staffinggroup.id", index=True)
    day: date = Field(index=True)
    start_minute: int
    minutes: int
    volume: float
    source: str = Field(default="manual", max_length=8)  # manual | upload
    by_user_id: int | None = Field(default=None, foreign_key="user.id")
    at: datetime = created_at_field()


class Roster(SQLModel, table=True):
    """A saved schedule for one day: the solver's plan, then who works which shift."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    day: date = Field(index=True)
    interval_minutes: int = 60
    cost: float = 0.0
    plan: dict = json_field()  # intervals, requirement and coverage per group, the inputs
    created_by: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class RosterShift(SQLModel, table=True):
    """One agent-shift of a roster: a copy of the template's terms, and who works it."""

    id: int | None = Field(default=None, primary_key=True)
    roster_id: int = Field(foreign_key="roster.id", index=True)
    template_id: int | None = Field(default=None, foreign_key="shifttemplate.id")
    template_name: str = Field(max_length=64)
    start_minute: int
    length_minutes: int
    break_offset_minutes: int | None = None
    break_minutes: int = 0
    cost: float = 0.0
    skills: list[str] = json_field(default_factory=list)
    agent_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
