"""Create and change inboxes: the service behind /admin/inboxes.

One function saves an inbox from what an admin entered, checks its links (dialog, queue,
hours), keeps secrets write-only and audits the change without secret values, all in the
caller's transaction. After the commit, ``announce`` tells every hub process (the bus's
``config`` topic) so their channel adapters reload the inbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import ChannelKind
from hub import audit
from hub.events import ROUTING_TOPIC, EventBus
from hub.inbox_config import InboxConfigError, apply_form, redacted
from models import BusinessHours, Dialog, Inbox, Queue

CONFIG_TOPIC = "config"  # every hub process listens; the channel runtimes reload inboxes
INBOX_EVENT = "inbox"
# A reply handed to the process that holds its channel's connection (hub.channel_runtime)
OUTBOX_TOPIC = "outbox"
DELIVER_EVENT = "deliver"
KINDS = tuple(k.value for k in ChannelKind)


@dataclass(frozen=True, slots=True)
class InboxLinks:
    """What an inbox points at besides its config (None: no link)."""

    name: str
    default_queue_id: int | None
    hours_id: int | None
    dialog_id: int | None
    active: bool


def audit_view(inbox: Inbox) -> dict[str, Any]:
    """An inbox as the audit log keeps it: every field, secrets as "(set)"."""
    return {
        "name": inbox.name,
        "kind": inbox.kind,
        "config": redacted(inbox.kind, inbox.config),
        "default_queue_id": inbox.default_queue_id,
        "hours_id": inbox.hours_id,
        "dialog_id": inbox.dialog_id,
        "active": inbox.active,
    }


async def _check_links(db: AsyncSession, links: InboxLinks) -> None:
    name = links.name.strip()
    if not name:
        raise InboxConfigError("Name is required.")
    if len(name) > 64:
        raise InboxConfigError("Name is too long (at most 64 characters).")
    for model, value, label in (
        (Queue, links.default_queue_id, "Default queue"),
        (BusinessHours, links.hours_id, "Business hours"),
        (Dialog, links.dialog_id, "Dialog"),
    ):
        if value is not None and await db.get(model, value) is None:
            raise InboxConfigError(f"{label} #{value} does not exist.")


async def save_inbox(
    db: AsyncSession,
    *,
    user_id: int | None,
    inbox_id: int | None,
    kind: str,
    links: InboxLinks,
    form: Mapping[str, Any],
) -> Inbox:
    """Create (``inbox_id`` None) or update an inbox; commits. Raises InboxConfigError with
    a message naming the field, or LookupError for an unknown inbox."""
    await _check_links(db, links)
    if inbox_id is None:
        if kind not in KINDS:
            raise InboxConfigError(f"Unknown channel kind {kind!r}.")
        inbox = Inbox(name=links.name.strip(), kind=kind, config={})
        before = None
    else:
        found = await db.get(Inbox, inbox_id)
        if found is None:
            raise LookupError(f"There is no inbox #{inbox_id}.")
        inbox = found
        before = audit_view(inbox)
    clash = (
        await db.exec(
            select(Inbox.id).where(Inbox.name == links.name.strip(), Inbox.id != inbox_id)
        )
    ).first()
    if clash is not None:
        raise InboxConfigError(f"Another inbox is already called {links.name.strip()!r}.")
    inbox.config = apply_form(inbox.kind, inbox.config or {}, form)
    inbox.name = links.name.strip()
    inbox.default_queue_id = links.default_queue_id
    inbox.hours_id = links.hours_id
    inbox.dialog_id = links.dialog_id
    inbox.active = links.active
    db.add(inbox)
    try:
        await db.flush()
    except IntegrityError as exc:
        await db.rollback()
        raise InboxConfigError(f"Another inbox is already called {inbox.name!r}.") from exc
    audit.record(
        db,
        user_id=user_id,
        action="create" if before is None else "update",
        entity="inbox",
        entity_id=inbox.id,
        before=before,
        after=audit_view(inbox),
    )
    await db.commit()
    await db.refresh(inbox)
    return inbox


async def set_active(
    db: AsyncSession, *, user_id: int | None, inbox_id: int, active: bool
) -> Inbox:
    """Deactivate (or reactivate) an inbox: its adapters stop, its history stays."""
    inbox = await db.get(Inbox, inbox_id)
    if inbox is None:
        raise LookupError(f"There is no inbox #{inbox_id}.")
    before = audit_view(inbox)
    inbox.active = active
    db.add(inbox)
    audit.record(
        db,
        user_id=user_id,
        action="activate" if active else "deactivate",
        entity="inbox",
        entity_id=inbox.id,
        before=before,
        after=audit_view(inbox),
    )
    await db.commit()
    await db.refresh(inbox)
    return inbox


async def list_inboxes(db: AsyncSession) -> list[Inbox]:
    return list((await db.exec(select(Inbox).order_by(col(Inbox.kind), col(Inbox.name)))).all())


async def announce(bus: EventBus, inbox: Inbox) -> None:
    """After commit: every hub process reloads this inbox's channel, and the dispatchers
    read their configuration again (an inbox's default queue and hours), as after any
    other admin save."""
    await bus.publish(CONFIG_TOPIC, INBOX_EVENT, inbox_id=inbox.id, kind=inbox.kind)
    await bus.publish(ROUTING_TOPIC, "config")
