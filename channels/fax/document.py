"""A received fax document → pages with OCR text, a page image and a thumbnail.

Browsers cannot show TIFF, so every page is also kept as a PNG (1-bit pages stay 1-bit,
which is small) plus a small grey thumbnail; both go to the content-addressed attachment
store and are listed in ``Message.meta["fax"]["pages"]`` for the console.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from channels.fax.ocr import OcrEngine
from channels.fax.pdf import decode_pdf
from channels.fax.settings import DocumentLimits
from channels.fax.tiff import DocumentRefused, decode_tiff

THUMBNAIL_BOX = (240, 340)


def sniff(data: bytes) -> str | None:
    """'tiff', 'pdf' or None, from the magic bytes (never trust a declared content type)."""
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return "pdf"
    return None


@dataclass(frozen=True, slots=True)
class PreparedPage:
    number: int
    image: Image.Image  # aspect-corrected, for OCR
    png: bytes  # the page for the console
    thumbnail: bytes
    width: int
    height: int
    resolution: tuple[float, float] | None
    stretched: bool


@dataclass(frozen=True, slots=True)
class FaxPage:
    number: int
    text: str
    png: bytes
    thumbnail: bytes
    width: int
    height: int
    resolution: tuple[float, float] | None
    stretched: bool


@dataclass(frozen=True, slots=True)
class FaxDocument:
    kind: str  # tiff | pdf
    pages: tuple[FaxPage, ...]
    problems: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        if len(self.pages) == 1:
            return self.pages[0].text
        return "\n\n".join(f"--- page {p.number} ---\n{p.text}" for p in self.pages).strip()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=image.mode == "1")
    return buffer.getvalue()


def _thumbnail(image: Image.Image) -> bytes:
    small = image.convert("L")
    small.thumbnail(THUMBNAIL_BOX, Image.Resampling.LANCZOS)
    return _png(small)


def prepare(data: bytes, limits: DocumentLimits) -> tuple[str, list[PreparedPage]]:
    """Decode (after the header checks) and render previews; CPU-bound, run in the pool."""
    kind = sniff(data)
    if kind is None:
        raise DocumentRefused("not a TIFF or PDF document", too_large=False)
    pages: list[PreparedPage] = []
    if kind == "tiff":
        for index, (image, info) in enumerate(decode_tiff(data, limits), start=1):
            stretched = image.height != info.height
            resolution = (info.xres, info.yres) if info.xres and info.yres else None
            pages.append(
                PreparedPage(
                    index,
                    image,
                    _png(image),
                    _thumbnail(image),
                    image.width,
                    image.height,
                    resolution,
                    stretched,
                )
            )
    else:
        dpi = float(limits.pdf_dpi)
        for index, image in enumerate(decode_pdf(data, limits), start=1):
            pages.append(
                PreparedPage(
                    index,
                    image,
                    _png(image),
                    _thumbnail(image),
                    image.width,
                    image.height,
                    (dpi, dpi),
                    False,
                )
            )
    return kind, pages


async def process_document(data: bytes, limits: DocumentLimits, ocr: OcrEngine) -> FaxDocument:
    """Decode, preview and OCR every page; raises DocumentRefused for what we refuse."""
    kind, prepared = await ocr.run(prepare, data, limits)
    problems: list[str] = []
    try:
        texts = await ocr.run(ocr.recognize_pages_sync, [page.image for page in prepared])
    except Exception as exc:  # OCR trouble must not lose the fax
        texts = [""] * len(prepared)
        problems.append(f"OCR failed ({exc}); the pages are kept as images")
    pages = [
        FaxPage(p.number, text, p.png, p.thumbnail, p.width, p.height, p.resolution, p.stretched)
        for p, text in zip(prepared, texts, strict=True)
    ]
    return FaxDocument(kind, tuple(pages), tuple(sorted(problems)))
