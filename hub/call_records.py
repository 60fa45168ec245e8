"""The database side of calls: interactions and legs for SIP calls, recordings, and the
repair after a crash. Each function is one transaction; the caller publishes afterwards.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import AddressKind, ChannelKind
from hub.contacts import (
    BLOCKED_CLOSE_REASON,
    AddressError,
    normalize_phone,
    resolve_contacts,
)
from hub.db import TransactionRunner
from hub.events import SUPERVISOR_TOPIC, interaction_topic
from hub.interactions import change_state, create_in_state
from hub.routing.work import AfterCommit, lock_interaction, write_lock
from hub.transcription.queueing import queue_transcription
from models import (
    CallLeg,
    CallLegKind,
    Contact,
    Inbox,
    Interaction,
    InteractionState,
    Recording,
    utcnow,
)

S = InteractionState
log = logging.getLogger(__name__)
WAV_HEADER_BYTES = 44  # what Python's wave module writes for PCM
STEREO_FRAME_BYTES = 4  # 16-bit, two channels
RECORDING_RATE = 8000


def digits(number: str) -> str:
    """``+1 (555) 0100`` → ``15550100``: DIDs are compared on their digits."""
    return re.sub(r"\D", "", number)


def inbox_dids(inbox: Inbox) -> set[str]:
    """The DIDs a voice inbox answers (``config["did"]`` and ``config["dids"]``)."""
    config = inbox.config or {}
    numbers = [config.get("did") or "", *(config.get("dids") or [])]
    return {digits(str(n)) for n in numbers if digits(str(n))}


_VOICE_INBOXES = select(Inbox).where(
    Inbox.kind == ChannelKind.VOICE.value, col(Inbox.active).is_(True)
)


def _inbox_for(inboxes: Any, dnis: str) -> Inbox | None:
    wanted = digits(dnis)
    if not wanted:
        return None
    for inbox in inboxes:
        if wanted in inbox_dids(inbox):
            return inbox
    return None


async def inbox_for_dnis(db: AsyncSession, dnis: str) -> Inbox | None:
    """The active voice inbox whose DID is the called number, or None (then 404)."""
    if not digits(dnis):
        return None
    return _inbox_for((await db.exec(_VOICE_INBOXES)).all(), dnis)


def caller_e164(caller: str) -> str | None:
    """The caller's number in E.164, or None when the gateway sent none usable
    (``anonymous``, a SIP user name)."""
    try:
        return normalize_phone(caller)
    except AddressError:
        return None


@dataclass(frozen=True, slots=True)
class NewCall:
    interaction_id: int
    leg_id: int
    blocked: bool
    queue_id: int | None
    # As committed (detached): the call service hands them on instead of reading them again.
    inbox: Inbox | None = None
    interaction: Interaction | None = None


def _open_inbound(
    db: Session,
    inbox: Inbox,
    caller: str | None,
    raw_caller: str,
    dnis: str,
    sip_call_id: str,
    remote_uri: str,
    node: str,
) -> NewCall:
    now = utcnow()
    if caller is not None:
        ref = resolve_contacts(db.connection(), {(AddressKind.PHONE.value, caller): ""})[
            (AddressKind.PHONE.value, caller)
        ]
        contact_id, blocked, vip = ref.id, ref.blocked, ref.vip_level
    else:
        contact = Contact(name="Unknown caller")
        db.add(contact)
        db.flush()
        contact_id, blocked, vip = contact.id, False, 0
    interaction = Interaction(
        inbox_id=inbox.id,  # type: ignore[arg-type]
        contact_id=contact_id,  # type: ignore[arg-type]
        channel=ChannelKind.VOICE.value,
        queue_id=inbox.default_queue_id,
        priority=vip,
        data={"caller": caller or raw_caller or "anonymous", "dnis": dnis},
        created_at=now,
    )
    if blocked:
        create_in_state(db, interaction, S.CLOSED, at=now, reason=BLOCKED_CLOSE_REASON)
    else:
        create_in_state(db, interaction, S.SELF_SERVICE, at=now, reason="incoming call")
    leg = CallLeg(
        interaction_id=interaction.id,  # type: ignore[arg-type]
        kind=CallLegKind.CUSTOMER,
        direction="inbound",
        sip_call_id=sip_call_id[:255],
        remote_uri=remote_uri[:300],
        node=node,
        started_at=now,
    )
    db.add(leg)
    db.flush()
    return NewCall(
        interaction.id,  # type: ignore[arg-type]
        leg.id,  # type: ignore[arg-type]
        blocked,
        interaction.queue_id,
        inbox,
        interaction,
    )


async def open_inbound(
    db: AsyncSession,
    inbox: Inbox,
    *,
    raw_caller: str,
    dnis: str,
    sip_call_id: str,
    remote_uri: str,
    node: str,
) -> NewCall:
    """A new voice interaction for an incoming call, and its customer leg, committed.

    The caller's number in E.164 finds or creates the contact (``hub.contacts``), so voice,
    SMS and fax from one number meet. A blocked contact's call is kept, closed at once.
    """
    caller = caller_e164(raw_caller)
    for attempt in range(2):
        try:
            created = await db.run_sync(
                _open_inbound, inbox, caller, raw_caller, dnis, sip_call_id, remote_uri, node
            )
            await db.commit()
            return created
        except IntegrityError:  # the same new number arrived twice at once: find the winner
            await db.rollback()
            if attempt:
                raise
    raise AssertionError("unreachable")


def _open_call(db: Session, request: InboundCall) -> NewCall | None:
    inbox = _inbox_for(db.exec(_VOICE_INBOXES).all(), request.dnis)
    if inbox is None:
        return None
    return _open_inbound(
        db,
        inbox,
        caller_e164(request.raw_caller),
        request.raw_caller,
        request.dnis,
        request.sip_call_id,
        request.remote_uri,
        request.node,
    )


@dataclass(frozen=True, slots=True)
class InboundCall:
    """An admitted INVITE, as the call service stores it."""

    raw_caller: str
    dnis: str
    sip_call_id: str
    remote_uri: str
    node: str


async def open_call(transactions: TransactionRunner, request: InboundCall) -> NewCall | None:
    """``inbox_for_dnis`` and ``open_inbound`` in one write transaction (one thread hop on
    SQLite, holding the write lock from its start): None when no voice inbox has the DID."""
    if not digits(request.dnis):
        return None
    for attempt in range(2):
        try:
            return await transactions.run(_open_call, request)
        except IntegrityError:  # the same new number arrived twice at once: find the winner
            if attempt:
                raise
    raise AssertionError("unreachable")


def _answered(
    db: Session, leg_id: int, answered_at: datetime | None, recording: Recording | None
) -> int | None:
    db.execute(update(CallLeg).where(col(CallLeg.id) == leg_id).values(answered_at=answered_at))
    if recording is None:
        return None
    db.add(recording)
    db.flush()
    return recording.id


async def answered(
    transactions: TransactionRunner,
    leg_id: int,
    answered_at: datetime | None,
    recording: Recording | None,
) -> int | None:
    """The customer leg answered and its recording's row (``start_recording``), in one
    transaction; returns the recording's id."""
    return await transactions.run(_answered, leg_id, answered_at, recording)


