"""Blocked customers, for supervisors: who is blocked and why, and what they sent since.

A blocked contact's new contacts are stored and closed at once by ingest (never dropped
silently), so this list is where they surface. A supervisor can unblock from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.contacts import BLOCKED_CLOSE_REASON, set_contact_blocked
from models import Contact, ContactIdentity, Interaction, InteractionEvent, Role
from web.common import page, role_guard, services_of, user_of

RECENT = 200  # the newest kept-while-blocked contacts shown


@dataclass
class BlockedContact:
    contact: Contact
    identities: list[ContactIdentity]
    kept: list[Interaction]  # contacts they made while blocked, newest first


async def blocked_contacts(db: AsyncSession) -> list[BlockedContact]:
    contacts = (
        await db.exec(
            select(Contact)
            .where(col(Contact.blocked).is_(True), col(Contact.merged_into_id).is_(None))
            .order_by(col(Contact.id))
        )
    ).all()
    ids = [c.id for c in contacts]
    identities: dict[int, list[ContactIdentity]] = {}
    for identity in (
        await db.exec(select(ContactIdentity).where(col(ContactIdentity.contact_id).in_(ids)))
    ).all():
        identities.setdefault(identity.contact_id, []).append(identity)
    kept: dict[int, list[Interaction]] = {}
    rows = (
        await db.exec(
            select(Interaction)
            .join(InteractionEvent, col(InteractionEvent.interaction_id) == Interaction.id)
            .where(
                col(Interaction.contact_id).in_(ids),
                InteractionEvent.reason == BLOCKED_CLOSE_REASON,
            )
            .order_by(col(Interaction.id).desc())
            .limit(RECENT)
        )
    ).all()
    for interaction in rows:
        kept.setdefault(interaction.contact_id, []).append(interaction)
    return [
        BlockedContact(c, identities.get(c.id or 0, []), kept.get(c.id or 0, [])) for c in contacts
    ]


@get("/")
async def blocked_page(request: Request) -> Template:
    async with services_of(request).sessionmaker() as db:
        rows = await blocked_contacts(db)
    return page("blocked.html", request, rows=rows, saved=None)


@post("/contacts/{contact_id:int}/unblock", status_code=200)
async def unblock(request: Request, contact_id: FromPath[int]) -> Template:
    async with services_of(request).sessionmaker() as db:
        contact = await db.get(Contact, contact_id)
        if contact is None or not contact.blocked:
            raise NotFoundException(f"Contact {contact_id} is not blocked.")
        await set_contact_blocked(db, contact, None, user_of(request).id)
        await db.commit()
        rows = await blocked_contacts(db)
    name = contact.name or f"contact #{contact_id}"
    return page("blocked.html", request, rows=rows, saved=f"Unblocked {name}.")


route_handlers: list = [
    Router(
        path="/blocked",
        guards=[role_guard(Role.SUPERVISOR)],
        route_handlers=[blocked_page, unblock],
    )
]
