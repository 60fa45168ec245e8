"""Customers and the addresses that reach them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel, UniqueConstraint

from models.base import created_at_field


class IdentityKind(StrEnum):
    PHONE = "phone"  # E.164, so voice, SMS and fax from one number meet
    EMAIL = "email"  # lower-case
    TELEGRAM = "telegram"  # the Telegram user id
    WEBCHAT = "webchat"  # the visitor id kept in the customer's cookie


class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=200)
    vip_level: int = Field(default=0, ge=0, le=5)
    blocked: bool = False
    blocked_reason: str = Field(default="", max_length=200)  # why, as the blocker wrote it
    notes: str = ""
    known: bool = False  # False until an agent creates or links it (screen pop form)
    merged_into_id: int | None = Field(default=None, foreign_key="contact.id")
    created_at: datetime = created_at_field()


class ContactIdentity(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("kind", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    kind: str = Field(max_length=16)  # an IdentityKind
    address: str = Field(max_length=320)
    created_at: datetime = created_at_field()
