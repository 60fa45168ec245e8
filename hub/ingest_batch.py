"""Storing one ingest batch with a handful of set-based statements instead of ORM objects.

``store_batch`` runs in the writer's transaction. After one query for the inboxes (an
unknown inbox or a bad address fails its message before any write), it stores the whole
batch inside one savepoint: one query each for the messages already stored (redeliveries),
the senders' contacts and the threads the messages may continue; then one INSERT each for
new contacts, interactions, state events and messages. If anything in it fails (a redelivery
racing its twin in another process, a contact created concurrently, a value the database
refuses), that savepoint is rolled back and every message is stored alone, in its own
savepoint and with the same code, so one bad message fails alone and a racing redelivery is
reported as a duplicate with the original's ids.

The rules are those of the per-message path this replaced: dedupe by (inbox, source_id);
thread by ``thread_refs`` (newest referenced message first), then by a ``[#id]`` subject tag
of the same customer, then, on conversational channels, the newest open interaction of that
contact on that inbox; a closed or abandoned thread is reopened; a new interaction is queued
(or, on a text channel whose inbox has a published dialog, meets that dialog first), or
closed at once when the contact is blocked. Messages earlier in a batch count for those
that follow, exactly as if each had been committed alone; the one thing a batch cannot see is
a subject tag naming an interaction created earlier in the same batch (its id is not known
until the insert, and no customer can have been told it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from channels.base import ChannelKind, DeliveryStatus, InboundMessage, IngestResult
from hub.attachments import AttachmentStore
from hub.contacts import BLOCKED_CLOSE_REASON, ContactRef, normalize_address, resolve_contacts
from hub.interactions import transition
from models import (
    OPEN_STATES,
    Dialog,
    Direction,
    Inbox,
    Interaction,
    InteractionEvent,
    InteractionState,
    Message,
    SenderKind,
    utcnow,
)

log = logging.getLogger(__name__)

# Channels where a customer's next message continues the open conversation.
CONVERSATIONAL = frozenset(
    {ChannelKind.WEBCHAT, ChannelKind.SMS, ChannelKind.TELEGRAM, ChannelKind.FAX}
)
# Text channels whose new conversations meet the inbox's published dialog (hub.text_dialogs).
DIALOG_CHANNELS = frozenset({ChannelKind.WEBCHAT, ChannelKind.SMS, ChannelKind.TELEGRAM})
SUBJECT_TAG = re.compile(r"\[#(\d{1,12})\]")
_MAX_ID = 2**31 - 1  # a tag beyond the id column's range names no interaction
_OPEN_FOR_APPEND = tuple(state.value for state in OPEN_STATES)
_REOPENED_FROM = (InteractionState.CLOSED, InteractionState.ABANDONED)

_INBOXES: sa.Table = Inbox.__table__  # type: ignore[attr-defined]
_INTERACTIONS: sa.Table = Interaction.__table__  # type: ignore[attr-defined]
_EVENTS: sa.Table = InteractionEvent.__table__  # type: ignore[attr-defined]
_MESSAGES: sa.Table = Message.__table__  # type: ignore[attr-defined]
_DIALOGS: sa.Table = Dialog.__table__  # type: ignore[attr-defined]
_B, _I, _M, _D = _INBOXES.c, _INTERACTIONS.c, _MESSAGES.c, _DIALOGS.c


def _many(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name, expanding=True)


# Module-level statements: compiled once, reused from SQLAlchemy's cache.
_THREAD_COLUMNS = (
    _I.id,
    _I.inbox_id,
    _I.contact_id,
    _I.state,
    _I.agent_id,
    _I.queue_id,
    _I.queued_at,
    _I.answered_at,
)
_LOAD_INBOXES = (
    sa.select(
        _B.id,
        _B.active,
        _B.default_queue_id,
        _D.published_version_id.is_not(None).label("has_dialog"),
    )
    .outerjoin(_DIALOGS, _D.id == _B.dialog_id)
    .where(_B.id.in_(_many("ids")))
)
_STORED = (
    sa.select(_M.source_id, _M.id, _M.interaction_id, _I.contact_id)
    .join_from(_MESSAGES, _INTERACTIONS, _I.id == _M.interaction_id)
    .where(_M.inbox_id == sa.bindparam("inbox"), _M.source_id.in_(_many("source_ids")))
)
_BY_REFERENCE = (
    sa.select(_M.source_id, _M.id.label("message_id"), *_THREAD_COLUMNS)
    .join_from(_MESSAGES, _INTERACTIONS, _I.id == _M.interaction_id)
    .where(_M.inbox_id == sa.bindparam("inbox"), _M.source_id.in_(_many("refs")))
)
_BY_ID = sa.select(*_THREAD_COLUMNS).where(_I.id.in_(_many("ids")))
_OPEN = sa.select(*_THREAD_COLUMNS).where(
    _I.inbox_id.in_(_many("inboxes")),
    _I.contact_id.in_(_many("contacts")),
    _I.state.in_(_OPEN_FOR_APPEND),
)
_NEW_INTERACTIONS = sa.insert(_INTERACTIONS).returning(_I.id, sort_by_parameter_order=True)
_NEW_EVENTS = sa.insert(_EVENTS)
_NEW_MESSAGES = sa.insert(_MESSAGES).returning(_M.id, sort_by_parameter_order=True)


class UnknownInbox(LookupError):
    """The message names an inbox that does not exist or is disabled."""


@dataclass(slots=True)
class Outcome:
    """What became of one message: its result or its error, and the interaction's state
    right after it (for the events published after the commit)."""

    result: IngestResult | None = None
    error: BaseException | None = None
    state: str = ""
    agent_id: int | None = None
    created: bool = False


@dataclass(frozen=True, slots=True)
class _Item:
    """One message checked and described before the batch writes: what fails here (an
    unknown inbox, a bad address) fails this message alone."""

    index: int
    message: InboundMessage
    channel: ChannelKind
    inbox: sa.Row[Any]  # id, active, default_queue_id
    address: tuple[str, str]  # (kind, normalized address)
    row: dict[str, Any]  # its Message row, but for interaction_id


@dataclass(slots=True, eq=False)
class _Thread:
    """An interaction as the batch sees it: loaded, or new (``id`` None until inserted)."""

    row: dict[str, Any]
    new: bool
    rank: tuple[int, int]  # newest last: existing by id, then new ones in creation order
    changes: dict[str, Any] = field(default_factory=dict)  # to UPDATE (existing ones)

    @property
    def id(self) -> int | None:
        return self.row.get("id")

    def apply(self, changes: dict[str, Any]) -> None:
        self.row.update(changes)
        if not self.new:
            self.changes.update(changes)


def store_batch(
    conn: Connection, messages: Sequence[InboundMessage], attachments: AttachmentStore
) -> list[Outcome]:
    """Store ``messages`` in the caller's transaction; one outcome each, in order."""
    outcomes = [Outcome() for _ in messages]
    ids = sorted({message.inbox_id for message in messages})
    inboxes = {row.id: row for row in conn.execute(_LOAD_INBOXES, {"ids": ids})}
    items: list[_Item] = []
    for index, message in enumerate(messages):
        try:
            items.append(_prepare(index, message, inboxes, attachments))
        except Exception as exc:  # unknown inbox, bad address: this message only
            outcomes[index].error = exc
    if not items:
        return outcomes
    try:
        with conn.begin_nested():
            stored = _Batch(conn, items).store()
    except Exception as exc:
        log.debug("ingest batch of %d stored one by one: %s", len(items), exc)
        stored = {item.index: _store_alone(conn, item) for item in items}
    for index, outcome in stored.items():
        outcomes[index] = outcome
    return outcomes


