"""Leases: which hub process holds a connection that only one may hold at a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


class Lease(SQLModel, table=True):
    """One resource (``smpp:<inbox>``, ``imap:<inbox>``, ``telegram:<inbox>``) and the node
    holding it until ``expires_at``; the holder renews it, anyone takes it once it lapses."""

    key: str = Field(primary_key=True, max_length=128)
    holder: str = Field(max_length=128)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
