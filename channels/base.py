"""The contract between channel adapters and the hub.

An adapter turns its protocol into :class:`InboundMessage` values and hands them to an
:class:`Ingestor` (the hub's ingest service). It acknowledges to its peer (SMTP 250, the
SMPP ``deliver_sm_resp``, a webhook's 200) only *after* ``ingest`` has returned, because that
return means the message is committed. A second delivery with the same ``source_id`` on the
same inbox is reported as a duplicate and stored once.

Replies go the other way: the hub builds an :class:`OutboundMessage` and a
:class:`ChannelSender` turns it into the protocol. Delivery receipts and bounces come back
as :class:`DeliveryUpdate` values.

Adapters know nothing about queues, agents or routing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol


class ChannelKind(StrEnum):
    VOICE = "voice"
    SMS = "sms"
    EMAIL = "email"
    FAX = "fax"
    WEBCHAT = "webchat"
    TELEGRAM = "telegram"


class AddressKind(StrEnum):
    """How a customer is reached. Phone numbers are E.164, so voice, SMS and fax meet."""

    PHONE = "phone"
    EMAIL = "email"
    TELEGRAM = "telegram"
    WEBCHAT = "webchat"


class DeliveryStatus(StrEnum):
    RECEIVED = "received"  # inbound, committed
    PENDING = "pending"  # outbound, queued for the channel
    SENT = "sent"  # accepted by the next hop (SMTP 250, submit_sm_resp, Bot API ok)
    DELIVERED = "delivered"  # confirmed at the handset/mailbox (DLR, read receipt)
    FAILED = "failed"  # bounce, DLR failure, retries exhausted


@dataclass(frozen=True, slots=True)
class Address:
    kind: AddressKind
    value: str  # normalized: E.164 for phones, lower-case for email
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class InboundAttachment:
    filename: str
    content_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message from a customer, as the adapter understood it.

    ``source_id`` is the provider's id (the RFC 5322 Message-ID, the SMPP message id, the
    Telegram ``chat_id:message_id``…). It makes redelivery idempotent. ``thread_refs`` are
    provider ids of earlier messages this one answers (In-Reply-To/References for email);
    the hub uses them to join the existing interaction.
    """

    inbox_id: int
    channel: ChannelKind
    sender: Address
    body: str
    source_id: str | None = None
    content_type: str = "text"  # text | html | image | file | audio | fax
    html: str | None = None  # raw, unsanitized; the web layer sanitizes with nh3
    subject: str | None = None
    attachments: tuple[InboundAttachment, ...] = ()
    thread_refs: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # degraded parsing the agent should see
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IngestResult:
    message_id: int
    interaction_id: int
    contact_id: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """An agent's (or the system's) reply, ready for a channel sender."""

    message_id: int
    interaction_id: int
    inbox_id: int
    channel: ChannelKind
    to: Address
    body: str
    subject: str | None = None
    attachments: tuple[InboundAttachment, ...] = ()
    in_reply_to: str | None = None  # provider id of the message answered
    references: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    status: DeliveryStatus
    provider_id: str | None = None  # stored as the outbound message's source_id
    detail: str | None = None
    # Sent as several parts with ids of their own (a long SMS): every id, the first being
    # ``provider_id``. Receipts then come per part (``hub.delivery``).
    part_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    """A receipt for an outbound message: SMPP DLR, DSN bounce, provider status callback."""

    inbox_id: int
    provider_id: str
    status: DeliveryStatus
    detail: str | None = None


class Ingestor(Protocol):
    """What the hub offers adapters. ``ingest`` returns only after commit."""

    async def ingest(self, message: InboundMessage) -> IngestResult: ...

    async def update_delivery(self, update: DeliveryUpdate) -> bool: ...


class ChannelSender(Protocol):
    async def send(self, message: OutboundMessage) -> SendResult: ...