def _store_alone(conn: Connection, item: _Item) -> Outcome:
    """One message in its own savepoint; a lost unique race is a duplicate or a retry."""
    for attempt in (1, 2):
        try:
            with conn.begin_nested():
                return _Batch(conn, [item]).store()[item.index]
        except IntegrityError as exc:
            duplicate = find_duplicate(conn, item.message)
            if duplicate is not None:
                return Outcome(result=duplicate)
            if attempt == 2:
                return Outcome(error=exc)
            # Another writer created this sender's contact meanwhile: the retry finds it.
        except Exception as exc:
            return Outcome(error=exc)
    raise AssertionError("unreachable")


def find_duplicate(conn: Connection, message: InboundMessage) -> IngestResult | None:
    """The stored message with this message's inbox and ``source_id``, as a duplicate."""
    if not message.source_id:
        return None
    params = {"inbox": message.inbox_id, "source_ids": [message.source_id]}
    row = conn.execute(_STORED, params).first()
    return None if row is None else IngestResult(row.id, row.interaction_id, row.contact_id, True)


def _prepare(
    index: int,
    message: InboundMessage,
    inboxes: dict[int, sa.Row[Any]],
    attachments: AttachmentStore,
) -> _Item:
    """Check and describe ``message`` before any write: what fails here fails it alone."""
    inbox = inboxes.get(message.inbox_id)
    if inbox is None or not inbox.active:
        raise UnknownInbox(f"inbox {message.inbox_id} does not exist or is disabled")
    sender = message.sender
    address = (sender.kind.value, normalize_address(sender.kind, sender.value))
    row = {
        "inbox_id": message.inbox_id,
        "direction": Direction.INBOUND.value,
        "sender_kind": SenderKind.CONTACT.value,
        "content_type": message.content_type,
        "body": message.body,
        "html": message.html,
        "subject": message.subject and message.subject[:300],  # the column's width
        "attachments": [
            attachments.describe(a.filename, a.content_type, a.data) for a in message.attachments
        ],
        "delivery_status": DeliveryStatus.RECEIVED.value,
        "source_id": message.source_id,
        "meta": {**message.meta, "problems": list(message.problems)}
        if message.problems
        else dict(message.meta),
        "created_at": message.received_at,
    }
    return _Item(index, message, ChannelKind(message.channel), inbox, address, row)


