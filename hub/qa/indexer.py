"""Keeping the QA search index up to date: every new transcript segment and text message.

Messages arrive through several paths (set-based ingest batches, the outbox, the console),
some of them plain Core inserts, so the index does not hang on ORM hooks: an indexer in each
hub process looks for segments and messages that have no ``QaDoc`` yet, every
``HUB_QA_INDEX_SECONDS`` and when woken. Message text is redacted here (``hub.qa.redaction``,
on a worker thread: the NER model must not hold the event loop); segment text is redacted
already by the transcription pipeline. Inserts skip rows another process indexed first
(``ON CONFLICT DO NOTHING`` on ``(source, source_id)``), so several hubs may share one
database. After indexing, the interactions that got new text are categorized again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from hub.qa.redaction import redact
from hub.tasks import cancel_and_wait
from models import DocSource, QaDoc

log = logging.getLogger(__name__)

BATCH = 500
# Rows newer than (highest indexed id − WINDOW) are checked again on each pass: ids that
# commit out of order (PostgreSQL sequences) are still found.
WINDOW = 5000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_DOCS: sa.Table = QaDoc.__table__  # type: ignore[attr-defined]

_SPEAKER_OF_SENDER = {"contact": "customer", "agent": "agent", "bot": "ivr", "system": "system"}


def _clean(text: str) -> str:
    """No control characters: the snippet markers are \\x02 and \\x03."""
    return _CONTROL.sub(" ", text)


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _new_segments(db: Session, low: int) -> list[dict[str, Any]]:
    rows = db.execute(
        sa.text(
            "SELECT s.id, s.interaction_id, s.speaker, s.agent_id, s.start_ms, s.text, "
            "COALESCE(i.answered_at, i.created_at) FROM transcriptsegment s "
            "JOIN interaction i ON i.id = s.interaction_id "
            "LEFT JOIN qadoc d ON d.source = 'segment' AND d.source_id = s.id "
            "WHERE d.id IS NULL AND s.id > :low ORDER BY s.id LIMIT :n"
        ),
        {"low": low, "n": BATCH},
    ).all()
    return [
        {
            "interaction_id": r[1],
            "source": DocSource.SEGMENT.value,
            "source_id": r[0],
            "speaker": r[2],
            "agent_id": r[3],
            "start_ms": r[4],
            "text": _clean(r[5]),
            "at": _aware(r[6]) + timedelta(milliseconds=r[4] or 0),
        }
        for r in rows
    ]


def _new_messages(db: Session, low: int) -> list[dict[str, Any]]:
    rows = db.execute(
        sa.text(
            "SELECT m.id, m.interaction_id, m.sender_kind, m.agent_id, m.subject, m.body, "
            "m.created_at FROM message m "
            "LEFT JOIN qadoc d ON d.source = 'message' AND d.source_id = m.id "
            "WHERE d.id IS NULL AND m.id > :low AND m.private = :no "
            "ORDER BY m.id LIMIT :n"
        ),
        {"low": low, "n": BATCH, "no": False},
    ).all()
    docs = []
    for r in rows:
        text = "\n".join(part for part in (r[4], r[5]) if part)
        docs.append(
            {
                "interaction_id": r[1],
                "source": DocSource.MESSAGE.value,
                "source_id": r[0],
                "speaker": _SPEAKER_OF_SENDER.get(r[2], "system"),
                "agent_id": r[3],
                "start_ms": None,
                "text": _clean(text),
                "at": _aware(r[6]),
            }
        )
    return docs


def _insert(db: Session, docs: Sequence[dict[str, Any]]) -> None:
    if not docs:
        return
    insert = sqlite_insert if db.get_bind().dialect.name == "sqlite" else pg_insert
    db.execute(insert(_DOCS).on_conflict_do_nothing(index_elements=["source", "source_id"]), docs)


def redact_docs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Message docs with their text redacted (CPU-bound: run on a thread)."""
    return [{**d, "text": redact(d["text"]).text} for d in docs]


class QaIndexer:
    """One per hub process; ``run_once`` is also what tests and the bench call."""

    def __init__(self, services: Any) -> None:
        self.services = services
        self._low = {"segment": 0, "message": 0}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="qa-indexer")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        interval = self.services.settings.qa_index_seconds
        while True:
            try:
                while await self.run_once():
                    pass
            except Exception:
                log.exception("QA indexing pass failed; trying again in %.1f s", interval)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    async def run_once(self) -> int:
        """Index one batch of each source; returns how many documents were new."""
        async with self._lock:
            async with self.services.sessionmaker() as db:
                segments = await db.run_sync(_new_segments, self._low["segment"])
                messages = await db.run_sync(_new_messages, self._low["message"])
            if messages:
                messages = await asyncio.to_thread(redact_docs, messages)
            docs = segments + messages
            if not docs:
                return 0
            await self.services.transactions.run(_insert, docs)
            for source, rows in (("segment", segments), ("message", messages)):
                if rows:
                    top = max(d["source_id"] for d in rows)
                    self._low[source] = max(self._low[source], top - WINDOW)
            interactions = sorted({d["interaction_id"] for d in docs})
        await self._categorize(interactions)
        return len(docs)

    async def _categorize(self, interaction_ids: list[int]) -> None:
        from hub.qa.categories import categorize_interaction

        for interaction_id in interaction_ids:
            async with self.services.sessionmaker() as db:
                await categorize_interaction(db, interaction_id)
                await db.commit()
