"""Which hub inbox an envelope recipient (RFC 5321 ``RCPT TO``) belongs to.

Routes come from ``HUB_EMAIL_ROUTES`` (a local part or a full address → an inbox name) and
from each inbox's ``config["email_addresses"]``. A recipient outside the allowed domains is
refused as a relay attempt; an unknown mailbox in an allowed domain is refused as unknown.
Both become 550 replies (RFC 5321 §4.2.3) at RCPT time, before any data is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import ChannelKind
from channels.email.settings import EmailSettings
from models import Inbox


@dataclass(frozen=True, slots=True)
class InboxTarget:
    id: int
    name: str
    kind: ChannelKind
    config: dict[str, Any]


class RecipientRefused(LookupError):
    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply  # the full SMTP reply line


class RecipientMap:
    def __init__(self, settings: EmailSettings, inboxes: list[InboxTarget]) -> None:
        self._domains = frozenset(settings.domains)
        by_name = {i.name: i for i in inboxes}
        self._routes: dict[str, InboxTarget] = {}
        for key, name in settings.routes.items():
            if name in by_name:
                self._routes[key.lower()] = by_name[name]
        for inbox in inboxes:
            for address in inbox.config.get("email_addresses", []) or []:
                self._routes[str(address).lower()] = inbox
        self.inboxes = {i.id: i for i in inboxes}

    @classmethod
    async def load(
        cls, settings: EmailSettings, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> RecipientMap:
        async with sessionmaker() as db:
            rows = (await db.exec(select(Inbox).where(Inbox.active == True))).all()  # noqa: E712
        inboxes = [
            InboxTarget(r.id, r.name, ChannelKind(r.kind), dict(r.config or {}))  # type: ignore[arg-type]
            for r in rows
            if r.kind in (ChannelKind.EMAIL.value, ChannelKind.FAX.value)
        ]
        return cls(settings, inboxes)

    def resolve(self, recipient: str) -> InboxTarget:
        address = recipient.strip().strip("<>").lower()
        local, _, domain = address.rpartition("@")
        if not local or not domain:
            raise RecipientRefused("553 5.1.3 Recipient address is not a valid mailbox")
        if domain not in self._domains:
            raise RecipientRefused(f"550 5.7.1 Relaying denied: we do not accept mail for {domain}")
        target = self._routes.get(address) or self._routes.get(local.split("+", 1)[0])
        if target is None:
            raise RecipientRefused(f"550 5.1.1 No such mailbox here: {address}")
        return target
