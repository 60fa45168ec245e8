"""Contacts: one customer across every channel, found by normalized address."""

from __future__ import annotations

import phonenumbers
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import Address, AddressKind
from models import Contact, ContactIdentity, Interaction


class AddressError(ValueError):
    """An address that cannot be normalized (e.g. not a phone number)."""


def normalize_phone(raw: str, default_region: str = "US") -> str:
    """E.164, so voice, SMS and fax from one number reach one contact."""
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


def resolve_contact(db: Session, address: Address) -> Contact:
    """The live contact owning ``address``; a new, unknown contact if nobody does.

    Synchronous, inside the caller's transaction, so ingest can run it in one thread hop
    (one query when the address is known). A concurrent insert of the same address loses
    the unique race and re-reads the winner.
    """
    value = normalize_address(address.kind, address.value)
    owner = (
        select(Contact)
        .join(ContactIdentity, col(ContactIdentity.contact_id) == Contact.id)
        .where(ContactIdentity.kind == address.kind.value, ContactIdentity.address == value)
    )
    contact = db.exec(owner).first()
    if contact is None:
        contact = Contact(name=address.display_name or "")
        try:
            with db.begin_nested():
                db.add(contact)
                db.flush()
                db.add(
                    ContactIdentity(contact_id=contact.id, kind=address.kind.value, address=value)
                )
                db.flush()
        except IntegrityError:
            contact = db.exec(owner).one()
        else:
            return contact
    return contact if contact.merged_into_id is None else follow_merges_sync(db, contact.id)  # type: ignore[arg-type]


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
