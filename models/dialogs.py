"""Dialogs admins design, and their immutable versions; an inbox points at its dialog.

A version is never changed once written: an edit is a new version, and a rollback is a new
version equal to an old one (``ivr_dialogs.versions`` holds those rules). The live version
is ``Dialog.published_version_id``, so a dialog has at most one published version, and the
composite foreign key makes it one of the dialog's own.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKeyConstraint, LargeBinary, Text
from sqlmodel import Field, SQLModel, UniqueConstraint

from models.base import created_at_field, json_field


class DialogKind(StrEnum):
    INBOUND = "inbound"  # answers contacts on an inbox (IVR menu, chat bot)
    OUTBOUND = "outbound"  # speaks first, on a call the hub places (reminders, campaigns)
    SURVEY = "survey"  # asks questions whose answers are stored and reported


class ValidationStatus(StrEnum):
    VALID = "valid"  # loads, validates and passes its own dialog tests: may be published
    INVALID = "invalid"  # ``DialogVersion.problems`` says why


class Dialog(SQLModel, table=True):
    __table_args__ = (
        # use_alter: dialog and dialogversion point at each other; the constraint is added
        # once both tables exist.
        ForeignKeyConstraint(
            ["published_version_id", "id"],
            ["dialogversion.id", "dialogversion.dialog_id"],
            name="fk_dialog_published_version",
            use_alter=True,
        ),
    )
    # autoincrement spelled out: id is part of the foreign key above, and SQLAlchemy gives
    # no SERIAL to a key column that is also a foreign key column.
    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    name: str = Field(unique=True, max_length=64)
    kind: str = Field(default=DialogKind.INBOUND, max_length=16)  # a DialogKind
    description: str = Field(default="", max_length=300)
    published_version_id: int | None = None
    # Nodes of the main flow an agent may send a caller to from the call card and get the
    # result back ("back to self-service", hub.call_self_service); empty: not offered.
    agent_nodes: list[str] = json_field(default_factory=list)
    created_at: datetime = created_at_field()


class DialogVersion(SQLModel, table=True):
    """One immutable version of a dialog: its YAML source and what checking it found."""

    __table_args__ = (
        UniqueConstraint("dialog_id", "number"),
        UniqueConstraint("id", "dialog_id"),  # the target of the published-version key
    )
    id: int | None = Field(default=None, primary_key=True)
    dialog_id: int = Field(foreign_key="dialog.id", index=True)
    number: int  # 1, 2, 3... per dialog
    source: str = Field(sa_column=Column(Text, nullable=False))  # the YAML, as written
    sha256: str = Field(max_length=64)
    note: str = Field(default="", max_length=200)  # e.g. "rollback to version 2"
    created_by: str = Field(max_length=64)  # a username, or "seed"
    created_at: datetime = created_at_field()
    validation: str = Field(max_length=16)  # a ValidationStatus
    problems: list[str] = json_field(default_factory=list)  # "file:line: error: ..." lines


class PromptRecording(SQLModel, table=True):
    """A recorded prompt: the WAV an admin uploaded for one prompt text in one language,
    already converted to telephony audio (8 kHz mono 16-bit PCM), which calls play instead
    of synthesizing the text. Keyed by the words it replaces (``text_sha`` of ``text``), so
    an edited prompt is spoken again until it is recorded again. Stored in the database so
    every hub process plays the same audio."""

    __table_args__ = (UniqueConstraint("dialog_id", "language", "text_sha"),)
    id: int | None = Field(default=None, primary_key=True)
    dialog_id: int = Field(foreign_key="dialog.id", index=True)
    language: str = Field(max_length=16)
    text_sha: str = Field(max_length=64)  # sha256 of ``text``
    text: str = Field(sa_column=Column(Text, nullable=False))  # the prompt it is spoken for
    audio: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # WAV, 8 kHz mono
    duration_ms: int
    filename: str = Field(default="", max_length=200)  # as uploaded
    original_format: str = Field(default="", max_length=100)  # e.g. "44100 Hz, 2 channels"
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime = created_at_field()