async def publish_new(bus: Any, created: NewCall) -> None:
    await bus.publish(
        interaction_topic(created.interaction_id),
        "state",
        state=S.CLOSED.value if created.blocked else S.SELF_SERVICE.value,
        agent_id=None,
    )
    await bus.publish(SUPERVISOR_TOPIC, "queue", queue_id=created.queue_id, created=True)


async def add_leg(
    db: AsyncSession,
    interaction_id: int,
    *,
    kind: CallLegKind,
    direction: str,
    sip_call_id: str,
    remote_uri: str,
    node: str,
    agent_id: int | None,
    started_at: datetime,
) -> int:
    leg = CallLeg(
        interaction_id=interaction_id,
        kind=kind,
        direction=direction,
        sip_call_id=sip_call_id[:255],
        remote_uri=remote_uri[:300],
        node=node,
        agent_id=agent_id,
        started_at=started_at,
    )
    db.add(leg)
    await db.commit()
    return leg.id  # type: ignore[return-value]


def epoch_to_dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


async def update_leg(db: AsyncSession, leg_id: int, **values: Any) -> None:
    leg = await db.get(CallLeg, leg_id)
    if leg is None:
        return
    for name, value in values.items():
        setattr(leg, name, value)
    db.add(leg)
    await db.commit()


async def start_recording(db: AsyncSession, interaction_id: int, path: str, legs: list[int]) -> int:
    """The row exists from the first frame on, so a crash leaves a recording to repair."""
    recording = Recording(interaction_id=interaction_id, path=path, legs=legs)
    db.add(recording)
    await db.commit()
    return recording.id  # type: ignore[return-value]


async def add_recording_leg(db: AsyncSession, recording_id: int, leg_id: int) -> None:
    recording = await db.get(Recording, recording_id)
    if recording is not None and leg_id not in recording.legs:
        recording.legs = [*recording.legs, leg_id]
        db.add(recording)
        await db.commit()


def wav_seconds(path: Path) -> float:
    """Length of a stereo 16-bit 8 kHz WAV from its size (the header may be stale)."""
    try:
        size = path.stat().st_size
    except OSError:
        return 0.0
    return max(0, size - WAV_HEADER_BYTES) // STEREO_FRAME_BYTES / RECORDING_RATE


async def finish_recording(db: AsyncSession, recording_id: int, full_path: Path) -> None:
    recording = await db.get(Recording, recording_id)
    if recording is None:
        return
    recording.duration_seconds = round(wav_seconds(full_path), 3)
    recording.ended_at = utcnow()
    recording.complete = True
    db.add(recording)
    await queue_transcription(db, recording)
    await db.commit()


