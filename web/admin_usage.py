"""What uses a configuration row, told before an admin deletes it.

Two kinds of use:
- ``blocking``: history or routing that points at the row (interactions in a queue, queues
  on a business-hours set, contacts closed with a disposition). Deleting would break or
  rewrite them, so the answer is "deactivate instead, or change these first";
- ``removable``: links that go with the row (queues requiring a skill, agents holding it,
  agents not ready for a reason now). The admin sees them and is asked again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import (
    OPEN_STATES,
    Agent,
    AgentSkill,
    CannedResponse,
    Inbox,
    Interaction,
    NotReadyReason,
    Queue,
    QueueSkill,
    User,
)


@dataclass
class Usage:
    blocking: list[str] = field(default_factory=list)
    removable: list[str] = field(default_factory=list)


def _names(rows: list[str]) -> str:
    return ", ".join(sorted(rows))


async def _count(db: AsyncSession, *where: object) -> int:
    return (await db.exec(select(func.count()).select_from(Interaction).where(*where))).one()


async def uses_of(db: AsyncSession, key: str, row_id: int) -> Usage:
    usage = Usage()
    if key == "skills":
        queues = (
            await db.exec(select(Queue.name).join(QueueSkill).where(QueueSkill.skill_id == row_id))
        ).all()
        agents = (
            await db.exec(
                select(User.display_name)
                .join(Agent, col(Agent.user_id) == User.id)
                .join(AgentSkill, col(AgentSkill.agent_id) == Agent.id)
                .where(AgentSkill.skill_id == row_id)
            )
        ).all()
        if queues:
            usage.removable.append(f"required by queue(s) {_names(list(queues))}")
        if agents:
            usage.removable.append(f"held by agent(s) {_names(list(agents))}")
    elif key == "queues":
        total = await _count(db, Interaction.queue_id == row_id)
        open_now = await _count(
            db, Interaction.queue_id == row_id, col(Interaction.state).in_(OPEN_STATES)
        )
        if total:
            usage.blocking.append(f"{total} interaction(s), {open_now} of them open")
        inboxes = (await db.exec(select(Inbox.name).where(Inbox.default_queue_id == row_id))).all()
        if inboxes:
            usage.blocking.append(f"the default queue of inbox(es) {_names(list(inboxes))}")
        overflow = (
            await db.exec(select(Queue.name).where(Queue.overflow_queue_id == row_id))
        ).all()
        if overflow:
            usage.blocking.append(f"the overflow target of queue(s) {_names(list(overflow))}")
        canned = (
            await db.exec(select(CannedResponse.shortcut).where(CannedResponse.queue_id == row_id))
        ).all()
        if canned:
            usage.removable.append(
                f"its canned response(s) {_names([f'/{c}' for c in canned])}, deleted with it"
            )
    elif key == "hours":
        queues = (await db.exec(select(Queue.name).where(Queue.hours_id == row_id))).all()
        inboxes = (await db.exec(select(Inbox.name).where(Inbox.hours_id == row_id))).all()
        if queues:
            usage.blocking.append(f"the hours of queue(s) {_names(list(queues))}")
        if inboxes:
            usage.blocking.append(f"the hours of inbox(es) {_names(list(inboxes))}")
    elif key == "dispositions":
        closed = await _count(db, Interaction.disposition_id == row_id)
        if closed:
            usage.blocking.append(f"{closed} interaction(s) were closed with it")
    elif key == "reasons":
        reason = await db.get(NotReadyReason, row_id)
        if reason is not None:
            agents = (
                await db.exec(
                    select(User.display_name)
                    .join(Agent, col(Agent.user_id) == User.id)
                    .where(Agent.presence_reason == reason.code)
                )
            ).all()
            if agents:
                usage.removable.append(
                    f"agent(s) not ready for this reason now: {_names(list(agents))}"
                )
    return usage
