"""Transaction helpers shared by routing and presence: locks, agent load, after-commit events.

Locking, the same code on both databases:
- PostgreSQL: rows are locked with ``SELECT … FOR UPDATE`` (``SKIP LOCKED`` in the
  dispatcher, so two hub processes never wait on each other and never take the same row);
- SQLite: ``FOR UPDATE`` renders as nothing; ``write_lock`` instead takes the database's one
  write lock before the first read, so everything read afterwards is current and stays so
  until commit (the ``BEGIN IMMEDIATE`` semantics; ``busy_timeout`` makes others wait).
  Inside one process the routing and presence writers first queue on an asyncio lock, so
  they wait for each other without SQLite's busy handler, which sleeps in steps of up to
  100 ms.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, event, func
from sqlmodel import Session, col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import writer_lock
from hub.events import EventBus
from models import (
    Agent,
    Interaction,
    InteractionSegment,
    InteractionState,
    PresenceState,
    User,
)

# Interactions that take a slot of the agent's per-channel capacity.
LOAD_STATES = (
    InteractionState.OFFERED.value,
    InteractionState.ACTIVE.value,
    InteractionState.WRAP_UP.value,
)
ROUTABLE_PRESENCE = (PresenceState.READY.value, PresenceState.BUSY.value)


@dataclass
class AfterCommit:
    """Events gathered inside a transaction, published only once it has committed."""

    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def add(self, topic: str, name: str, **data: Any) -> None:
        self.events.append((topic, name, data))

    async def publish(self, bus: EventBus) -> None:
        seen: set[str] = set()
        for topic, name, data in self.events:
            key = f"{topic}|{name}|{sorted(data.items())}"
            if key in seen:
                continue  # one "queue 3 changed" is enough per commit
            seen.add(key)
            await bus.publish(topic, name, **data)


def is_sqlite(db: AsyncSession) -> bool:
    return db.get_bind().dialect.name == "sqlite"


async def write_lock(db: AsyncSession) -> None:
    """On SQLite, take the write lock now (a no-op UPDATE) until this transaction ends;
    on PostgreSQL this does nothing (rows are locked instead)."""
    if not is_sqlite(db) or db.info.get("writer"):
        return
    lock = writer_lock(db.get_bind())  # type: ignore[arg-type]
    await lock.acquire()
    db.info["writer"] = True

    def release(session: Any, transaction: Any) -> None:
        session.info.pop("writer", None)
        lock.release()

    event.listen(db.sync_session, "after_transaction_end", release, once=True)
    connection = await db.connection()
    await connection.exec_driver_sql("UPDATE agent SET id = id WHERE 0")


async def lock_interaction(db: AsyncSession, interaction_id: int) -> Interaction | None:
    """The interaction row, locked until commit (waiting for another holder)."""
    statement = (
        select(Interaction)
        .where(Interaction.id == interaction_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await db.exec(statement)).first()


async def lock_agent(db: AsyncSession, agent_id: int) -> Agent | None:
    statement = (
        select(Agent)
        .where(Agent.id == agent_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await db.exec(statement)).first()


_LOADS = (
    select(Interaction.agent_id, Interaction.channel, func.count())
    .where(
        col(Interaction.state).in_(LOAD_STATES),
        col(Interaction.agent_id).is_not(None),
        # A call's slot frees at hang-up: its wrap-up holds no line (presence still keeps
        # an agent with nothing but wrap-ups out of routing).
        or_(
            Interaction.channel != "voice",
            Interaction.state != InteractionState.WRAP_UP.value,
        ),
    )
    .group_by(Interaction.agent_id, Interaction.channel)
)
_LOADS_BY_AGENT = _LOADS.where(col(Interaction.agent_id).in_(bindparam("ids", expanding=True)))
# A second agent conferenced into a text conversation (hub/text_collab.py) takes a slot too.
_JOINED = (
    select(InteractionSegment.agent_id, Interaction.channel, func.count())
    .join(Interaction, col(Interaction.id) == InteractionSegment.interaction_id)
    .where(
        col(InteractionSegment.ended_at).is_(None),
        InteractionSegment.role == "conference",
        Interaction.state == InteractionState.ACTIVE.value,
        Interaction.channel != "voice",
    )
    .group_by(InteractionSegment.agent_id, Interaction.channel)
)
_JOINED_BY_AGENT = _JOINED.where(
    col(InteractionSegment.agent_id).in_(bindparam("ids", expanding=True))
)


def agent_loads(db: Session, agent_ids: Iterable[int] | None = None) -> dict[int, dict[str, int]]:
    """Per agent and channel: how many OFFERED/ACTIVE/WRAP_UP interactions they hold, plus
    the active text conversations they are conferenced into.

    ``None`` reads every agent's load in one scan of the (few) working interactions, which
    is cheaper than a long ``IN`` list when the snapshot holds hundreds of agents.
    """
    ids = None if agent_ids is None else list(agent_ids)
    loads: dict[int, dict[str, int]] = {agent_id: {} for agent_id in ids or ()}
    if ids == []:
        return loads
    for whole, by_agent in ((_LOADS, _LOADS_BY_AGENT), (_JOINED, _JOINED_BY_AGENT)):
        rows = db.exec(whole) if ids is None else db.exec(by_agent, params={"ids": ids})
        for agent_id, channel, count in rows.all():
            per_channel = loads.setdefault(agent_id, {})
            per_channel[channel] = per_channel.get(channel, 0) + count
    return loads


async def agent_work_states(db: AsyncSession, agent_id: int) -> list[str]:
    """States of the agent's assigned work (OFFERED/ACTIVE/WRAP_UP)."""
    rows = await db.exec(
        select(Interaction.state).where(
            Interaction.agent_id == agent_id, col(Interaction.state).in_(LOAD_STATES)
        )
    )
    return [str(state) for state in rows.all()]


async def agent_name(db: AsyncSession, agent_id: int) -> str:
    """An agent as people know them (messages and errors name the agent, not an id)."""
    name = (
        await db.exec(select(User.display_name).join(Agent).where(Agent.id == agent_id))
    ).first()
    return name or f"agent {agent_id}"
