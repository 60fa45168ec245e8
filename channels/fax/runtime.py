"""Start the fax channel inside the hub process.

Always: the intake (OCR pool; used by the upload API and the email gateway) and the
sender (renders to the outgoing spool, or ``sendfax``). With ``HUB_FAX_SPOOL_DIR``: the
inbound spool watcher, which also reads outgoing status files. The runtime is kept in
``services.extras["fax"]``; stop callables go to ``services.extras["stoppers"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import select

from channels.base import ChannelKind
from channels.fax.intake import FaxIntake
from channels.fax.sender import FaxSender
from channels.fax.settings import FaxSettings
from channels.fax.spool import SpoolWatcher
from models import Inbox

if TYPE_CHECKING:
    from hub.services import Services


@dataclass
class FaxRuntime:
    settings: FaxSettings
    intake: FaxIntake
    sender: FaxSender
    outgoing_dir: Path
    watcher: SpoolWatcher | None = None

    async def stop(self) -> None:
        if self.watcher is not None:
            await self.watcher.stop()
        await self.intake.aclose()


async def start_fax(services: Services, settings: FaxSettings | None = None) -> FaxRuntime:
    settings = settings or FaxSettings.from_env()
    intake = FaxIntake(
        services.ingest, services.attachments, settings, sessionmaker=services.sessionmaker
    )
    outgoing = settings.outgoing_dir or services.settings.var_dir / "fax" / "outgoing"
    outgoing.mkdir(parents=True, exist_ok=True)
    sender = FaxSender(settings, outgoing, intake.ocr)
    services.outbox.register(ChannelKind.FAX, sender)
    runtime = FaxRuntime(settings, intake, sender, outgoing)
    inbox_id = None
    if settings.spool_dir is not None:
        async with services.sessionmaker() as db:
            inbox = (
                await db.exec(
                    select(Inbox).where(
                        Inbox.name == settings.spool_inbox, Inbox.kind == ChannelKind.FAX.value
                    )
                )
            ).first()
        if inbox is None:
            raise LookupError(f"HUB_FAX_SPOOL_INBOX names no fax inbox: {settings.spool_inbox}")
        inbox_id = inbox.id
    runtime.watcher = SpoolWatcher(
        intake,
        inbox_id=inbox_id,
        inbound_dir=settings.spool_dir,
        outgoing_dir=outgoing,
        poll_seconds=settings.poll_seconds,
    )
    runtime.watcher.start()
    services.extras.setdefault("stoppers", []).append(runtime.stop)
    services.extras["fax"] = runtime
    return runtime
