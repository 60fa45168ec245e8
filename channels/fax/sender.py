"""Outbound fax: render the reply (cover page + text + attached PDFs' pages, G3 fine) and
hand it on.

With ``HUB_FAX_SENDFAX`` set, HylaFAX's ``sendfax`` queues the job and its job id is the
provider id (``hylafax:<jobid>``); otherwise the TIFF and a JSON sidecar are written to the
outgoing spool directory (``spool:<name>``) for whatever transmits from there. Either way
the message is ``sent`` once handed on, and the final outcome comes back as a status file
in the outgoing directory or through ``POST /webhooks/fax/{inbox}/status``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from channels.base import DeliveryStatus, OutboundMessage, SendResult
from channels.fax.ocr import OcrEngine
from channels.fax.render import CoverPage, render_fax
from channels.fax.settings import FaxSettings
from channels.fax.tiff import DocumentRefused

_JOB_ID = re.compile(r"request id is (\d+)")


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


class FaxSender:
    """A ``ChannelSender`` for fax."""

    def __init__(self, settings: FaxSettings, outgoing_dir: Path, pool: OcrEngine) -> None:
        self.settings = settings
        self.outgoing_dir = outgoing_dir
        self._pool = pool  # rendering is CPU work: the same bounded pool as OCR

    async def send(self, message: OutboundMessage) -> SendResult:
        number = message.to.value
        if not number.startswith("+"):
            return SendResult(DeliveryStatus.FAILED, detail="the contact has no fax number")
        s = self.settings
        cover = CoverPage(
            to_number=number,
            from_name=s.station_name,
            from_number=s.station_number,
            subject=message.subject or "Reply",
            reference=f"[#{message.interaction_id}]",
            sent_at=datetime.now(UTC),
        )
        others = [a.filename for a in message.attachments if a.content_type != "application/pdf"]
        if others:
            return SendResult(
                DeliveryStatus.FAILED,
                detail=f"a fax carries PDF attachments only, not {', '.join(others)}",
            )
        pdfs = tuple(a.data for a in message.attachments)
        try:
            tiff = await self._pool.run(render_fax, message.body, cover, pdfs, s.limits)
        except DocumentRefused as exc:
            return SendResult(
                DeliveryStatus.FAILED, detail=f"the attached PDF cannot be faxed: {exc.reason}"
            )
        self.outgoing_dir.mkdir(parents=True, exist_ok=True)
        name = f"msg{message.message_id}"
        path = self.outgoing_dir / f"{name}.tif"
        write_atomically(path, tiff)
        provider_id = f"spool:{name}"
        detail = f"written to the outgoing fax spool as {path.name}"
        if s.sendfax:
            args = [s.sendfax, "-n", "-d", number]
            if s.sendfax_host:
                args += ["-h", s.sendfax_host]
            process = await asyncio.create_subprocess_exec(
                *args, str(path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            out, err = await process.communicate()
            text = (out + err).decode("utf-8", "replace").strip()
            job = _JOB_ID.search(text)
            if process.returncode != 0 or job is None:
                return SendResult(
                    DeliveryStatus.FAILED, provider_id, f"sendfax failed: {text[-300:]}"
                )
            provider_id = f"hylafax:{job.group(1)}"
            detail = f"queued in HylaFAX as job {job.group(1)}"
        sidecar = {
            "provider_id": provider_id,
            "to": number,
            "message_id": message.message_id,
            "interaction_id": message.interaction_id,
            "inbox_id": message.inbox_id,
            "file": path.name,
        }
        write_atomically(self.outgoing_dir / f"{name}.json", json.dumps(sidecar, indent=1).encode())
        return SendResult(DeliveryStatus.SENT, provider_id, detail)
