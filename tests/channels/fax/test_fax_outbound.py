"""An agent's reply to a fax: a G3 fine-mode TIFF with a cover page in the outgoing spool,
status tracking from the fax server, and the real ``sendfax`` reporting its failure."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json

from PIL import Image

from channels.base import Address, AddressKind, DeliveryStatus, InboundAttachment
from channels.fax.ocr import OcrEngine
from channels.fax.runtime import FaxRuntime
from channels.fax.settings import DocumentLimits
from channels.fax.tiff import inspect_tiff
from hub.services import Services
from models import Message
from tests.channels.fax.pages import FINE, page, tiff
from tests.channels.fax.test_fax_inbound import fax_inbox, words
from tests.support import require_tool


async def incoming_fax(services: Services, runtime: FaxRuntime) -> int:
    result = await runtime.intake.receive_documents(
        inbox_id=await fax_inbox(services),
        sender=Address(AddressKind.PHONE, "+14155550160"),
        documents=[InboundAttachment("q.tif", "image/tiff", tiff([(page(["Price?"]), FINE)]))],
        source_id="test:question",
        origin="test",
    )
    return result.interaction_id


async def settled(services: Services, message_id: int) -> Message:
    for _ in range(1500):
        async with services.sessionmaker() as db:
            message = await db.get(Message, message_id)
        assert message is not None
        if message.delivery_status != DeliveryStatus.PENDING:
            return message
        await asyncio.sleep(0.02)
    raise AssertionError("the fax reply stayed pending")


async def test_a_reply_is_rendered_to_a_g3_fine_fax_with_a_cover_page(
    services: Services, fax_runtime: FaxRuntime
):
    interaction_id = await incoming_fax(services, fax_runtime)
    reply = await services.outbox.reply(
        interaction_id, body="The price is 42 dollars per crate.", agent_id=None
    )
    sent = await settled(services, reply.id)  # type: ignore[arg-type]
    assert sent.delivery_status == DeliveryStatus.SENT
    assert sent.source_id == f"spool:msg{reply.id}"

    outgoing = fax_runtime.outgoing_dir
    data = (outgoing / f"msg{reply.id}.tif").read_bytes()
    pages = inspect_tiff(data, DocumentLimits())
    assert len(pages) == 2
    assert all(p.compression == "G3 (T.4)" and p.width == 1728 for p in pages)
    assert all((p.xres, p.yres) == (204.0, 196.0) for p in pages)
    sidecar = json.loads((outgoing / f"msg{reply.id}.json").read_text())
    assert sidecar["to"] == "+14155550160"

    ocr = OcrEngine()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.seek(0)
            cover = words(await ocr.recognize(image.copy()))
            image.seek(1)
            body = words(await ocr.recognize(image.copy()))
    finally:
        ocr.close()
    assert "FAX" in cover and "+14155550160" in cover and f"[#{interaction_id}]" in cover
    assert "The price is 42 dollars per crate." in body

    # The fax server reports the outcome through a status file next to the job.
    (outgoing / f"msg{reply.id}.status").write_text('{"status": "failed", "detail": "busy"}')
    assert await fax_runtime.watcher.scan() == 1  # type: ignore[union-attr]
    async with services.sessionmaker() as db:
        final = await db.get(Message, reply.id)
    assert final is not None
    assert final.delivery_status == DeliveryStatus.FAILED and final.status_detail == "busy"


async def test_sendfax_that_cannot_reach_hylafax_fails_the_reply_with_its_words(
    services: Services, fax_runtime: FaxRuntime
):
    sendfax = require_tool("sendfax")
    fax_runtime.sender.settings = dataclasses.replace(
        fax_runtime.settings, sendfax=sendfax, sendfax_host="127.0.0.1:9"
    )
    interaction_id = await incoming_fax(services, fax_runtime)
    reply = await services.outbox.reply(interaction_id, body="Hello", agent_id=None)
    failed = await settled(services, reply.id)  # type: ignore[arg-type]
    assert failed.delivery_status == DeliveryStatus.FAILED
    assert "sendfax failed" in (failed.status_detail or "")
    assert "reach" in (failed.status_detail or "").lower()


def test_hylafax_notify_hook_writes_a_status_the_spool_understands(tmp_path):
    from channels.fax.hylafax import notify
    from channels.fax.spool import parse_status

    qfile = tmp_path / "q12"
    qfile.write_text("jobid:12\nstate:7\nstatus:No answer from remote\n")
    written = notify(tmp_path, [str(qfile), "failed"])
    assert written is not None and written.name == "hylafax-12.status"
    assert parse_status(written.read_text()) == (DeliveryStatus.FAILED, "No answer from remote")
    assert notify(tmp_path, [str(qfile), "requeued"]) is None


def test_the_composer_preview_shows_the_pages_that_will_be_sent():
    from datetime import UTC, datetime

    from channels.fax.render import CoverPage, preview_pngs

    cover = CoverPage("+14155550160", "Contact Hub", "", "Re: price", "[#7]", datetime.now(UTC))
    previews = preview_pngs("line\n" * 60, cover)  # 60 lines: two body pages
    assert len(previews) == 3
    images = [Image.open(io.BytesIO(p)) for p in previews]
    assert all(i.format == "PNG" and i.width == 600 and i.height == 796 for i in images)
