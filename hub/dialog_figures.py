"""Self-service figures of one dialog over a period, from the traces stored on interactions
(``Interaction.data["ivr"]``, written by the IVR and by text conversations' bots).

For every node: how often it was visited, how many sessions ended there (exits), and of
those how many callers hung up there and how many went to an agent. For the dialog: the
containment rate, the share of finished sessions that ended in self-service without an
agent (the dialog or the caller hung up) against those handed over (queued, or any other
end the hub turns into a queue: transfer, voicemail, callback, a flow that ran out, an
error). Sessions still running (a text conversation mid-dialog) are not counted as either.

Node keys are the diagram's (``main.<node>``, ``<sub-dialog>.<node>``), so the figures can
be drawn on the flow (``hub.dialog_diagram.to_dot(notes=...)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Interaction

SELF_SERVED = frozenset({"hangup"})  # the dialog ended the contact (closed, self-served)
CALLER_HUNG_UP = frozenset({"caller_hangup"})
CONTAINED = SELF_SERVED | CALLER_HUNG_UP


@dataclass
class NodeFigures:
    visits: int = 0
    exits: int = 0
    hangups: int = 0  # the caller hung up while here
    to_agent: int = 0  # handed over to an agent from here

    def note(self) -> str:
        """The extra line drawn under the node's name on the diagram."""
        line = f"visits {self.visits} · exits {self.exits}"
        if self.hangups:
            line += f" · hang-ups {self.hangups}"
        if self.to_agent:
            line += f" · to agent {self.to_agent}"
        return line


@dataclass
class DialogFigures:
    sessions: int = 0
    contained: int = 0
    caller_hangups: int = 0
    handed_over: int = 0
    in_progress: int = 0
    nodes: dict[str, NodeFigures] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return self.contained + self.handed_over

    @property
    def containment(self) -> float | None:
        """Finished sessions that ended without an agent, in % (None without any)."""
        return round(100 * self.contained / self.finished, 1) if self.finished else None

    def notes(self) -> dict[str, str]:
        return {key: figures.note() for key, figures in self.nodes.items()}


def node_key(label: str) -> str:
    """A trace's node label (``node``, or ``sub.node`` inside a sub-dialog) as the
    diagram names it."""
    return label if "." in label else f"main.{label}"


def figures_from_traces(traces: Iterable[dict[str, Any]]) -> DialogFigures:
    """The figures of a set of dialog traces (pure: tests feed it built traces)."""
    out = DialogFigures()
    for trace in traces:
        out.sessions += 1
        nodes = [node_key(str(n)) for n in trace.get("nodes") or []]
        for key in nodes:
            out.nodes.setdefault(key, NodeFigures()).visits += 1
        outcome = trace.get("outcome")
        if not outcome:
            out.in_progress += 1
            continue
        last = out.nodes.setdefault(nodes[-1], NodeFigures()) if nodes else None
        if last is not None:
            last.exits += 1
        if outcome in CONTAINED:
            out.contained += 1
            if outcome in CALLER_HUNG_UP:
                out.caller_hangups += 1
                if last is not None:
                    last.hangups += 1
        else:
            out.handed_over += 1
            if last is not None:
                last.to_agent += 1
    return out


async def dialog_figures(
    db: AsyncSession, dialog_name: str, start: datetime, end: datetime
) -> DialogFigures:
    """The figures of the sessions of ``dialog_name`` (any version) on interactions created
    in [start, end)."""
    traced = Interaction.data[("ivr", "version", "dialog")].as_string()  # type: ignore[index]
    query = select(Interaction.data).where(
        col(Interaction.created_at) >= start,
        col(Interaction.created_at) < end,
        traced == dialog_name,
    )
    rows = (await db.exec(query)).all()
    return figures_from_traces((data or {}).get("ivr") or {} for data in rows)
