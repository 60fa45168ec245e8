"""One outbox sender per channel kind that hands each reply to the adapter of its inbox.

Adapters come and go while the hub runs (an admin saves an inbox, a lease moves), so the
outbox keeps this one object and the runtimes set and remove the adapters behind it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from channels.base import ChannelKind, ChannelSender, DeliveryStatus, OutboundMessage, SendResult

# Hands a reply to another process (returns None when no process can take it).
Forward = Callable[[OutboundMessage], Awaitable[SendResult | None]]


class InboxSenders:
    def __init__(
        self,
        kind: ChannelKind,
        fallback: ChannelSender | None = None,
        forward: Forward | None = None,
    ) -> None:
        self.kind = kind
        self.by_inbox: dict[int, ChannelSender] = {}
        self.fallback = fallback  # the environment's adapter, for inboxes without their own
        self.forward = forward  # for inboxes whose adapter runs in another process

    def add(self, inbox_id: int, sender: ChannelSender) -> None:
        self.by_inbox.setdefault(inbox_id, sender)

    def set(self, inbox_id: int, sender: ChannelSender) -> None:
        self.by_inbox[inbox_id] = sender

    def remove(self, inbox_id: int) -> None:
        self.by_inbox.pop(inbox_id, None)

    async def send(self, message: OutboundMessage) -> SendResult:
        sender = self.by_inbox.get(message.inbox_id) or self.fallback
        if sender is None and self.forward is not None:
            handed = await self.forward(message)
            if handed is not None:
                return handed
        if sender is None:
            return SendResult(
                DeliveryStatus.FAILED,
                detail=f"no {self.kind.value} adapter serves inbox {message.inbox_id} here",
            )
        return await sender.send(message)
