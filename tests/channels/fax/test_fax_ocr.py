"""The OCR engine: a document's pages are read side by side on the pool's threads, in order;
the scan resolution reaches tesseract; a page tesseract gives up on keeps the fax."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image

from channels.fax.document import process_document
from channels.fax.ocr import OcrEngine, OcrUnavailable, find_tessdata
from channels.fax.render import text_pages, to_tiff
from channels.fax.settings import DocumentLimits, FaxSettings
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


@pytest.mark.usefixtures("model")
async def test_the_pages_of_one_document_are_read_side_by_side_and_in_order(
    monkeypatch: pytest.MonkeyPatch,
):
    ocr = OcrEngine(workers=2)
    spans: list[tuple[float, float]] = []
    read = ocr.recognize_sync

    def timed(image: Image.Image, dpi: float | None = None) -> str:
        started = time.perf_counter()
        try:
            return read(image, dpi)
        finally:
            spans.append((started, time.perf_counter()))

    monkeypatch.setattr(ocr, "recognize_sync", timed)
    names = ["Alpha", "Bravo", "Charlie", "Delta"]
    pages = [text_pages(f"Page {name}. {PARAGRAPH}")[0] for name in names]
    try:
        fax = await process_document(to_tiff(pages, compression="group4"), DocumentLimits(), ocr)
    finally:
        ocr.close()
    assert [name in page.text for name, page in zip(names, fax.pages, strict=True)] == [True] * 4
    assert fax.problems == ()
    # tesseract runs without the GIL: two pages overlap for most of their time, not just
    # at a hand-over.
    (a_start, a_end), (b_start, b_end) = sorted(spans)[:2]
    overlap = min(a_end, b_end) - max(a_start, b_start)
    assert overlap > 0.5 * min(a_end - a_start, b_end - b_start)


@pytest.mark.usefixtures("model")
async def test_small_type_is_read_at_the_resolution_the_fax_declares():
    # 9 pt on a fine-mode page: left to guess the resolution, tesseract took the layout for
    # something else and returned about a quarter of the words.
    page = text_pages("\n\n".join([PARAGRAPH] * 8), size=26)[0]
    ocr = OcrEngine(workers=1)
    try:
        fax = await process_document(to_tiff([page], compression="group4"), DocumentLimits(), ocr)
    finally:
        ocr.close()
    assert fax.pages[0].text.count("widgets") == 8
    assert fax.pages[0].text.count("Springfield warehouse") == 8


@pytest.mark.usefixtures("model")
async def test_a_page_tesseract_gives_up_on_is_kept_with_a_problem():
    page = text_pages("\n\n".join([PARAGRAPH] * 4))[0]
    ocr = OcrEngine(workers=1, timeout=0.001)
    try:
        fax = await process_document(to_tiff([page], compression="group4"), DocumentLimits(), ocr)
    finally:
        ocr.close()
    assert fax.pages[0].text == "" and fax.pages[0].png
    assert fax.problems == (
        "OCR failed on page 1 (tesseract stopped before the end of the page (time limit 0.001 s)); "
        "it is kept as an image",
    )


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
