"""Canned responses: find the ones that fit a conversation, and fill in their variables.

Admins write the text, so it is never run as a template: ``fill`` replaces the variables it
knows (``{{customer.name}}``, ``{{agent.name}}``…) with plain values in one pass, and leaves
anything else exactly as written. A variable that is unknown, or has no value here (a
customer who never gave a name), stays visible in the reply, so the agent notices it before
sending. A value is never scanned again, so a customer called ``{{agent.name}}`` stays so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import CannedResponse, Queue

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
VARIABLES: dict[str, str] = {
    "customer.name": "the customer's name",
    "customer.first_name": "the customer's first name",
    "agent.name": "your name, as your colleagues see it",
    "agent.first_name": "your first name",
    "queue.name": "the conversation's queue",
    "interaction.id": "the conversation's number (e.g. for a reference)",
}
SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_SUGGESTIONS = 8


def unknown_variables(text: str) -> list[str]:
    """Variables in ``text`` that ``fill`` will never know (an admin's typo, say)."""
    return sorted({m.group(1) for m in VARIABLE.finditer(text) if m.group(1) not in VARIABLES})


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each known variable that has a value replaced by it (one pass)."""

    def replace(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return value if value else match.group(0)

    return VARIABLE.sub(replace, text)


def values_for(
    *, customer: str | None, agent: str | None, queue: str | None, interaction_id: int | None
) -> dict[str, str]:
    """The variables' values for one conversation (empty when unknown)."""
    customer = (customer or "").strip()
    agent = (agent or "").strip()
    return {
        "customer.name": customer,
        "customer.first_name": customer.split()[0] if customer else "",
        "agent.name": agent,
        "agent.first_name": agent.split()[0] if agent else "",
        "queue.name": (queue or "").strip(),
        "interaction.id": str(interaction_id) if interaction_id else "",
    }


@dataclass(frozen=True, slots=True)
class Suggestion:
    id: int
    shortcut: str
    title: str
    text: str  # filled in, plain text (the template escapes it)
    queue_name: str | None  # None: a global response


async def suggestions(
    db: AsyncSession,
    *,
    queue_id: int | None,
    word: str,
    values: Mapping[str, str],
    limit: int = MAX_SUGGESTIONS,
) -> list[Suggestion]:
    """Active responses for the conversation's queue and the global ones whose shortcut
    starts with ``word`` (or whose title contains it); the queue's own come first."""
    word = word.strip().lower()[:32]
    scope = col(CannedResponse.queue_id).is_(None)
    if queue_id is not None:
        scope = or_(scope, CannedResponse.queue_id == queue_id)
    query = select(CannedResponse).where(col(CannedResponse.active).is_(True), scope)
    if word:
        pattern = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(
            or_(
                col(CannedResponse.shortcut).like(f"{pattern}%", escape="\\"),
                col(CannedResponse.title).ilike(f"%{pattern}%", escape="\\"),
            )
        )
    rows = list((await db.exec(query)).all())
    rows.sort(
        key=lambda r: (
            r.queue_id is None,  # the queue's own first
            not r.shortcut.startswith(word),  # then shortcut matches before title matches
            r.shortcut,
        )
    )
    names = (
        {q.id: q.name for q in (await db.exec(select(Queue).where(Queue.id == queue_id))).all()}
        if queue_id is not None
        else {}
    )
    return [
        Suggestion(
            id=r.id,  # type: ignore[arg-type]
            shortcut=r.shortcut,
            title=r.title,
            text=fill(r.body, values),
            queue_name=names.get(r.queue_id) if r.queue_id is not None else None,
        )
        for r in rows[:limit]
    ]
