"""Agent presence: offline, ready, not-ready (admin reason codes), busy and wrap-up.

Every change is stored as a PresenceChange, because occupancy and not-ready reports are
computed from that history. Routing moves agents between READY, BUSY and WRAP_UP as work
starts and ends (``settle``); agents and supervisors set the rest (``PresenceService``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.events import ROUTING_TOPIC, SUPERVISOR_TOPIC, agent_topic
from hub.routing.offers import end_offer
from hub.routing.work import (
    AfterCommit,
    agent_work_states,
    lock_agent,
    write_lock,
)
from models import (
    Agent,
    Interaction,
    InteractionState,
    NotReadyReason,
    Offer,
    OfferOutcome,
    PresenceChange,
    PresenceState,
    utcnow,
)

if TYPE_CHECKING:
    from hub.services import Services

P = PresenceState
MISSED_REASON = "missed"


class UnknownAgent(LookupError):
    pass


class UnknownReason(ValueError):
    """A not-ready reason code that admins have not defined (or have disabled)."""


def apply_presence(
    db: AsyncSession,
    agent: Agent,
    state: PresenceState,
    after: AfterCommit,
    *,
    reason: str | None = None,
    by_user_id: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Set presence in the caller's transaction and store the change; False if unchanged."""
    if agent.presence == state and agent.presence_reason == reason:
        return False
    now = now or utcnow()
    if state is P.READY and agent.presence != P.READY:
        agent.idle_since = now  # free from now on: longest-idle routing reads this
    agent.presence = state
    agent.presence_reason = reason
    agent.presence_since = now
    db.add(agent)
    db.add(
        PresenceChange(
            agent_id=agent.id,  # type: ignore[arg-type]
            state=state,
            reason=reason,
            at=now,
            by_user_id=by_user_id,
        )
    )
    after.add(agent_topic(agent.id), "presence", state=state.value, reason=reason)  # type: ignore[arg-type]
    after.add(SUPERVISOR_TOPIC, "agent", agent_id=agent.id)
    after.add(ROUTING_TOPIC, "agent", agent_id=agent.id)  # may take work now, or no longer
    return True


async def settle(
    db: AsyncSession,
    agent: Agent,
    after: AfterCommit,
    *,
    next_presence: PresenceState | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> None:
    """Presence after the agent's work changed: BUSY while something is ACTIVE, WRAP_UP
    while only wrap-ups remain, then ``next_presence`` (READY by default).

    An agent who is NOT_READY or OFFLINE stays so unless ``next_presence`` says otherwise;
    asking for NOT_READY/OFFLINE applies at once (remaining work is finished, nothing new).
    """
    if next_presence in (P.NOT_READY, P.OFFLINE):
        apply_presence(db, agent, next_presence, after, reason=reason, now=now)
        return
    if next_presence is None and agent.presence in (P.NOT_READY, P.OFFLINE):
        return
    states = set(await agent_work_states(db, agent.id))  # type: ignore[arg-type]
    if InteractionState.ACTIVE in states:
        target = P.BUSY
    elif InteractionState.WRAP_UP in states and next_presence is None:
        target = P.WRAP_UP
    else:
        target = next_presence or P.READY
    apply_presence(
        db, agent, target, after, reason=None if target is not P.NOT_READY else reason, now=now
    )


async def lock_agent_offers(
    db: AsyncSession, agent_ids: list[int], *, skip_locked: bool = False
) -> list[tuple[Offer, Interaction]]:
    """The agents' pending offers with their interactions locked (in interaction order).

    Lock only: changes come after the agents themselves are locked, because inserting a row
    that references an agent takes a share lock on it, and two transactions upgrading a
    share lock on one agent deadlock each other.
    """
    if not agent_ids:
        return []
    offers = (
        await db.exec(
            select(Offer)
            .where(col(Offer.agent_id).in_(agent_ids), Offer.outcome == OfferOutcome.PENDING)
            .order_by(Offer.interaction_id)  # one lock order for everyone
        )
    ).all()
    locked = []
    for offer in offers:
        statement = (
            select(Interaction)
            .where(Interaction.id == offer.interaction_id)
            .with_for_update(skip_locked=skip_locked)
            .execution_options(populate_existing=True)
        )
        interaction = (await db.exec(statement)).first()
        if interaction is None:
            continue
        await db.refresh(offer)  # current now that its interaction is locked
        if offer.outcome == OfferOutcome.PENDING:
            locked.append((offer, interaction))
    return locked


def cancel_offers(
    db: AsyncSession,
    offers: list[tuple[Offer, Interaction]],
    after: AfterCommit,
    *,
    now: datetime,
    reason: str,
) -> None:
    for offer, interaction in offers:
        end_offer(db, offer, interaction, OfferOutcome.CANCELLED, after, now=now, reason=reason)


async def check_reason(db: AsyncSession, state: PresenceState, reason: str | None) -> None:
    """A not-ready reason must be one of the admin-defined, active codes."""
    if state is not P.NOT_READY or reason is None:
        return
    known = (
        await db.exec(
            select(NotReadyReason).where(
                NotReadyReason.code == reason,
                NotReadyReason.active == True,  # noqa: E712
            )
        )
    ).first()
    if known is None:
        raise UnknownReason(f"not-ready reason {reason!r} is not defined")


class PresenceService:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def set_presence(
        self,
        agent_id: int,
        state: PresenceState,
        reason: str | None = None,
        *,
        by_user_id: int | None = None,
    ) -> Agent:
        """Set an agent's presence; a supervisor forcing it (``by_user_id`` is not the agent)
        is audited. READY while still working becomes BUSY. Leaving routable states
        withdraws pending offers, which go to the next agent."""
        state = PresenceState(state)
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            await write_lock(db)
            await check_reason(db, state, reason)
            now = utcnow()
            # Lock order everywhere: interactions first, then agents (no deadlocks).
            ringing = []
            if state in (P.NOT_READY, P.OFFLINE):
                ringing = await lock_agent_offers(db, [agent_id])
            agent = await lock_agent(db, agent_id)
            if agent is None:
                raise UnknownAgent(f"agent {agent_id} does not exist")
            cancel_offers(db, ringing, after, now=now, reason=f"agent {state}")
            before = audit.snapshot(agent)
            if state is P.READY:
                states = set(await agent_work_states(db, agent_id))
                if InteractionState.ACTIVE in states:
                    state = P.BUSY
            stored_reason = reason if state in (P.NOT_READY, P.OFFLINE) else None  # "logout"
            changed = apply_presence(
                db, agent, state, after, reason=stored_reason, by_user_id=by_user_id, now=now
            )
            if changed and by_user_id is not None and by_user_id != agent.user_id:
                audit.record(
                    db,
                    user_id=by_user_id,
                    action="force-presence",
                    entity="agent",
                    entity_id=agent_id,
                    before=before,
                    after=audit.snapshot(agent),
                )
            await db.commit()
        await after.publish(self._services.bus)
        return agent
