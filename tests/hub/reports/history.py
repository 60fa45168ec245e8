"""Built histories for report tests: real rows, written through ``change_state`` (the one
function the hub changes states with), at chosen times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from hub.interactions import change_state
from models import (
    Agent,
    Contact,
    Inbox,
    Interaction,
    InteractionState,
    PresenceChange,
    Queue,
    User,
)

S = InteractionState


@dataclass(frozen=True)
class Spec:
    """One contact: when it entered the queue and what became of it (seconds)."""

    queued_at: datetime
    outcome: str  # answered | abandoned | voicemail | contained
    wait: float = 0.0
    talk: float = 0.0
    wrap: float = 0.0
    agent: str = "alice"
    channel: str = "voice"
    queue: str = "General"
    customer: str = "c1"
    bot_seconds: float = 0.0  # time in the IVR first (voice)


def ids(db: Session) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    agents = {u: a for a, u in db.exec(select(Agent.id, User.username).join(User)).all()}
    queues = {n: i for i, n in db.exec(select(Queue.id, Queue.name)).all()}
    inboxes = {k: i for i, k in db.exec(select(Inbox.id, Inbox.kind)).all()}
    return agents, queues, inboxes  # type: ignore[return-value]


def build(db: Session, specs: list[Spec]) -> list[int]:
    """Write the specs' interactions and events; returns their ids in order."""
    agents, queues, inboxes = ids(db)
    contacts: dict[str, int] = {}
    made = []
    for spec in specs:
        if spec.customer not in contacts:
            contact = Contact(name=f"Customer {spec.customer}")
            db.add(contact)
            db.flush()
            contacts[spec.customer] = contact.id  # type: ignore[assignment]
        start = spec.queued_at - timedelta(seconds=spec.bot_seconds)
        ix = Interaction(
            inbox_id=inboxes[spec.channel],
            contact_id=contacts[spec.customer],
            channel=spec.channel,
            queue_id=queues[spec.queue],
            created_at=start,
        )
        db.add(ix)
        db.flush()
        agent = agents[spec.agent]
        if spec.bot_seconds or spec.outcome == "contained":
            change_state(db, ix, S.SELF_SERVICE, at=start)  # type: ignore[arg-type]
        if spec.outcome == "contained":
            change_state(db, ix, S.CLOSED, at=start + timedelta(seconds=60))  # type: ignore[arg-type]
            made.append(ix.id)
            continue
        t = spec.queued_at
        change_state(db, ix, S.QUEUED, at=t)  # type: ignore[arg-type]
        if spec.outcome == "abandoned":
            change_state(db, ix, S.ABANDONED, at=t + timedelta(seconds=spec.wait))  # type: ignore[arg-type]
        elif spec.outcome == "voicemail":
            change_state(db, ix, S.VOICEMAIL, at=t + timedelta(seconds=spec.wait))  # type: ignore[arg-type]
        else:
            ring = t + timedelta(seconds=max(spec.wait - 5, 0))
            change_state(db, ix, S.OFFERED, at=ring, agent_id=agent)  # type: ignore[arg-type]
            t += timedelta(seconds=spec.wait)
            change_state(db, ix, S.ACTIVE, at=t, agent_id=agent)  # type: ignore[arg-type]
            t += timedelta(seconds=spec.talk)
            change_state(db, ix, S.WRAP_UP, at=t, agent_id=agent)  # type: ignore[arg-type]
            t += timedelta(seconds=spec.wrap)
            change_state(db, ix, S.CLOSED, at=t, agent_id=agent)  # type: ignore[arg-type]
        made.append(ix.id)
    db.flush()
    return made  # type: ignore[return-value]


def presence(db: Session, username: str, changes: list[tuple[datetime, str, str | None]]) -> None:
    agents, _, _ = ids(db)
    for at, state, reason in changes:
        db.add(PresenceChange(agent_id=agents[username], state=state, reason=reason, at=at))
    db.flush()
