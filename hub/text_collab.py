"""A second agent on a text conversation (web chat, email, SMS, Telegram): consult and
conference, the text forms of the call verbs in ``hub/call_consult.py``.

- **consult**: the agent who has the conversation asks another agent about it. The other
  agent sees the conversation (its history, notes and data) in their console, and the two
  write private notes on it that the customer never sees. The consult is closed by either
  of them, or becomes a transfer: the other agent then has the conversation.
- **conference**: a second agent joins the conversation. Both see everything live and both
  write to the customer; the joined agent takes a slot of their capacity
  (``hub/routing/work.agent_loads``). Either can leave; when the agent who has the
  conversation leaves, the other keeps the customer.

One interaction throughout. Each agent's part is an ``InteractionSegment`` (roles agent,
consult, conference) and each step a ``ControlEvent``. Calls have their own verbs (the
media must follow), so every function here refuses a call.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.events import ROUTING_TOPIC, SUPERVISOR_TOPIC, agent_topic, interaction_topic
from hub.routing.decision import free_slots
from hub.routing.offers import pending_offer
from hub.routing.work import (
    ROUTABLE_PRESENCE,
    AfterCommit,
    agent_loads,
    agent_name,
    lock_agent,
    lock_interaction,
    write_lock,
)
from models import (
    ControlEvent,
    ControlKind,
    Direction,
    Interaction,
    InteractionSegment,
    InteractionState,
    Message,
    SegmentRole,
    SenderKind,
    utcnow,
)

if TYPE_CHECKING:
    from hub.services import Services

JOINED_ROLES = (SegmentRole.CONSULT.value, SegmentRole.CONFERENCE.value)
PARTICIPANTS_EVENT = "participants"  # on the interaction's topic: who else is on it changed


class CollabRefused(ValueError):
    """A consult or conference that cannot happen now; the text says why."""


async def joined_segments(db: AsyncSession, interaction_id: int) -> list[InteractionSegment]:
    """The open consult and conference parts of a text conversation, oldest first."""
    rows = await db.exec(
        select(InteractionSegment)
        .where(
            InteractionSegment.interaction_id == interaction_id,
            col(InteractionSegment.ended_at).is_(None),
            col(InteractionSegment.role).in_(JOINED_ROLES),
        )
        .order_by(col(InteractionSegment.id))
    )
    return list(rows.all())


async def joined_as(db: AsyncSession, interaction_id: int, agent_id: int | None) -> str | None:
    """``consult`` or ``conference`` when the agent is on the conversation without holding
    it, else None."""
    if agent_id is None:
        return None
    for segment in await joined_segments(db, interaction_id):
        if segment.agent_id == agent_id:
            return segment.role
    return None


async def joined_interaction_ids(db: AsyncSession, agent_id: int) -> list[int]:
    """The active text conversations this agent is consulted on or conferenced into."""
    rows = await db.exec(
        select(InteractionSegment.interaction_id)
        .join(Interaction, col(Interaction.id) == InteractionSegment.interaction_id)
        .where(
            InteractionSegment.agent_id == agent_id,
            col(InteractionSegment.ended_at).is_(None),
            col(InteractionSegment.role).in_(JOINED_ROLES),
            Interaction.state == InteractionState.ACTIVE.value,
            Interaction.channel != "voice",
        )
    )
    return sorted(set(rows.all()))


class TextCollab:
    """Consult and conference on text conversations; every change commits, then publishes."""

    def __init__(self, services: Services) -> None:
        self._services = services

    # -- starting ------------------------------------------------------------------------

    async def consult(
        self, interaction_id: int, *, by_agent_id: int, user_id: int, target_id: int, note: str
    ) -> str:
        """Ask ``target_id`` about the conversation; returns their name."""
        return await self._join(
            interaction_id, by_agent_id, user_id, target_id, SegmentRole.CONSULT, note
        )

    async def conference(
        self, interaction_id: int, *, by_agent_id: int, user_id: int, target_id: int
    ) -> str:
        """Add ``target_id`` to the conversation (a consulted agent is moved in)."""
        return await self._join(
            interaction_id, by_agent_id, user_id, target_id, SegmentRole.CONFERENCE, ""
        )

    async def _join(
        self,
        interaction_id: int,
        by_agent_id: int,
        user_id: int,
        target_id: int,
        role: SegmentRole,
        note: str,
    ) -> str:
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            interaction = await self._held(db, interaction_id, by_agent_id)
            if target_id == by_agent_id:
                raise CollabRefused("pick another agent")
            open_parts = await joined_segments(db, interaction_id)
            moving = None  # a consult that becomes a conference with the same agent
            for part in open_parts:
                if part.agent_id == target_id and part.role == SegmentRole.CONSULT == role:
                    raise CollabRefused("you are already consulting them")
                if part.agent_id == target_id and part.role == SegmentRole.CONFERENCE:
                    raise CollabRefused("they are already in the conversation")
                if part.agent_id == target_id:
                    moving = part
                elif role == SegmentRole.CONSULT and part.role == SegmentRole.CONSULT:
                    raise CollabRefused("close the open consult first")
            # Lock order: interactions first, then agents (by id).
            agents = {a: await lock_agent(db, a) for a in sorted((by_agent_id, target_id))}
            target = agents[target_id]
            name = await agent_name(db, target_id)
            if target is None:
                raise CollabRefused(f"agent {target_id} does not exist")
            if role == SegmentRole.CONSULT and target.presence == "offline":
                raise CollabRefused(f"{name} is offline")
            if role == SegmentRole.CONFERENCE:
                if target.presence not in ROUTABLE_PRESENCE:
                    raise CollabRefused(f"{name} is not taking work now")
                loads = await db.run_sync(agent_loads, [target_id])
                channel = interaction.channel
                if free_slots(target.capacity or {}, loads.get(target_id, {}), channel) <= 0:
                    raise CollabRefused(f"{name} has no free {channel} slot now")
            now = utcnow()
            await self._own_segment(db, interaction, by_agent_id, now)
            if moving is not None:
                self._end(db, moving, "joined the conversation", now)
            segment = InteractionSegment(
                interaction_id=interaction_id,
                agent_id=target_id,
                role=role.value,
                started_at=now,
            )
            db.add(segment)
            await db.flush()
            kind = ControlKind.CONSULT if role == SegmentRole.CONSULT else ControlKind.CONFERENCE
            self._control(db, interaction_id, segment, kind, user_id, target_id, now)
            me = await agent_name(db, by_agent_id)
            if role == SegmentRole.CONSULT:
                line = f"{me} asked {name} for a consult" + (f": {note}" if note else ".")
            else:
                line = f"{me} added {name} to the conversation."
            notes = [self._private(db, interaction, by_agent_id, line)]
            audit.record(
                db,
                user_id=user_id,
                action=f"chat.{role.value}",
                entity="interaction",
                entity_id=interaction_id,
                after={"agent_id": target_id, "channel": interaction.channel},
            )
            await db.flush()
            self._announce(after, interaction, target_id, notes)
            await db.commit()
        await after.publish(self._services.bus)
        return name

    # -- ending --------------------------------------------------------------------------

    async def end(self, interaction_id: int, *, agent_id: int, user_id: int) -> str:
        """Close the consult, or leave (or remove the other agent from) the conference.

        Called by the agent who has the conversation (it ends the other agent's part) or by
        the joined agent (their own part). When the conversation's agent leaves a
        conference, see ``hand_over``. Returns the other agent's name.
        """
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            await write_lock(db)
            interaction = await self._active(db, interaction_id)
            parts = await joined_segments(db, interaction_id)
            if interaction.agent_id == agent_id:
                if not parts:
                    raise CollabRefused("no other agent is on this conversation")
                part = parts[-1]
            else:
                found = [p for p in parts if p.agent_id == agent_id]
                if not found:
                    raise CollabRefused("you are not on this conversation")
                part = found[0]
            now = utcnow()
            consult = part.role == SegmentRole.CONSULT
            self._end(db, part, "closed" if consult else "left", now)
            kind = ControlKind.CONSULT_CANCEL if consult else ControlKind.DROP
            self._control(db, interaction_id, part, kind, user_id, part.agent_id, now)
            other = await agent_name(db, part.agent_id)
            who = await agent_name(db, agent_id)
            if consult:
                line = f"{who} closed the consult with {other if who != other else 'the agent'}."
            elif part.agent_id == agent_id:
                line = f"{who} left the conversation."
            else:
                line = f"{who} removed {other} from the conversation."
            notes = [self._private(db, interaction, agent_id, line)]
            await db.flush()
            self._announce(after, interaction, part.agent_id, notes)
            await db.commit()
        await after.publish(self._services.bus)
        return other

    async def hand_over(self, interaction_id: int, *, agent_id: int, user_id: int) -> str:
        """The conversation's agent passes it to the consulted or conferenced agent (a
        consult transfer, or leaving a conference): routing moves it, one interaction, and
        the other agent's console has it at once. Returns their name."""
        routing = self._services.routing
        async with self._services.sessionmaker() as db:
            await write_lock(db)
            interaction = await self._held(db, interaction_id, agent_id)
            parts = await joined_segments(db, interaction_id)
            if not parts:
                raise CollabRefused("no other agent is on this conversation")
            part = parts[-1]
            now = utcnow()
            # The other agent's slot moves from their joined part to the conversation itself.
            self._end(db, part, "took the conversation", now)
            consult = part.role == SegmentRole.CONSULT
            kind = ControlKind.CONSULT_COMPLETE if consult else ControlKind.TRANSFER
            self._control(db, interaction_id, part, kind, user_id, part.agent_id, now)
            target_id, role = part.agent_id, part.role
            name = await agent_name(db, target_id)
            await db.commit()
        try:
            await routing.transfer_to_agent(interaction_id, target_id, by_agent_id=agent_id)
            async with self._services.sessionmaker() as db:
                offer = await pending_offer(db, interaction_id)
            if offer is None:
                raise CollabRefused("the transfer's offer is gone")
            await routing.accept_offer(offer.id, target_id)  # type: ignore[arg-type]
        except (ValueError, LookupError, PermissionError) as exc:
            await self._reopen(interaction_id, target_id, role)
            raise CollabRefused(str(exc)) from exc
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            await write_lock(db)
            interaction = await self._active(db, interaction_id)
            now = utcnow()
            await self._own_segment(db, interaction, target_id, now)
            how = "took the consult transfer" if consult else "keeps the conversation"
            line = f"{await agent_name(db, agent_id)} left; {name} {how}."
            notes = [self._private(db, interaction, agent_id, line)]
            await db.flush()
            self._announce(after, interaction, agent_id, notes)
            await db.commit()
        await after.publish(self._services.bus)
        return name

    async def _reopen(self, interaction_id: int, agent_id: int, role: str) -> None:
        """A hand-over that routing refused leaves the other agent where they were."""
        async with self._services.sessionmaker() as db:
            db.add(InteractionSegment(interaction_id=interaction_id, agent_id=agent_id, role=role))
            await db.commit()

    # -- helpers -------------------------------------------------------------------------

    async def _active(self, db: AsyncSession, interaction_id: int) -> Interaction:
        await write_lock(db)
        interaction = await lock_interaction(db, interaction_id)
        if interaction is None:
            raise LookupError(f"conversation {interaction_id} does not exist")
        if interaction.channel == "voice":
            raise CollabRefused("this is a call: use the call card's consult and conference")
        if interaction.state != InteractionState.ACTIVE:
            state = str(interaction.state).replace("_", " ")
            raise CollabRefused(f"the conversation is {state}")
        return interaction

    async def _held(self, db: AsyncSession, interaction_id: int, agent_id: int) -> Interaction:
        interaction = await self._active(db, interaction_id)
        if interaction.agent_id != agent_id:
            raise PermissionError("only the agent who has the conversation can do that")
        return interaction

    @staticmethod
    async def _own_segment(
        db: AsyncSession, interaction: Interaction, agent_id: int, now: datetime
    ) -> None:
        """The conversation's agent gets an agent segment when a second agent first joins
        (a text conversation handled alone needs none: ``Interaction.agent_id`` says it)."""
        rows = await db.exec(
            select(InteractionSegment).where(
                InteractionSegment.interaction_id == interaction.id,
                InteractionSegment.agent_id == agent_id,
                InteractionSegment.role == SegmentRole.AGENT.value,
                col(InteractionSegment.ended_at).is_(None),
            )
        )
        if rows.first() is None:
            started = now if interaction.agent_id != agent_id else interaction.answered_at or now
            db.add(
                InteractionSegment(
                    interaction_id=interaction.id,  # type: ignore[arg-type]
                    agent_id=agent_id,
                    role=SegmentRole.AGENT.value,
                    started_at=started,
                )
            )

    @staticmethod
    def _end(db: AsyncSession, segment: InteractionSegment, why: str, now: datetime) -> None:
        segment.ended_at = now
        segment.end_reason = why[:64]
        db.add(segment)

    @staticmethod
    def _control(
        db: AsyncSession,
        interaction_id: int,
        segment: InteractionSegment,
        kind: ControlKind,
        user_id: int | None,
        agent_id: int,
        now: datetime,
    ) -> None:
        db.add(
            ControlEvent(
                interaction_id=interaction_id,
                segment_id=segment.id,
                kind=kind.value,
                user_id=user_id,
                at=now,
                detail={"agent_id": agent_id, "channel": "text"},
            )
        )

    @staticmethod
    def _private(db: AsyncSession, interaction: Interaction, agent_id: int, body: str) -> Message:
        """A private note on the conversation (the customer's side never shows these)."""
        message = Message(
            interaction_id=interaction.id,  # type: ignore[arg-type]
            inbox_id=interaction.inbox_id,
            direction=Direction.OUTBOUND,
            sender_kind=SenderKind.AGENT,
            agent_id=agent_id,
            body=body,
            private=True,
            delivery_status="internal",
        )
        db.add(message)
        return message

    @staticmethod
    def _announce(
        after: AfterCommit, interaction: Interaction, other_agent_id: int, notes: list[Message]
    ) -> None:
        iid: int = interaction.id  # type: ignore[assignment]
        for message in notes:
            after.add(interaction_topic(iid), "message", message_id=message.id)
        after.add(interaction_topic(iid), PARTICIPANTS_EVENT, interaction_id=iid)
        # the other agent's console follows (or drops) the conversation
        after.add(agent_topic(other_agent_id), "conversation", interaction_id=iid)
        if interaction.agent_id is not None:
            after.add(agent_topic(interaction.agent_id), "conversation", interaction_id=iid)
        after.add(SUPERVISOR_TOPIC, "agent", agent_id=other_agent_id)
        after.add(ROUTING_TOPIC, "agent", agent_id=other_agent_id)  # their load changed


