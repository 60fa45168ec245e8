"""Spool directories shared with HylaFAX (or any fax server), polled on the app's loop.

Inbound (``HUB_FAX_SPOOL_DIR``): a document arrives either with a JSON sidecar written
last by the received-fax hook (``channels.fax.hylafax faxrcvd``, or anything that writes
``NAME.json`` = ``{"file": "NAME.tif", "sender": "+1…", "id": "<commid>"}``), or as a bare
``recvq``-style TIFF that has not changed for two polls (the sender then comes from the
TSI in the TIFF's ImageDescription). The files move to ``done/`` only after the commit: a
crash in between processes them again on restart, and the provider id dedupes them.

Outgoing (the sender's directory): ``NAME.status`` files (``{"status": "delivered" |
"failed", "detail": …}``, or plain text) report the outcome of a sent fax; the matching
``NAME.json`` sidecar names the message, and the status goes to ``update_delivery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

from channels.base import Address, AddressKind, DeliveryStatus, DeliveryUpdate, InboundAttachment
from channels.fax.document import sniff
from channels.fax.intake import FaxIntake, content_source_id, number_from_text
from channels.fax.tiff import DocumentRefused, inspect_tiff
from hub.tasks import cancel_and_wait

log = logging.getLogger(__name__)
DOCUMENT_SUFFIXES = (".tif", ".tiff", ".pdf")


def parse_status(text: str) -> tuple[DeliveryStatus | None, str]:
    """``{"status": …, "detail": …}`` or ``delivered`` / ``failed: busy``."""
    try:
        data = json.loads(text)
    except ValueError:
        word, _, detail = text.strip().partition(":")
        data = {"status": word, "detail": detail.strip()}
    if not isinstance(data, dict):
        return None, ""
    status = str(data.get("status", "")).strip().lower()
    mapping = {
        "delivered": DeliveryStatus.DELIVERED,
        "done": DeliveryStatus.DELIVERED,
        "failed": DeliveryStatus.FAILED,
    }
    return mapping.get(status), str(data.get("detail") or "")[:480]


class SpoolWatcher:
    def __init__(
        self,
        intake: FaxIntake,
        *,
        inbox_id: int | None,
        inbound_dir: Path | None,
        outgoing_dir: Path | None,
        poll_seconds: float = 2.0,
    ) -> None:
        self.intake = intake
        self.inbox_id = inbox_id
        self.inbound_dir = inbound_dir
        self.outgoing_dir = outgoing_dir
        self.poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self._sizes: dict[Path, tuple[int, float]] = {}
        self._lock = asyncio.Lock()  # the timer and an explicit scan() never overlap

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fax-spool")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.scan()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fax spool scan failed; retrying")
            await asyncio.sleep(self.poll_seconds)

    async def scan(self) -> int:
        """One pass over both directories; returns how many files were handled."""
        async with self._lock:
            return await self._scan_once()

    async def _scan_once(self) -> int:
        handled = 0
        if self.inbound_dir is not None and self.inbox_id is not None:
            handled += await self._scan_inbound(self.inbound_dir)
        if self.outgoing_dir is not None:
            handled += await self._scan_statuses(self.outgoing_dir)
        return handled

    async def _scan_inbound(self, folder: Path) -> int:
        work = await asyncio.to_thread(self._pending_inbound, folder)
        for document, info, sidecar in work:
            await self._receive(document, info, sidecar)
        return len(work)

    def _pending_inbound(self, folder: Path) -> list[tuple[Path, dict, Path | None]]:
        """Documents with a sidecar, then bare documents that have settled (blocking I/O)."""
        folder.mkdir(parents=True, exist_ok=True)
        work: list[tuple[Path, dict, Path | None]] = []
        claimed: set[Path] = set()
        for sidecar in sorted(folder.glob("*.json")):
            try:
                info = json.loads(sidecar.read_text())
                document = folder / Path(str(info["file"])).name
            except (ValueError, KeyError, OSError) as exc:
                log.warning("fax spool: unreadable sidecar %s: %s", sidecar.name, exc)
                continue
            claimed.add(document)
            if document.exists():
                work.append((document, info, sidecar))
        for document in sorted(folder.iterdir()):
            if (
                document not in claimed
                and document.suffix.lower() in DOCUMENT_SUFFIXES
                and not document.name.startswith(".")
                and self._settled(document)
            ):
                work.append((document, {}, None))
        return work

    def _settled(self, path: Path) -> bool:
        """A bare document counts once its size and mtime held still for one poll."""
        stat = path.stat()
        seen = (stat.st_size, stat.st_mtime)
        previous = self._sizes.get(path)
        self._sizes[path] = seen
        return previous == seen

    async def _receive(self, document: Path, info: dict, sidecar: Path | None) -> None:
        data = await asyncio.to_thread(document.read_bytes)
        source_id = f"hylafax:{info['id']}" if info.get("id") else content_source_id(data)
        number = number_from_text(str(info.get("sender") or ""))
        if number is None and sniff(data) == "tiff":
            with contextlib.suppress(DocumentRefused):
                pages = inspect_tiff(data, self.intake.settings.limits)
                number = number_from_text(pages[0].description)
        sender = Address(AddressKind.PHONE, number, info.get("sender_name")) if number else None
        problems = [f"the fax server reported: {info['error']}"] if info.get("error") else []
        assert self.inbox_id is not None
        await self.intake.receive_documents(
            inbox_id=self.inbox_id,
            sender=sender,
            documents=[InboundAttachment(document.name, _content_type(document), data)],
            source_id=source_id,
            origin=f"fax server spool ({document.name})",
            problems=problems,
            meta={"fax_server": {k: v for k, v in info.items() if k != "file"}},
        )
        # Committed: now "acknowledge" by moving the files out of the way.
        await asyncio.to_thread(_archive, document, sidecar)
        self._sizes.pop(document, None)

    async def _scan_statuses(self, folder: Path) -> int:
        work = await asyncio.to_thread(_pending_statuses, folder)
        for status_file, info, text in work:
            status, detail = parse_status(text)
            if status is not None:
                await self.intake.ingest.update_delivery(
                    DeliveryUpdate(int(info["inbox_id"]), str(info["provider_id"]), status, detail)
                )
            await asyncio.to_thread(_archive, status_file, None)
        return len(work)


def _archive(path: Path, sidecar: Path | None) -> None:
    done = path.parent / "done"
    done.mkdir(exist_ok=True)
    path.replace(done / path.name)
    if sidecar is not None:
        sidecar.replace(done / sidecar.name)


def _pending_statuses(folder: Path) -> list[tuple[Path, dict, str]]:
    work: list[tuple[Path, dict, str]] = []
    if not folder.is_dir():
        return work
    for status_file in sorted(folder.glob("*.status")):
        try:
            info = json.loads((folder / f"{status_file.stem}.json").read_text())
        except (OSError, ValueError):
            info = _find_by_provider(folder, status_file.stem)
        if info is None:
            log.warning("fax status %s matches no sent fax", status_file.name)
            continue
        work.append((status_file, info, status_file.read_text()))
    return work


def _find_by_provider(folder: Path, name: str) -> dict | None:
    """``hylafax-12.status`` → the sidecar whose provider id is ``hylafax:12``."""
    wanted = name.replace("-", ":", 1)
    for sidecar in folder.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(sidecar.read_text())
            if info.get("provider_id") == wanted:
                return info
    return None


def _content_type(path: Path) -> str:
    return "application/pdf" if path.suffix.lower() == ".pdf" else "image/tiff"