def repair_wav(path: Path) -> float:
    """Rewrite the RIFF and data sizes of a WAV cut short (a process that died while
    recording), so players accept it; a torn last frame is dropped. Returns seconds."""
    size = path.stat().st_size
    if size < WAV_HEADER_BYTES:
        raise ValueError(f"{path} holds no WAV header")
    data = (size - WAV_HEADER_BYTES) // STEREO_FRAME_BYTES * STEREO_FRAME_BYTES
    with open(path, "r+b") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ValueError(f"{path} is not a WAV file")
        f.truncate(WAV_HEADER_BYTES + data)
        f.seek(4)
        f.write(struct.pack("<I", WAV_HEADER_BYTES - 8 + data))
        f.seek(WAV_HEADER_BYTES - 4)
        f.write(struct.pack("<I", data))
        f.flush()
        os.fsync(f.fileno())
    return data / STEREO_FRAME_BYTES / RECORDING_RATE


@dataclass(frozen=True, slots=True)
class Dropped:
    """What a crash left behind: interactions to end, and how."""

    abandon: list[int]
    wrap_up: list[tuple[int, int]]  # (interaction, agent)
    legs: int
    recordings: int


async def mark_dropped(db: AsyncSession, var_dir: Path, *, node: str | None) -> Dropped:
    """Legs with no end, left by a process that died: ended now as "dropped", and their
    recordings' headers repaired. ``node`` None takes every open leg (one hub process on
    an embedded SQLite); otherwise only this node's (a stable ``HUB_NODE_NAME``)."""
    now = utcnow()
    query = select(CallLeg).where(col(CallLeg.ended_at).is_(None))
    if node is not None:
        query = query.where(CallLeg.node == node)
    legs = (await db.exec(query)).all()
    interactions = sorted({leg.interaction_id for leg in legs})
    for leg in legs:
        leg.ended_at = now
        leg.end_reason = "dropped"
        db.add(leg)
    repaired = 0
    if interactions:
        recordings = (
            await db.exec(
                select(Recording).where(
                    col(Recording.interaction_id).in_(interactions),
                    col(Recording.complete).is_(False),
                )
            )
        ).all()
        for recording in recordings:
            path = var_dir / recording.path
            try:
                recording.duration_seconds = round(repair_wav(path), 3)
            except (OSError, ValueError) as exc:
                log.warning("recording %s cannot be repaired: %s", recording.id, exc)
            recording.complete = True
            recording.ended_at = now
            db.add(recording)
            await queue_transcription(db, recording)
            repaired += 1
    abandon: list[int] = []
    wrap_up: list[tuple[int, int]] = []
    for interaction in await _left_unfinished(db, node):
        if interaction.state == S.ACTIVE:
            if interaction.agent_id is not None:
                wrap_up.append((interaction.id, interaction.agent_id))
        else:
            abandon.append(interaction.id)
    await db.commit()
    return Dropped(abandon, wrap_up, len(legs), repaired)


async def _left_unfinished(db: AsyncSession, node: str | None) -> list[Interaction]:
    """Calls waiting or with an agent, with no leg open, and a leg (of this node) dropped
    since their state last changed. Not only the legs marked just now: a process that died
    again after marking them, before ending their calls, left such calls for this start.
    A call that moved on since (a callback back in its queue) is not one of them."""
    dropped = select(CallLeg.id).where(
        CallLeg.interaction_id == Interaction.id,
        CallLeg.end_reason == "dropped",
        col(CallLeg.ended_at)
        >= sa.func.coalesce(Interaction.state_changed_at, Interaction.created_at),
    )
    if node is not None:
        dropped = dropped.where(CallLeg.node == node)
    still_open = select(CallLeg.interaction_id).where(col(CallLeg.ended_at).is_(None))
    query = (
        select(Interaction)
        .where(
            dropped.exists(),
            col(Interaction.id).not_in(still_open),
            col(Interaction.state).in_([S.NEW, S.SELF_SERVICE, S.QUEUED, S.OFFERED, S.ACTIVE]),
        )
        .order_by(col(Interaction.id))
    )
    return list((await db.exec(query)).all())


async def close_after_self_service(
    db: AsyncSession, interaction_id: int, reason: str
) -> AfterCommit:
    """The caller was served without an agent (the dialog ended the call): CLOSED."""
    after = AfterCommit()
    await write_lock(db)
    interaction = await lock_interaction(db, interaction_id)
    if interaction is not None and interaction.state in (S.NEW, S.SELF_SERVICE):
        change_state(db, interaction, S.CLOSED, reason=reason)
        after.add(interaction_topic(interaction_id), "state", state="closed", agent_id=None)
        after.add(SUPERVISOR_TOPIC, "queue", queue_id=interaction.queue_id)
    await db.commit()
    return after
