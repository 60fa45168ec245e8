"""One outbox sender per channel kind that hands each reply to the adapter of its inbox.

Adapters come and go while the hub runs (an admin saves an inbox, a lease moves), so the
outbox keeps this one object and the runtimes set and remove the adapters behind it.
"""

from __future__ import annotations

from channels.base import ChannelKind, ChannelSender, DeliveryStatus, OutboundMessage, SendResult


class InboxSenders:
    def __init__(self, kind: ChannelKind, fallback: ChannelSender | None = None) -> None:
        self.kind = kind
        self.by_inbox: dict[int, ChannelSender] = {}
        self.fallback = fallback  # the environment's adapter, for inboxes without their own

    def add(self, inbox_id: int, sender: ChannelSender) -> None:
        self.by_inbox.setdefault(inbox_id, sender)

    def set(self, inbox_id: int, sender: ChannelSender) -> None:
        self.by_inbox[inbox_id] = sender

    def remove(self, inbox_id: int) -> None:
        self.by_inbox.pop(inbox_id, None)

    async def send(self, message: OutboundMessage) -> SendResult:
        sender = self.by_inbox.get(message.inbox_id) or self.fallback
        if sender is None:
            return SendResult(
                DeliveryStatus.FAILED,
                detail=f"no {self.kind.value} adapter serves inbox {message.inbox_id} here",
            )
        return await sender.send(message)
