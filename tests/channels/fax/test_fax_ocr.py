"""OCR in the worker processes: a document's pages are read side by side, in order; the scan
resolution reaches tesseract; a page tesseract gives up on keeps the fax."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from channels.fax.document import RenderStopped, process_document
from channels.fax.ocr import OcrEngine, OcrUnavailable, find_tessdata
from channels.fax.render import text_pages, to_tiff
from channels.fax.settings import DocumentLimits, FaxSettings
from channels.fax.worker import FaxWorkers
from tests.support import unavailable

PARAGRAPH = (
    "Purchase order 4711. Please deliver forty blue widgets and twelve red gaskets to the "
    "Springfield warehouse before Friday. Invoice to accounts payable, reference PO-4711, "
    "net thirty days. Call us if any item is out of stock."
)


@pytest.fixture
def model() -> Path:
    found = find_tessdata("eng")
    if found is None:
        unavailable("no eng.traineddata (./dev.sh test installs Debian's tesseract-ocr)")
    return found  # type: ignore[return-value]


@pytest.fixture
async def workers() -> AsyncIterator[FaxWorkers]:
    pool = FaxWorkers(2)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.mark.usefixtures("model")
async def test_the_pages_of_one_document_are_read_side_by_side_and_in_order(
    workers: FaxWorkers,
):
    names = ["Alpha", "Bravo", "Charlie", "Delta"]
    pages = [text_pages(f"Page {name}. {PARAGRAPH}")[0] for name in names]
    document = to_tiff(pages, compression="group4")
    fax = await process_document(document, DocumentLimits(), workers)
    assert [name in page.text for name, page in zip(names, fax.pages, strict=True)] == [True] * 4
    assert fax.problems == ()
    # One job per page: both worker processes read pages of the one document.
    assert len({page.ocr_run.pid for page in fax.pages if page.ocr_run}) == 2


@pytest.mark.usefixtures("model")
async def test_small_type_is_read_at_the_resolution_the_fax_declares(workers: FaxWorkers):
    # 9 pt on a fine-mode page: left to guess the resolution, tesseract took the layout for
    # something else and returned about a quarter of the words.
    page = text_pages("\n\n".join([PARAGRAPH] * 8), size=26)[0]
    document = to_tiff([page], compression="group4")
    fax = await process_document(document, DocumentLimits(), workers)
    assert fax.pages[0].text.count("widgets") == 8
    assert fax.pages[0].text.count("Springfield warehouse") == 8


@pytest.mark.usefixtures("model")
async def test_a_page_tesseract_gives_up_on_is_kept_with_a_problem(workers: FaxWorkers):
    page = text_pages("\n\n".join([PARAGRAPH] * 4))[0]
    limits = DocumentLimits(ocr_page_seconds=0.001)
    fax = await process_document(to_tiff([page], compression="group4"), limits, workers)
    assert fax.pages[0].text == "" and fax.pages[0].png
    assert fax.problems == (
        "OCR failed on page 1 (tesseract stopped before the end of the page (time limit 0.001 s)); "
        "it is kept as an image",
    )


async def test_a_file_that_used_its_worker_time_is_stopped_naming_that_limit(
    workers: FaxWorkers,
):
    # A millisecond: no page decodes and turns into a PNG that fast, so the worker is killed.
    document = to_tiff(text_pages(PARAGRAPH), compression="group4")
    with pytest.raises(RenderStopped, match=r"time limit \(HUB_FAX_FILE_SECONDS=0.001\)"):
        await process_document(document, DocumentLimits(file_seconds=0.001), workers)
    assert workers.killed == 1
    # The pool replaced the worker: the same file goes through under the default limits.
    fax = await process_document(document, DocumentLimits(), workers)
    assert "widgets" in fax.pages[0].text


async def test_a_configured_model_directory_is_used_alone(tmp_path: Path):
    ocr = OcrEngine(tessdata=tmp_path)
    try:
        with pytest.raises(OcrUnavailable, match="HUB_FAX_OCR_TESSDATA"):
            await ocr.recognize(text_pages(PARAGRAPH)[0])
    finally:
        ocr.close()


def test_ocr_workers_default_to_the_cores_at_most_two():
    cores = len(os.sched_getaffinity(0))
    assert FaxSettings.from_env({}).ocr_workers == min(2, cores)
    assert FaxSettings.from_env({"HUB_FAX_OCR_WORKERS": "3"}).ocr_workers == 3
    ocr = OcrEngine()
    ocr.close()
    assert ocr.workers == min(2, cores)


def test_the_time_limits_are_settings():
    limits = FaxSettings.from_env({}).limits
    assert (limits.render_seconds, limits.ocr_page_seconds, limits.file_seconds) == (30, 30, 120)
    env = {
        "HUB_FAX_RENDER_SECONDS": "2.5",
        "HUB_FAX_OCR_TIMEOUT_SECONDS": "4",
        "HUB_FAX_FILE_SECONDS": "9",
    }
    limits = FaxSettings.from_env(env).limits
    assert (limits.render_seconds, limits.ocr_page_seconds, limits.file_seconds) == (2.5, 4, 9)
