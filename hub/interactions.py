"""Interaction state changes: one function, so every change is checked and timestamped."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Interaction, InteractionEvent, InteractionState, utcnow

S = InteractionState

ALLOWED: dict[InteractionState, frozenset[InteractionState]] = {
    # NEW → ACTIVE: an agent starts it (click to dial, hub.outbound_calls)
    S.NEW: frozenset({S.SELF_SERVICE, S.QUEUED, S.ACTIVE, S.CLOSED, S.VOICEMAIL, S.ABANDONED}),
    S.SELF_SERVICE: frozenset({S.QUEUED, S.CLOSED, S.VOICEMAIL, S.ABANDONED}),
    S.QUEUED: frozenset({S.OFFERED, S.QUEUED, S.ABANDONED, S.VOICEMAIL, S.CLOSED}),
    S.OFFERED: frozenset({S.ACTIVE, S.QUEUED, S.ABANDONED}),
    S.ACTIVE: frozenset({S.WRAP_UP, S.QUEUED, S.CLOSED}),
    S.WRAP_UP: frozenset({S.CLOSED}),
    S.CLOSED: frozenset({S.QUEUED}),  # reopened: the customer answered a closed thread
    S.VOICEMAIL: frozenset({S.QUEUED, S.ACTIVE, S.CLOSED}),
    S.ABANDONED: frozenset({S.QUEUED, S.CLOSED}),
}

_WAITING = frozenset({S.QUEUED, S.OFFERED})


class InvalidTransition(ValueError):
    def __init__(self, interaction_id: int | None, current: str, wanted: str) -> None:
        super().__init__(f"interaction {interaction_id} cannot go from {current} to {wanted}")
        self.current = current
        self.wanted = wanted


def transition(
    interaction_id: int | None,
    current: InteractionState,
    to_state: InteractionState,
    now: datetime,
    *,
    queued_at: datetime | None,
    answered_at: datetime | None,
) -> dict[str, Any]:
    """The columns a change from ``current`` to ``to_state`` sets, checked against ``ALLOWED``.

    Pure, so the ORM (``change_state``) and ingest's set-based batch writer apply one rule.
    ``queued_at`` keeps the original wait start across re-offers, so aging is fair; it
    restarts only when the interaction comes back to the queue from outside the wait
    (a transfer or a reopened thread).
    """
    if to_state not in ALLOWED[current]:
        raise InvalidTransition(interaction_id, current, to_state)
    changes: dict[str, Any] = {}
    if to_state is S.QUEUED and (queued_at is None or current not in _WAITING):
        changes["queued_at"] = now
    elif to_state is S.OFFERED:
        changes["offered_at"] = now
    elif to_state is S.ACTIVE and answered_at is None:
        changes["answered_at"] = now
    elif to_state is S.WRAP_UP:
        changes["wrapup_at"] = now
    elif to_state in (S.CLOSED, S.ABANDONED):
        changes["closed_at"] = now
    if to_state is S.QUEUED and current is S.CLOSED:
        changes["closed_at"] = None
    changes["state"] = to_state
    changes["state_changed_at"] = now
    return changes


def change_state(
    db: AsyncSession,
    interaction: Interaction,
    to_state: InteractionState,
    *,
    at: datetime | None = None,
    agent_id: int | None = None,
    user_id: int | None = None,
    reason: str | None = None,
) -> InteractionEvent:
    """Move ``interaction`` to ``to_state`` in the caller's transaction and record the event."""
    event = _move(interaction, interaction.id, to_state, at, agent_id, user_id, reason)
    db.add(interaction)
    db.add(event)
    return event


def create_in_state(
    db: Session,
    interaction: Interaction,
    to_state: InteractionState,
    *,
    at: datetime | None = None,
    reason: str | None = None,
) -> InteractionEvent:
    """Insert a new interaction straight in ``to_state`` (NEW → ``to_state``, checked and
    recorded as ``change_state`` does), in the caller's synchronous transaction: the row
    is written once instead of inserted and then updated."""
    event = _move(interaction, None, to_state, at, None, None, reason)
    db.add(interaction)
    db.flush()
    event.interaction_id = interaction.id  # type: ignore[assignment]
    db.add(event)
    return event


def _move(
    interaction: Interaction,
    interaction_id: int | None,
    to_state: InteractionState,
    at: datetime | None,
    agent_id: int | None,
    user_id: int | None,
    reason: str | None,
) -> InteractionEvent:
    """Apply the transition's column changes to ``interaction``; the event recording it."""
    current = S(interaction.state)
    now = at or utcnow()
    changes = transition(
        interaction_id,
        current,
        to_state,
        now,
        queued_at=interaction.queued_at,
        answered_at=interaction.answered_at,
    )
    for name, value in changes.items():
        setattr(interaction, name, value)
    return InteractionEvent(
        interaction_id=interaction_id,  # type: ignore[arg-type]
        from_state=current,
        to_state=to_state,
        at=now,
        agent_id=agent_id,
        user_id=user_id,
        queue_id=interaction.queue_id,
        reason=reason,
    )
