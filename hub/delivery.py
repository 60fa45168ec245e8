"""Delivery status of outbound messages: what the channel said at send time, then receipts.

A status only moves forward (a late "sent" must not undo "delivered"). A message the
provider took as several parts (``SendResult.part_ids``) keeps one status per part, and
its own status follows from them. The functions here run inside one write transaction
(``hub.db.TransactionRunner``), so receipts for two parts of one message that arrive at
once still see each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from channels.base import DeliveryStatus, DeliveryUpdate
from models import Direction, Message, MessagePart

STATUS_RANK = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.FAILED: 3,
}


@dataclass(frozen=True, slots=True)
class Applied:
    interaction_id: int
    message_id: int


def parts_of(message: Message, part_ids: tuple[str, ...]) -> list[MessagePart]:
    """The rows that keep the parts of a message just sent as several (none for one)."""
    if len(part_ids) < 2:
        return []
    return [
        MessagePart(
            message_id=message.id,  # type: ignore[arg-type]
            inbox_id=message.inbox_id,
            provider_id=provider_id,
            seq=seq,
            delivery_status=message.delivery_status,
        )
        for seq, provider_id in enumerate(part_ids, start=1)
    ]


def apply_receipt(db: Session, update: DeliveryUpdate) -> Applied | None:
    """Apply a DLR, bounce or status callback; None when no outbound message matches."""
    part = db.exec(
        select(MessagePart).where(
            MessagePart.inbox_id == update.inbox_id,
            MessagePart.provider_id == update.provider_id,
        )
    ).first()
    if part is None:
        message = db.exec(
            select(Message)
            .where(
                Message.inbox_id == update.inbox_id,
                Message.source_id == update.provider_id,
                Message.direction == Direction.OUTBOUND,
            )
            .with_for_update()
        ).first()
        if message is None:
            return None
        _advance(message, update.status, update.detail)
        return Applied(message.interaction_id, message.id)  # type: ignore[arg-type]
    # The message row first: two receipts for sibling parts take turns here (PostgreSQL;
    # SQLite's write lock, taken up front, does the same).
    message = db.exec(select(Message).where(Message.id == part.message_id).with_for_update()).one()
    db.refresh(part)
    _advance(part, update.status, update.detail)
    parts = db.exec(
        select(MessagePart)
        .where(MessagePart.message_id == message.id)
        .order_by(col(MessagePart.seq))
    ).all()
    status, detail = combined(parts)
    _advance(message, status, detail)
    return Applied(message.interaction_id, message.id)  # type: ignore[arg-type]


def combined(parts: Sequence[MessagePart]) -> tuple[DeliveryStatus, str]:
    """Failed as soon as one part fails; delivered when every part is; else still sent."""
    total = len(parts)
    for part in parts:
        if part.delivery_status == DeliveryStatus.FAILED:
            return DeliveryStatus.FAILED, f"part {part.seq} of {total}: {part.status_detail or ''}"
    delivered = [p for p in parts if p.delivery_status == DeliveryStatus.DELIVERED]
    if len(delivered) == total:
        return DeliveryStatus.DELIVERED, f"all {total} parts delivered"
    return DeliveryStatus.SENT, f"{len(delivered)} of {total} parts delivered"


def _advance(row: Message | MessagePart, status: DeliveryStatus, detail: str | None) -> None:
    """Move ``row`` to ``status`` (and its detail) unless that would go backwards."""
    current = STATUS_RANK.get(DeliveryStatus(row.delivery_status), 0)
    if STATUS_RANK[status] < current:
        return
    row.delivery_status = status
    row.status_detail = (detail or "")[:500] or None
