"""Contacts: one customer across every channel, found by normalized address."""

from __future__ import annotations

import phonenumbers
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
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


async def resolve_contact(db: AsyncSession, address: Address) -> Contact:
    """The live contact owning ``address``; a new, unknown contact if nobody does.

    Runs inside the caller's transaction. A concurrent insert of the same address loses the
    unique race and re-reads the winner's row.
    """
    value = normalize_address(address.kind, address.value)
    identity = (
        await db.exec(
            select(ContactIdentity).where(
                ContactIdentity.kind == address.kind.value, ContactIdentity.address == value
            )
        )
    ).first()
    if identity is not None:
        return await follow_merges(db, identity.contact_id)
    contact = Contact(name=address.display_name or "")
    try:
        async with db.begin_nested():
            db.add(contact)
            await db.flush()
            db.add(ContactIdentity(contact_id=contact.id, kind=address.kind.value, address=value))
            await db.flush()
    except IntegrityError:
        identity = (
            await db.exec(
                select(ContactIdentity).where(
                    ContactIdentity.kind == address.kind.value, ContactIdentity.address == value
                )
            )
        ).one()
        return await follow_merges(db, identity.contact_id)
    return contact


async def follow_merges(db: AsyncSession, contact_id: int) -> Contact:
    contact = await db.get(Contact, contact_id)
    seen: set[int] = set()
    while contact is not None and contact.merged_into_id is not None and contact.id not in seen:
        seen.add(contact.id)  # type: ignore[arg-type]
        contact = await db.get(Contact, contact.merged_into_id)
    if contact is None:
        raise LookupError(f"contact {contact_id} does not exist")
    return contact


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
