"""Received faxes: multi-page G4 TIFF (fine and standard mode) and PDF OCR'd into the fax
inbox with page images and thumbnails; the HylaFAX spool; hostile files refused."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import col, select

from channels.base import Address, AddressKind, InboundAttachment, IngestResult
from channels.fax import hylafax
from channels.fax.intake import FaxIntake
from channels.fax.runtime import FaxRuntime
from channels.fax.settings import DocumentLimits
from channels.fax.spool import SpoolWatcher
from channels.fax.tiff import DocumentRefused, inspect_tiff
from hub.services import Services
from models import Contact, ContactIdentity, Inbox, Message
from tests.channels.fax.pages import FINE, STANDARD, crafted_tiff, page, pdf, slow_pdf, tiff


async def fax_inbox(services: Services) -> int:
    async with services.sessionmaker() as db:
        return (await db.exec(select(Inbox).where(Inbox.kind == "fax"))).one().id  # type: ignore[return-value]


async def stored(services: Services, message_id: int) -> Message:
    async with services.sessionmaker() as db:
        message = await db.get(Message, message_id)
        assert message is not None
        return message


def words(text: str) -> str:
    return " ".join(text.split())


async def test_a_multipage_g4_tiff_is_ocred_into_the_inbox(
    services: Services, fax_runtime: FaxRuntime
):
    document = tiff(
        [
            (page(["PURCHASE ORDER 4711", "Forty blue widgets"]), FINE),
            (page(["Deliver to the Springfield warehouse"], STANDARD), STANDARD),
            (page(["Signed by Margaret Hamilton"]), FINE),
        ]
    )
    assert [p.compression for p in inspect_tiff(document, DocumentLimits())] == ["G4 (T.6)"] * 3
    result = await fax_runtime.intake.receive_documents(
        inbox_id=await fax_inbox(services),
        sender=Address(AddressKind.PHONE, "+1 (415) 555-0142"),
        documents=[InboundAttachment("order.tif", "image/tiff", document)],
        source_id="test:order-4711",
        origin="test",
    )
    message = await stored(services, result.message_id)
    text = words(message.body)
    assert "PURCHASE ORDER 4711" in text
    assert "Forty blue widgets" in text
    assert "Deliver to the Springfield warehouse" in text  # standard mode, stretched 2×
    assert "Margaret Hamilton" in text
    assert message.content_type == "fax"
    assert message.subject == "Fax from +14155550142, 3 page(s)"
    assert [a["filename"] for a in message.attachments] == ["order.tif"]

    pages = message.meta["fax"]["pages"]
    assert [p["stretched"] for p in pages] == [False, True, False]
    assert [p["resolution"] for p in pages] == [[204.0, 196.0], [204.0, 98.0], [204.0, 196.0]]
    for entry in pages:
        full = Image.open(io.BytesIO(services.attachments.get(entry["image"])))
        thumb = Image.open(io.BytesIO(services.attachments.get(entry["thumbnail"])))
        assert full.format == thumb.format == "PNG"
        assert full.size == (1728, 2292)  # the standard page is square-pixelled again
        assert max(thumb.size) <= 340

    # The contact is the E.164 number, shared with voice and SMS.
    async with services.sessionmaker() as db:
        identity = (
            await db.exec(select(ContactIdentity).where(ContactIdentity.kind == "phone"))
        ).one()
    assert identity.address == "+14155550142"


async def test_a_pdf_fax_is_ocred_too(services: Services, fax_runtime: FaxRuntime):
    document = pdf([page(["Invoice 2024-118 from Globex"]), page(["Total due 1,250.00 EUR"])])
    result = await fax_runtime.intake.receive_documents(
        inbox_id=await fax_inbox(services),
        sender=Address(AddressKind.PHONE, "+442071838750"),
        documents=[InboundAttachment("invoice.pdf", "application/pdf", document)],
        source_id="test:invoice",
        origin="test",
    )
    message = await stored(services, result.message_id)
    assert "Invoice 2024-118 from Globex" in words(message.body)
    assert "Total due 1,250.00 EUR" in words(message.body)
    assert message.meta["fax"]["page_count"] == 2


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (crafted_tiff(100_000, 100_000), "100000×100000 pixels"),
        (crafted_tiff(4000, 9999), "has 39996000 pixels"),  # within each side, over the area
        (crafted_tiff(1728, 2292, pages=60), "more than 50 pages"),
        (crafted_tiff(1728, 2292, pages=2, loop=True), "loops back"),
        (b"MM\x00+" + bytes(20), "BigTIFF"),
    ],
)
def test_hostile_tiffs_are_refused_from_the_header(document: bytes, reason: str):
    limits = DocumentLimits(max_page_pixels=30_000_000)
    with pytest.raises(DocumentRefused) as refused:
        inspect_tiff(document, limits)
    assert reason in refused.value.reason


def test_a_real_decompression_bomb_is_refused_before_decoding():
    # 5000×9000 blank pixels compress to a few kilobytes of G4.
    bomb = io.BytesIO()
    Image.new("1", (5000, 9000), 1).save(bomb, format="TIFF", compression="group4")
    data = bomb.getvalue()
    assert len(data) < 50_000
    with pytest.raises(DocumentRefused) as refused:
        inspect_tiff(data, DocumentLimits(max_page_pixels=20_000_000))
    assert "45000000 pixels" in refused.value.reason


async def test_a_hostile_tiff_by_the_gateway_is_kept_as_a_problem_not_decoded(
    services: Services, fax_runtime: FaxRuntime
):
    result = await fax_runtime.intake.receive_documents(
        inbox_id=await fax_inbox(services),
        sender=Address(AddressKind.PHONE, "+14155550143"),
        documents=[InboundAttachment("bomb.tif", "image/tiff", crafted_tiff(90_000, 90_000))],
        source_id="test:bomb",
        origin="test",
    )
    message = await stored(services, result.message_id)
    [problem] = message.meta["problems"]
    assert "'bomb.tif' was refused" in problem and "90000×90000" in problem
    assert message.attachments == []


async def test_the_hylafax_hook_and_spool_deliver_exactly_once(
    services: Services, fax_runtime: FaxRuntime, tmp_path: Path
):
    spool = fax_runtime.settings.spool_dir
    assert spool is not None
    recvq = tmp_path / "recvq"
    recvq.mkdir()
    qfile = recvq / "fax00012.tif"
    qfile.write_bytes(tiff([(page(["Meeting moved to Thursday"]), FINE)]))
    args = [str(qfile), "ttyIAX0", "000000123", "", "+1 415 555 0177", "ACME Corp", "5551000"]
    hylafax.faxrcvd(spool, args)
    assert await fax_runtime.watcher.scan() == 1  # type: ignore[union-attr]
    assert sorted(p.name for p in (spool / "done").iterdir()) == ["000000123.json", "000000123.tif"]
    # The fax server hands the same fax over again (e.g. we crashed before moving it).
    hylafax.faxrcvd(spool, args)
    assert await fax_runtime.watcher.scan() == 1  # type: ignore[union-attr]
    async with services.sessionmaker() as db:
        rows = (
            await db.exec(select(Message).where(col(Message.source_id) == "hylafax:000000123"))
        ).all()
        contact = (
            await db.exec(
                select(Contact)
                .join(ContactIdentity, col(ContactIdentity.contact_id) == Contact.id)
                .where(ContactIdentity.address == "+14155550177")
            )
        ).one()
    assert len(rows) == 1
    assert "Meeting moved to Thursday" in words(rows[0].body)
    assert contact.name == "ACME Corp"
    assert rows[0].meta["fax_server"]["device"] == "ttyIAX0"


async def test_a_bare_recvq_tiff_is_taken_once_it_has_settled(
    services: Services, fax_runtime: FaxRuntime
):
    spool = fax_runtime.settings.spool_dir
    assert spool is not None
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "fax00013.tif").write_bytes(tiff([(page(["Bare spool file"]), FINE)]))
    assert await fax_runtime.watcher.scan() == 0  # type: ignore[union-attr]  # may still grow
    assert await fax_runtime.watcher.scan() == 1  # type: ignore[union-attr]
    async with services.sessionmaker() as db:
        [message] = (await db.exec(select(Message).where(Message.content_type == "fax"))).all()
    assert "Bare spool file" in words(message.body)
    assert "caller's number was not transmitted" in json.dumps(message.meta)


async def test_a_pdf_that_renders_for_hours_does_not_hold_up_the_spool(
    services: Services, fax_runtime: FaxRuntime, tmp_path: Path
):
    """The hostile file's worker is killed at the (shortened) render limit; the fax is kept
    with a note saying which limit stopped it, and the fax queued behind it is read."""
    spool = fax_runtime.settings.spool_dir
    assert spool is not None
    settings = dataclasses.replace(fax_runtime.settings, limits=DocumentLimits(render_seconds=3.0))
    intake = FaxIntake(
        services.ingest, services.attachments, settings, sessionmaker=services.sessionmaker
    )
    watcher = SpoolWatcher(
        intake, inbox_id=await fax_inbox(services), inbound_dir=spool, outgoing_dir=None
    )
    recvq = tmp_path / "recvq"
    recvq.mkdir()
    (recvq / "hostile.pdf").write_bytes(slow_pdf())
    (recvq / "normal.tif").write_bytes(tiff([(page(["Delivery note 88 enclosed"]), FINE)]))
    try:
        hylafax.faxrcvd(
            spool, [str(recvq / "hostile.pdf"), "ttyIAX0", "000000200", "", "+14155550120"]
        )
        hylafax.faxrcvd(
            spool, [str(recvq / "normal.tif"), "ttyIAX0", "000000201", "", "+14155550121"]
        )
        assert await watcher.scan() == 2
        assert intake.workers.killed == 1
        async with services.sessionmaker() as db:
            rows = (
                await db.exec(
                    select(Message).where(Message.content_type == "fax").order_by(col(Message.id))
                )
            ).all()
        hostile, normal = rows
        assert hostile.source_id == "hylafax:000000200"
        [note] = hostile.meta["problems"]
        assert "'000000200.pdf' was refused" in note
        assert "stopped at the time limit (HUB_FAX_RENDER_SECONDS=3)" in note
        assert "Delivery note 88 enclosed" in words(normal.body)

        # HylaFAX hands the hostile file over again under a new id: a duplicate, and it is
        # not rendered again (no worker job, no second wait for the limit).
        jobs = intake.workers.jobs
        hylafax.faxrcvd(
            spool, [str(recvq / "hostile.pdf"), "ttyIAX0", "000000202", "", "+14155550120"]
        )
        assert await watcher.scan() == 1
        assert intake.workers.jobs == jobs
        assert (spool / "done" / "000000202.pdf").exists()
        async with services.sessionmaker() as db:
            count = len((await db.exec(select(Message).where(Message.content_type == "fax"))).all())
        assert count == 2
    finally:
        await intake.aclose()


async def test_a_copy_sent_while_the_first_still_renders_waits_and_is_a_duplicate(
    services: Services, fax_runtime: FaxRuntime
):
    """A gateway whose own time-out is shorter than our render limit sends the file again
    while the first copy is still rendering: the copy waits for the first to be stored and
    is answered as its duplicate, so the hostile file holds one worker, not all of them."""
    settings = dataclasses.replace(fax_runtime.settings, limits=DocumentLimits(render_seconds=3.0))
    intake = FaxIntake(
        services.ingest, services.attachments, settings, sessionmaker=services.sessionmaker
    )
    inbox_id = await fax_inbox(services)
    hostile = slow_pdf()

    async def send(provider_id: str) -> IngestResult:
        return await intake.receive_documents(
            inbox_id=inbox_id,
            sender=Address(AddressKind.PHONE, "+14155550130"),
            documents=[InboundAttachment("drawing.pdf", "application/pdf", hostile)],
            source_id=provider_id,
            origin="test",
        )

    try:
        first, copy = await asyncio.gather(send("gw:1"), send("gw:1-retry"))
        assert (first.duplicate, copy.duplicate) == (False, True)
        assert copy.message_id == first.message_id
        assert (intake.workers.jobs, intake.workers.killed) == (1, 1)
    finally:
        await intake.aclose()
