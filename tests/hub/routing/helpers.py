"""Builders for routing tests: real rows through the real services, no mocks."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select

from channels.base import Address, AddressKind, ChannelKind, InboundMessage
from hub.services import Services
from models import Agent, Inbox, Interaction, Offer, PresenceState, Queue, User


async def agent_id(services: Services, username: str) -> int:
    async with services.sessionmaker() as db:
        row = (await db.exec(select(Agent).join(User).where(User.username == username))).one()
        return row.id  # type: ignore[return-value]


async def queue_id(services: Services, name: str) -> int:
    async with services.sessionmaker() as db:
        return (await db.exec(select(Queue).where(Queue.name == name))).one().id  # type: ignore[return-value]


async def set_ready(services: Services, *usernames: str) -> list[int]:
    ids = [await agent_id(services, name) for name in usernames]
    for agent in ids:
        await services.presence.set_presence(agent, PresenceState.READY)
    return ids


async def chat(services: Services, text: str = "hello", sender: str = "visitor-1") -> int:
    """A web chat arrives through ingest, like a customer's first message."""
    async with services.sessionmaker() as db:
        inbox = (await db.exec(select(Inbox).where(Inbox.kind == ChannelKind.WEBCHAT))).one()
    result = await services.ingest.ingest(
        InboundMessage(
            inbox_id=inbox.id,  # type: ignore[arg-type]
            channel=ChannelKind.WEBCHAT,
            sender=Address(AddressKind.WEBCHAT, sender),
            body=text,
        )
    )
    return result.interaction_id


async def interaction(services: Services, interaction_id: int) -> Interaction:
    async with services.sessionmaker() as db:
        row = await db.get(Interaction, interaction_id)
        assert row is not None
        return row


async def agent(services: Services, agent_id: int) -> Agent:
    async with services.sessionmaker() as db:
        row = await db.get(Agent, agent_id)
        assert row is not None
        return row


async def offers_for(services: Services, interaction_id: int) -> list[Offer]:
    async with services.sessionmaker() as db:
        return list(
            (
                await db.exec(
                    select(Offer).where(Offer.interaction_id == interaction_id).order_by(Offer.id)
                )
            ).all()
        )


async def update(services: Services, model: type, row_id: int, **values: object) -> None:
    async with services.sessionmaker() as db:
        row = await db.get(model, row_id)
        for key, value in values.items():
            setattr(row, key, value)
        db.add(row)
        await db.commit()
    services.routing.invalidate_config()  # what the admin pages do after a change


async def age(services: Services, interaction_id: int, queued_at: datetime) -> None:
    """Pretend the item has waited since ``queued_at`` (instead of sleeping in a test)."""
    await update(services, Interaction, interaction_id, queued_at=queued_at)


async def next_named(events, name: str, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    """The next event called ``name`` (others, e.g. the chat's own message, are skipped)."""
    import asyncio

    async def find():  # type: ignore[no-untyped-def]
        async for event in events:
            if event.name == name:
                return event
        raise AssertionError(f"no {name!r} event")

    return await asyncio.wait_for(find(), timeout)
