"""One database read per interval for every waiting call a process follows.

``hub.nobody_answers`` watches each queued caller (the callback key, the maximum wait) and
used to read the caller's interaction and queue every ``nobody_poll_seconds`` on its own:
with 300 callers waiting, 600 sessions a second, which took the pool and the SQLite
connection threads from the calls arriving. Here one task reads the state, queue and
queue time of every watched interaction, and their queues, in one transaction per
interval, and each watcher waits for the next round that included it. A round starts at
once when the task was idle, so a lone caller is read as soon as it is watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import col, select

from models import Interaction, Queue

log = logging.getLogger(__name__)

_IDS = bindparam("ids", expanding=True)
_WAITING = select(
    Interaction.id, Interaction.state, Interaction.queue_id, Interaction.queued_at
).where(col(Interaction.id).in_(_IDS))
_QUEUES = select(Queue).where(col(Queue.id).in_(_IDS))


@dataclass(frozen=True, slots=True)
class Waiting:
    """What a watcher needs of its interaction (its ``data`` is read only when due)."""

    state: str
    queue_id: int | None
    queued_at: datetime | None


class WaitingPoll:
    """Shared reads for the watched interactions (``add``/``discard``, then ``next``)."""

    def __init__(self, sessionmaker: Any, interval: float) -> None:
        self._sessionmaker = sessionmaker
        self._interval = interval
        self._watched: dict[int, int] = {}  # interaction id → watchers
        self._rows: dict[int, Waiting] = {}
        self._queues: dict[int, Queue] = {}
        self._included: frozenset[int] = frozenset()
        self._round = 0
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, interaction_id: int) -> None:
        self._watched[interaction_id] = self._watched.get(interaction_id, 0) + 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="waiting-poll")

    def discard(self, interaction_id: int) -> None:
        left = self._watched.get(interaction_id, 0) - 1
        if left > 0:
            self._watched[interaction_id] = left
        else:
            self._watched.pop(interaction_id, None)

    async def next(
        self, interaction_id: int, seen: int
    ) -> tuple[int, Waiting | None, Queue | None]:
        """The first round after ``seen`` that read this interaction: (round, its row or
        None when it is gone, its queue)."""
        while self._round <= seen or interaction_id not in self._included:
            if interaction_id not in self._watched:
                raise LookupError(f"interaction {interaction_id} is not watched")
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._run(), name="waiting-poll")
            await self._done.wait()
        row = self._rows.get(interaction_id)
        queue = self._queues.get(row.queue_id) if row is not None and row.queue_id else None
        return self._round, row, queue

    async def _run(self) -> None:
        while self._watched:
            ids = sorted(self._watched)
            try:
                rows, queues = await self._read(ids)
            except asyncio.CancelledError:
                raise
            except Exception:  # a lost connection: the next round reads again
                log.exception("reading the waiting calls failed")
                await asyncio.sleep(self._interval)
                continue
            self._rows, self._queues, self._included = rows, queues, frozenset(ids)
            self._round += 1
            done, self._done = self._done, asyncio.Event()
            done.set()
            await asyncio.sleep(self._interval)

    async def _read(self, ids: list[int]) -> tuple[dict[int, Waiting], dict[int, Queue]]:
        async with self._sessionmaker() as db:
            found = (await db.exec(_WAITING, params={"ids": ids})).all()
            rows = {i: Waiting(str(state), q, at) for i, state, q, at in found}
            queue_ids = sorted({w.queue_id for w in rows.values() if w.queue_id is not None})
            queues = {}
            if queue_ids:
                result = await db.exec(_QUEUES, params={"ids": queue_ids})
                queues = {q.id: q for q in result.all()}
        return rows, queues  # type: ignore[return-value]

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
