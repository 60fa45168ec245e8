"""Inboxes, interactions (one contact episode on one channel) and their messages."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel, UniqueConstraint

from models.base import created_at_field, json_field, timestamp_field


class Inbox(SQLModel, table=True):
    """One configured entry point: a DID, a mailbox, an SMPP account, a bot, a chat widget."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    kind: str = Field(max_length=16)  # a channels.base.ChannelKind
    config: dict[str, Any] = json_field()
    default_queue_id: int | None = Field(default=None, foreign_key="queue.id")
    hours_id: int | None = Field(default=None, foreign_key="businesshours.id")
    # The dialog whose published version answers new contacts (None: straight to routing).
    dialog_id: int | None = Field(default=None, foreign_key="dialog.id")
    active: bool = True
    # Call recordings after redaction: False keeps only the redacted copy (the original is
    # deleted); True keeps the original too, playable only by ``original_audio_role``.
    keep_original_audio: bool = False
    original_audio_role: str | None = Field(default=None, max_length=16)  # a Role


class InteractionState(StrEnum):
    NEW = "new"
    SELF_SERVICE = "self_service"  # IVR or bot
    QUEUED = "queued"
    OFFERED = "offered"
    ACTIVE = "active"
    WRAP_UP = "wrap_up"
    CLOSED = "closed"
    ABANDONED = "abandoned"  # the customer left before an agent answered
    VOICEMAIL = "voicemail"  # a message left for later (no agent, or after hours)


OPEN_STATES = frozenset(
    {
        InteractionState.NEW,
        InteractionState.SELF_SERVICE,
        InteractionState.QUEUED,
        InteractionState.OFFERED,
        InteractionState.ACTIVE,
        InteractionState.WRAP_UP,
        InteractionState.VOICEMAIL,
    }
)


class Interaction(SQLModel, table=True):
    # repeat contacts (hub.reports.rollups) read the interactions created in a window
    __table_args__ = (Index("ix_interaction_created_at", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    inbox_id: int = Field(foreign_key="inbox.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    channel: str = Field(max_length=16, index=True)
    state: str = Field(default=InteractionState.NEW, max_length=16, index=True)
    subject: str | None = Field(default=None, max_length=300)
    queue_id: int | None = Field(default=None, foreign_key="queue.id", index=True)
    priority: int = 0  # set by the IVR/bot or an agent; added to the routing score
    required_skills: dict[str, int] = json_field()  # extra skills from the IVR: name → level
    data: dict[str, Any] = json_field()  # attached data for the screen pop
    agent_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    disposition_id: int | None = Field(default=None, foreign_key="disposition.id")
    wrapup_notes: str = ""
    overflowed: bool = False
    created_at: datetime = created_at_field()
    queued_at: datetime | None = timestamp_field(index=True)
    offered_at: datetime | None = timestamp_field()
    answered_at: datetime | None = timestamp_field()
    wrapup_at: datetime | None = timestamp_field()
    closed_at: datetime | None = timestamp_field()
    state_changed_at: datetime | None = timestamp_field()


class InteractionEvent(SQLModel, table=True):
    """The timestamped state history of an interaction: reports are computed from these rows."""

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    user_id: int | None = Field(default=None, foreign_key="user.id")
    queue_id: int | None = Field(default=None, foreign_key="queue.id")
    reason: str | None = Field(default=None, max_length=200)


class Direction(StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


class SenderKind(StrEnum):
    CONTACT = "contact"
    AGENT = "agent"
    SYSTEM = "system"
    BOT = "bot"


class Message(SQLModel, table=True):
    """A message on an interaction; a private note is a message with ``private=True``.

    ``source_id`` is the provider's id (unique per inbox): a redelivered message is stored
    once. Outbound messages get the provider id the channel returned (e.g. our Message-ID).
    """

    __table_args__ = (UniqueConstraint("inbox_id", "source_id"),)
    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id", index=True)
    inbox_id: int = Field(foreign_key="inbox.id", index=True)
    direction: str = Field(max_length=3)  # a Direction
    sender_kind: str = Field(max_length=8)  # a SenderKind
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    content_type: str = Field(default="text", max_length=16)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    subject: str | None = Field(default=None, max_length=300)
    attachments: list[dict[str, Any]] = json_field(default_factory=list)
    private: bool = False
    delivery_status: str = Field(default="received", max_length=16)
    status_detail: str | None = Field(default=None, max_length=500)
    source_id: str | None = Field(default=None, max_length=300)
    meta: dict[str, Any] = json_field()
    created_at: datetime = created_at_field()


class MessagePart(SQLModel, table=True):
    """One part of an outbound message the provider took as several, each with an id of its
    own (the segments of a long SMS, each with its SMSC ``message_id``).

    Receipts come per part, so each part keeps its status: the message is delivered when
    every part is, and failed as soon as one fails. Kept in the database, so a receipt that
    arrives after a restart still finds its message and its siblings' receipts.
    """

    __table_args__ = (UniqueConstraint("inbox_id", "provider_id"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    inbox_id: int = Field(foreign_key="inbox.id")
    provider_id: str = Field(max_length=300)
    seq: int  # 1-based, in sending order
    delivery_status: str = Field(default="sent", max_length=16)
    status_detail: str | None = Field(default=None, max_length=500)