class _Batch:
    """One attempt at storing ``items`` together: read what they need, plan, then write."""

    def __init__(self, conn: Connection, items: list[_Item]) -> None:
        self.conn = conn
        self.items = items
        self.threads: dict[int, _Thread] = {}  # existing interactions, by id
        self.owned: dict[tuple[int, int], list[_Thread]] = {}  # (inbox, contact) → threads
        self.new_threads: list[_Thread] = []
        self.events: list[tuple[_Thread, dict[str, Any]]] = []
        self.ref_rows: dict[int, list[tuple[int, str, int]]] = {}  # inbox → (msg, src, thread)
        # This batch's messages so far: (inbox, source_id) → (order planned, thread).
        self.planned: dict[tuple[int, str], tuple[int, _Thread]] = {}

    def store(self) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        fresh, twins = self._split_redeliveries(outcomes)
        if fresh:
            outcomes.update(self._store_fresh(fresh))
        for twin, first in twins:
            original = outcomes[first.index].result
            assert original is not None
            outcomes[twin.index] = Outcome(result=replace(original, duplicate=True))
        return outcomes

    # reads ---------------------------------------------------------------------------------
    def _split_redeliveries(
        self, outcomes: dict[int, Outcome]
    ) -> tuple[list[_Item], list[tuple[_Item, _Item]]]:
        """(messages to store, [(a redelivery in this batch, its first copy)]); redeliveries
        of stored messages get their outcome now."""
        wanted: dict[int, list[str]] = {}
        for item in self.items:
            if item.message.source_id:
                wanted.setdefault(item.message.inbox_id, []).append(item.message.source_id)
        stored: dict[tuple[int, str], IngestResult] = {}
        for inbox_id, source_ids in wanted.items():
            params = {"inbox": inbox_id, "source_ids": sorted(set(source_ids))}
            for row in self.conn.execute(_STORED, params):
                result = IngestResult(row.id, row.interaction_id, row.contact_id, True)
                stored[(inbox_id, row.source_id)] = result
        fresh: list[_Item] = []
        twins: list[tuple[_Item, _Item]] = []
        first: dict[tuple[int, str], _Item] = {}
        for item in self.items:
            key = (item.message.inbox_id, item.message.source_id or "")
            if not item.message.source_id:
                fresh.append(item)
            elif key in stored:
                outcomes[item.index] = Outcome(result=stored[key])
            elif key in first:
                twins.append((item, first[key]))
            else:
                first[key] = item
                fresh.append(item)
        return fresh, twins

    def _load_threads(
        self, items: list[_Item], contacts: dict[tuple[str, str], ContactRef]
    ) -> None:
        """Every existing interaction the items may continue, in at most three queries."""
        refs: dict[int, set[str]] = {}
        tags: set[int] = set()
        owners: set[tuple[int, int]] = set()
        for item in items:
            message = item.message
            if message.thread_refs:
                refs.setdefault(message.inbox_id, set()).update(message.thread_refs)
            tag = SUBJECT_TAG.search(message.subject or "")
            if tag and int(tag.group(1)) <= _MAX_ID:
                tags.add(int(tag.group(1)))
            if item.channel in CONVERSATIONAL:
                owners.add((message.inbox_id, contacts[item.address].id))
        for inbox_id, sources in refs.items():
            rows = self.conn.execute(_BY_REFERENCE, {"inbox": inbox_id, "refs": sorted(sources)})
            for row in rows:
                thread = self._known(row)
                self.ref_rows.setdefault(inbox_id, []).append(
                    (row.message_id, row.source_id, thread.row["id"])
                )
        if tags:
            self._register(self.conn.execute(_BY_ID, {"ids": sorted(tags)}))
        if owners:
            params = {
                "inboxes": sorted({i for i, _ in owners}),
                "contacts": sorted({c for _, c in owners}),
            }
            self._register(self.conn.execute(_OPEN, params))

    def _register(self, rows: Iterable[sa.Row[Any]]) -> None:
        for row in rows:
            self._known(row)

    def _known(self, row: sa.Row[Any]) -> _Thread:
        thread = self.threads.get(row.id)
        if thread is None:
            values = {column.name: getattr(row, column.name) for column in _THREAD_COLUMNS}
            thread = _Thread(values, new=False, rank=(0, row.id))
            self.threads[row.id] = thread
            self.owned.setdefault((row.inbox_id, row.contact_id), []).append(thread)
        return thread

    # plan ----------------------------------------------------------------------------------
    def _store_fresh(self, items: list[_Item]) -> dict[int, Outcome]:
        names: dict[tuple[str, str], str] = {}
        for item in items:
            names.setdefault(item.address, item.message.sender.display_name or "")
        contacts = resolve_contacts(self.conn, names)
        self._load_threads(items, contacts)
        plan: list[tuple[_Item, _Thread, ContactRef, Outcome]] = []
        for item in items:
            contact = contacts[item.address]
            thread, created = self._thread_for(item, contact)
            state, agent_id = thread.row["state"], thread.row["agent_id"]
            plan.append((item, thread, contact, Outcome(None, None, state, agent_id, created)))
            if item.message.source_id:
                key = (item.message.inbox_id, item.message.source_id)
                self.planned[key] = (len(self.planned), thread)
        return self._write(plan)

    def _thread_for(self, item: _Item, contact: ContactRef) -> tuple[_Thread, bool]:
        """The interaction this message continues (reopened if need be), or a new one."""
        thread = self._by_reference(item, contact)
        if thread is None and item.channel in CONVERSATIONAL:
            thread = self._open_thread(item.message.inbox_id, contact.id)
        if thread is None:
            return self._new_thread(item, contact), True
        if thread.row["state"] in _REOPENED_FROM:
            self._change(thread, InteractionState.QUEUED, "customer wrote again")
        return thread, False

    def _new_thread(self, item: _Item, contact: ContactRef) -> _Thread:
        """A new interaction: queued, or closed at once when the contact is blocked."""
        message = item.message
        now = utcnow()
        thread = _Thread(
            {
                "inbox_id": message.inbox_id,
                "contact_id": contact.id,
                "channel": item.channel.value,
                "subject": (message.subject or None) and message.subject[:300],
                "queue_id": item.inbox.default_queue_id,
                "priority": contact.vip_level,
                "required_skills": {},
                "data": {},
                "agent_id": None,
                "created_at": now,
                "state": InteractionState.NEW.value,
                "queued_at": None,
                "answered_at": None,
                "closed_at": None,
                "state_changed_at": None,
            },
            new=True,
            rank=(1, len(self.new_threads)),
        )
        self.new_threads.append(thread)
        self.owned.setdefault((message.inbox_id, contact.id), []).append(thread)
        if contact.blocked:
            self._change(thread, InteractionState.CLOSED, BLOCKED_CLOSE_REASON, now)
        elif item.inbox.has_dialog and item.channel in DIALOG_CHANNELS:
            self._change(thread, InteractionState.SELF_SERVICE, "the inbox's dialog answers", now)
        else:
            self._change(thread, InteractionState.QUEUED, "new contact", now)
        return thread

    def _by_reference(self, item: _Item, contact: ContactRef) -> _Thread | None:
        message = item.message
        refs = message.thread_refs
        if refs:
            # This batch's messages are newer than any stored one: the last planned wins.
            keys = ((message.inbox_id, ref) for ref in refs)
            planned = [self.planned[key] for key in keys if key in self.planned]
            if planned:
                return max(planned, key=lambda p: p[0])[1]
            stored = [r for r in self.ref_rows.get(message.inbox_id, ()) if r[1] in refs]
            if stored:
                return self.threads[max(stored)[2]]
        tag = SUBJECT_TAG.search(message.subject or "")
        if tag:
            # Only the same customer may continue a thread by its tag: a guessed number
            # must not let a stranger write into someone else's conversation.
            tagged = self.threads.get(int(tag.group(1)))
            if tagged is not None and tagged.row["contact_id"] == contact.id:
                return tagged
        return None

    def _open_thread(self, inbox_id: int, contact_id: int) -> _Thread | None:
        open_ = [
            t
            for t in self.owned.get((inbox_id, contact_id), ())
            if t.row["state"] in _OPEN_FOR_APPEND
        ]
        return max(open_, key=lambda t: t.rank, default=None)

    def _change(
        self, thread: _Thread, to_state: InteractionState, reason: str, now: datetime | None = None
    ) -> None:
        """``hub.interactions.change_state`` for a planned row: same rule, same event."""
        now = now or utcnow()
        current = InteractionState(thread.row["state"])
        thread.apply(
            transition(
                thread.id,
                current,
                to_state,
                now,
                queued_at=thread.row["queued_at"],
                answered_at=thread.row["answered_at"],
            )
        )
        event = {
            "from_state": current.value,
            "to_state": to_state.value,
            "at": now,
            "agent_id": None,
            "user_id": None,
            "queue_id": thread.row["queue_id"],
            "reason": reason,
        }
        self.events.append((thread, event))

    # write ---------------------------------------------------------------------------------
    def _write(self, plan: list[tuple[_Item, _Thread, ContactRef, Outcome]]) -> dict[int, Outcome]:
        conn = self.conn
        if self.new_threads:
            rows = [t.row for t in self.new_threads]
            ids = conn.execute(_NEW_INTERACTIONS, rows).scalars().all()
            for thread, new_id in zip(self.new_threads, ids, strict=True):
                thread.row["id"] = new_id
        for thread in self.threads.values():
            if thread.changes:
                conn.execute(
                    sa.update(_INTERACTIONS).where(_I.id == thread.id).values(thread.changes)
                )
        if self.events:
            conn.execute(
                _NEW_EVENTS, [{**event, "interaction_id": t.id} for t, event in self.events]
            )
        rows = [{**item.row, "interaction_id": thread.id} for item, thread, _, _ in plan]
        message_ids = conn.execute(_NEW_MESSAGES, rows).scalars().all()
        outcomes: dict[int, Outcome] = {}
        for (item, thread, contact, outcome), message_id in zip(plan, message_ids, strict=True):
            outcome.result = IngestResult(message_id, thread.id, contact.id, False)  # type: ignore[arg-type]
            outcomes[item.index] = outcome
        return outcomes
