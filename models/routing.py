"""Queues, business hours and offers: what the ACD reads and writes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel, UniqueConstraint

from models.base import created_at_field, json_field, timestamp_field


class Strategy(StrEnum):
    LONGEST_IDLE = "longest_idle"
    ROUND_ROBIN = "round_robin"
    HIGHEST_SKILL = "highest_skill"


class BusinessHours(SQLModel, table=True):
    """Weekly opening hours in a time zone, plus holidays (closed all day).

    ``weekly`` maps ISO weekday names to ranges: ``{"mon": [["09:00", "17:00"]], ...}``.
    ``holidays`` is a list of ISO dates.
    """

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    timezone: str = Field(default="UTC", max_length=64)
    weekly: dict[str, list[list[str]]] = json_field()
    holidays: list[str] = json_field(default_factory=list)


class Queue(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    channels: list[str] = json_field(default_factory=list)  # ChannelKind values served
    priority: int = 0  # added to every interaction's score in this queue
    strategy: str = Field(default=Strategy.LONGEST_IDLE, max_length=16)
    sla_seconds: int = 60  # answer within this to count as "in service level"
    offer_timeout_seconds: int = 20  # ring-no-answer
    wrapup_seconds: int = 60  # automatic end of wrap-up
    # Callers waiting hear their position and estimated wait this often (0: music only).
    announce_seconds: int = 0
    overflow_after_seconds: int | None = None
    overflow_queue_id: int | None = Field(default=None, foreign_key="queue.id")
    overflow_relax_skills: bool = False
    hours_id: int | None = Field(default=None, foreign_key="businesshours.id")
    active: bool = True
    # When nobody can answer (hub.nobody_answers): after max_wait_seconds a waiting caller
    # goes to max_wait_action (voicemail, callback: offered a callback, overflow: to the
    # overflow queue); callback_key (empty: none) asks for a callback while queued;
    # a callback that nobody answers is tried again after callback_retry_seconds, up to
    # callback_max_tries; with onduty_number set, a call that finds no agent logged in or
    # the queue closed is forwarded there through the trunk instead of voicemail.
    max_wait_seconds: int | None = None
    max_wait_action: str = Field(default="voicemail", max_length=16)
    callback_key: str = Field(default="", max_length=1)
    callback_retry_seconds: int = 300
    callback_max_tries: int = 3
    onduty_number: str = Field(default="", max_length=32)
    # Reports (hub.service_level): which contacts the service level counts, and how soon a
    # customer may leave without it counting as a real abandon.
    sl_denominator: str = Field(default="answered_abandoned", max_length=24)
    short_abandon_seconds: int = 5
    # Wallboard alerts: a tile turns red past any of these (None: no alert).
    alert_waiting: int | None = None
    alert_longest_wait_seconds: int | None = None
    alert_sl_below_pct: int | None = None
    # After the agent hangs up, the caller goes on to this dialog's survey (None: goodbye).
    survey_dialog_id: int | None = Field(default=None, foreign_key="dialog.id")


class QueueSkill(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("queue_id", "skill_id"),)
    id: int | None = Field(default=None, primary_key=True)
    queue_id: int = Field(foreign_key="queue.id", index=True)
    skill_id: int = Field(foreign_key="skill.id", index=True)
    min_level: int = Field(default=1, ge=1, le=5)


class OfferOutcome(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"  # the customer left, or a supervisor pulled it


class Offer(SQLModel, table=True):
    """One offer of one interaction to one agent; at most one pending per interaction.

    The partial unique index enforces "one pending offer per interaction" in the database
    itself, so two hub processes can never both offer the same interaction.
    """

    __table_args__ = (
        Index(
            "uq_offer_one_pending_per_interaction",
            "interaction_id",
            unique=True,
            sqlite_where=text("outcome = 'pending'"),
            postgresql_where=text("outcome = 'pending'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    queue_id: int | None = Field(default=None, foreign_key="queue.id")
    outcome: str = Field(default=OfferOutcome.PENDING, max_length=16, index=True)
    offered_at: datetime = created_at_field()
    expires_at: datetime | None = timestamp_field(index=True)
    decided_at: datetime | None = timestamp_field()
    node: str | None = Field(default=None, max_length=64)  # which hub process made it
    extra: dict = json_field()
