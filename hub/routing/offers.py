"""Ending an offer without an answer: the interaction goes back to the queue, in one place."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.events import ROUTING_TOPIC, SUPERVISOR_TOPIC, agent_topic, interaction_topic
from hub.interactions import change_state
from hub.routing.work import AfterCommit
from models import Interaction, InteractionState, Offer, OfferOutcome


def end_offer(
    db: AsyncSession,
    offer: Offer,
    interaction: Interaction,
    outcome: OfferOutcome,
    after: AfterCommit,
    *,
    now: datetime,
    reason: str,
) -> None:
    """Close a PENDING offer (rejected, timed out, cancelled); OFFERED goes back to QUEUED.

    ``queued_at`` is kept by ``change_state``, so the item keeps its place by age.
    """
    offer.outcome = outcome
    offer.decided_at = now
    db.add(offer)
    if interaction.state == InteractionState.OFFERED and interaction.agent_id == offer.agent_id:
        change_state(
            db, interaction, InteractionState.QUEUED, at=now, agent_id=offer.agent_id, reason=reason
        )
        interaction.agent_id = None
        after.add(interaction_topic(interaction.id), "state", state="queued", agent_id=None)  # type: ignore[arg-type]
        after.add(ROUTING_TOPIC, "interaction", interaction_id=interaction.id)
    after.add(ROUTING_TOPIC, "agent", agent_id=offer.agent_id)  # the slot is free again
    after.add(
        agent_topic(offer.agent_id),
        "offer-cancelled",
        offer_id=offer.id,
        interaction_id=interaction.id,
    )
    after.add(SUPERVISOR_TOPIC, "queue", queue_id=interaction.queue_id)


async def pending_offer(db: AsyncSession, interaction_id: int) -> Offer | None:
    """The interaction's one pending offer, if any (the unique index allows one)."""
    return (
        await db.exec(
            select(Offer).where(
                Offer.interaction_id == interaction_id, Offer.outcome == OfferOutcome.PENDING
            )
        )
    ).first()


async def cancel_pending(
    db: AsyncSession, interaction: Interaction, after: AfterCommit, *, now: datetime, reason: str
) -> None:
    """Withdraw the interaction's pending offer, if there is one."""
    offer = await pending_offer(db, interaction.id)  # type: ignore[arg-type]
    if offer is not None:
        end_offer(db, offer, interaction, OfferOutcome.CANCELLED, after, now=now, reason=reason)