async def end_joined(
    db: AsyncSession, interaction: Interaction, after: AfterCommit, *, why: str, now: datetime
) -> None:
    """The conversation left its agent (wrap-up, close, transfer): every open part on it
    ends too, and the joined agents' consoles drop it. Calls keep their own segments."""
    if interaction.channel == "voice":
        return
    rows = await db.exec(
        select(InteractionSegment).where(
            InteractionSegment.interaction_id == interaction.id,
            col(InteractionSegment.ended_at).is_(None),
        )
    )
    for segment in rows.all():
        segment.ended_at = now
        segment.end_reason = why[:64]
        db.add(segment)
        if segment.role in JOINED_ROLES:
            after.add(agent_topic(segment.agent_id), "conversation", interaction_id=interaction.id)
            after.add(ROUTING_TOPIC, "agent", agent_id=segment.agent_id)


async def leave_all(
    db: AsyncSession, agent_id: int, after: AfterCommit, *, why: str, now: datetime
) -> None:
    """An agent going offline leaves every text conversation they were consulted on or
    conferenced into (their slot frees; the other agent keeps the customer)."""
    rows = await db.exec(
        select(InteractionSegment).where(
            InteractionSegment.agent_id == agent_id,
            col(InteractionSegment.ended_at).is_(None),
            col(InteractionSegment.role).in_(JOINED_ROLES),
        )
    )
    for segment in rows.all():
        segment.ended_at = now
        segment.end_reason = why[:64]
        db.add(segment)
        iid = segment.interaction_id
        after.add(interaction_topic(iid), PARTICIPANTS_EVENT, interaction_id=iid)
        after.add(agent_topic(agent_id), "conversation", interaction_id=iid)
