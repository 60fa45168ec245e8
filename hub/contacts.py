"""Contacts: one customer across every channel, found by normalized address."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlmodel import Session, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import AddressKind
from hub import audit
from models import Contact, ContactIdentity, Interaction, utcnow


class AddressError(ValueError):
    """An address that cannot be normalized (e.g. not a phone number)."""


@functools.lru_cache(maxsize=65536)
def normalize_phone(raw: str, default_region: str = "US") -> str:
    """E.164, so voice, SMS and fax from one number reach one contact.

    Cached: an adapter and ingest both normalize every sender, and customers write again.
    """
    try:
        number = phonenumbers.parse(raw, None if raw.strip().startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise AddressError(f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_possible_number(number):
        raise AddressError(f"not a possible phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_address(kind: AddressKind | str, value: str, default_region: str = "US") -> str:
    kind = AddressKind(kind)
    value = value.strip()
    if kind is AddressKind.PHONE:
        return normalize_phone(value, default_region)
    if kind is AddressKind.EMAIL:
        if "@" not in value:
            raise AddressError(f"not an email address: {value!r}")
        return value.lower()
    if not value:
        raise AddressError(f"empty {kind.value} address")
    return value


@dataclass(frozen=True, slots=True)
class ContactRef:
    """What ingest needs of a contact: who it is, whether it is blocked, its priority."""

    id: int
    blocked: bool
    vip_level: int


_CONTACTS: sa.Table = Contact.__table__  # type: ignore[attr-defined]
_IDENTITIES: sa.Table = ContactIdentity.__table__  # type: ignore[attr-defined]
_C, _I = _CONTACTS.c, _IDENTITIES.c
_OWNERS = (
    sa.select(_I.address, _C.id, _C.merged_into_id, _C.blocked, _C.vip_level)
    .join_from(_IDENTITIES, _CONTACTS, _I.contact_id == _C.id)
    .where(
        _I.kind == sa.bindparam("kind"), _I.address.in_(sa.bindparam("addresses", expanding=True))
    )
)
_CONTACTS_BY_ID = sa.select(_C.id, _C.merged_into_id, _C.blocked, _C.vip_level).where(
    _C.id.in_(sa.bindparam("ids", expanding=True))
)
_NEW_CONTACTS = sa.insert(_CONTACTS).returning(_C.id, sort_by_parameter_order=True)


def resolve_contacts(
    conn: Connection, wanted: Mapping[tuple[str, str], str]
) -> dict[tuple[str, str], ContactRef]:
    """The live contact owning each normalized ``(kind, address)``; new contacts for the rest.

    ``wanted`` maps each address to the name a new contact gets. Set-based (one query per
    address kind, one insert each for new contacts and identities), inside the caller's
    transaction, so ingest resolves a whole batch in a few statements. A concurrent insert
    of the same address raises IntegrityError; the caller retries and then finds the winner.
    """
    rows: dict[tuple[str, str], sa.Row[Any]] = {}
    by_kind: dict[str, list[str]] = {}
    for kind, address in wanted:
        by_kind.setdefault(kind, []).append(address)
    for kind, addresses in by_kind.items():
        for row in conn.execute(_OWNERS, {"kind": kind, "addresses": addresses}):
            rows[(kind, row.address)] = row
    found = {key: ContactRef(r.id, r.blocked, r.vip_level) for key, r in rows.items()}
    merged = {key: r.id for key, r in rows.items() if r.merged_into_id is not None}
    if merged:
        found.update(_follow(conn, merged))
    missing = [key for key in wanted if key not in found]
    if missing:
        found.update(_create(conn, missing, wanted))
    return found


def _follow(
    conn: Connection, starts: dict[tuple[str, str], int]
) -> dict[tuple[str, str], ContactRef]:
    """Each merged contact's final target (``follow_merges_sync``'s rule, one query a hop)."""
    known: dict[int, sa.Row[Any]] = {}
    todo = set(starts.values())
    while todo:
        for row in conn.execute(_CONTACTS_BY_ID, {"ids": sorted(todo)}):
            known[row.id] = row
        if missing := todo - known.keys():
            raise LookupError(f"contact {min(missing)} does not exist")
        todo = {
            r.merged_into_id
            for r in known.values()
            if r.merged_into_id is not None and r.merged_into_id not in known
        }
    result = {}
    for key, contact_id in starts.items():
        row, seen = known[contact_id], set()
        while row.merged_into_id is not None and row.id not in seen:
            seen.add(row.id)
            row = known[row.merged_into_id]
        result[key] = ContactRef(row.id, row.blocked, row.vip_level)
    return result


def _create(
    conn: Connection, keys: list[tuple[str, str]], names: Mapping[tuple[str, str], str]
) -> dict[tuple[str, str], ContactRef]:
    now = utcnow()
    ids = (
        conn.execute(_NEW_CONTACTS, [{"name": names[key], "created_at": now} for key in keys])
        .scalars()
        .all()
    )
    conn.execute(
        sa.insert(_IDENTITIES),
        [
            {"contact_id": contact_id, "kind": kind, "address": address, "created_at": now}
            for contact_id, (kind, address) in zip(ids, keys, strict=True)
        ],
    )
    return {
        key: ContactRef(contact_id, False, 0) for key, contact_id in zip(keys, ids, strict=True)
    }


def follow_merges_sync(db: Session, contact_id: int) -> Contact:
    contact = db.get(Contact, contact_id)
    seen: set[int] = set()
    while contact is not None and contact.merged_into_id is not None and contact.id not in seen:
        seen.add(contact.id)  # type: ignore[arg-type]
        contact = db.get(Contact, contact.merged_into_id)
    if contact is None:
        raise LookupError(f"contact {contact_id} does not exist")
    return contact


async def follow_merges(db: AsyncSession, contact_id: int) -> Contact:
    """The contact that ``contact_id`` was merged into (itself when never merged)."""
    return await db.run_sync(follow_merges_sync, contact_id)


async def merge_contacts(db: AsyncSession, keep_id: int, merge_id: int) -> Contact:
    """Merge ``merge_id`` into ``keep_id``: identities and interactions move; the old row
    stays as a pointer so links to it still resolve. The caller commits and audits."""
    if keep_id == merge_id:
        raise ValueError("cannot merge a contact into itself")
    keep = await follow_merges(db, keep_id)
    merged = await follow_merges(db, merge_id)
    if keep.id == merged.id:
        raise ValueError("these contacts are already merged")
    for identity in (
        await db.exec(select(ContactIdentity).where(ContactIdentity.contact_id == merged.id))
    ).all():
        identity.contact_id = keep.id  # type: ignore[assignment]
        db.add(identity)
    for interaction in (
        await db.exec(select(Interaction).where(Interaction.contact_id == merged.id))
    ).all():
        interaction.contact_id = keep.id  # type: ignore[assignment]
        db.add(interaction)
    keep.vip_level = max(keep.vip_level, merged.vip_level)
    keep.blocked = keep.blocked or merged.blocked
    keep.known = True
    if not keep.name:
        keep.name = merged.name
    merged.merged_into_id = keep.id
    db.add(keep)
    db.add(merged)
    return keep


# The reason on the state change that closes a blocked contact's new interaction at once.
BLOCKED_CLOSE_REASON = "contact is blocked"


async def set_contact_blocked(
    db: AsyncSession, contact: Contact, reason: str | None, user_id: int | None
) -> None:
    """Block (with a reason) or unblock (``reason=None``) a contact, audited with the value
    before. Ingest keeps a blocked contact's new messages, closed at once; the caller
    commits. The routing cache reads ``blocked`` through ``contact_refs`` per message."""
    before = {"blocked": contact.blocked, "blocked_reason": contact.blocked_reason}
    contact.blocked = reason is not None
    contact.blocked_reason = reason or ""
    db.add(contact)
    audit.record(
        db,
        user_id=user_id,
        action="contact.block" if reason is not None else "contact.unblock",
        entity="contact",
        entity_id=contact.id,
        before=before,
        after={"blocked": contact.blocked, "blocked_reason": contact.blocked_reason},
    )
