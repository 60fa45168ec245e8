"""An agent's reply → a fax TIFF: a cover page, the text, then the pages of any PDF the
agent attached; G3 (ITU-T T.4), fine mode.

Fine mode is 204×196 dpi; a T.4 line is 1728 pixels wide (215 mm), and an A4 page is 2292
lines at 196 dpi. The file is 1-bit, multi-page, Group 3 compressed: what HylaFAX's
``sendfax`` and every fax modem take without conversion.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from channels.fax.pdf import decode_pdf
from channels.fax.settings import DocumentLimits

FINE_DPI = (204, 196)
STANDARD_DPI = (204, 98)
PAGE_WIDTH = 1728  # T.4 §2.2: 1728 picture elements along a 215 mm line
A4_LINES_FINE = 2292
MARGIN = 110
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
)
BOLD_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
)


@lru_cache(maxsize=16)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for candidate in BOLD_CANDIDATES if bold else FONT_CANDIDATES:
        if Path(candidate).exists():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size)


@dataclass(frozen=True, slots=True)
class CoverPage:
    to_number: str
    from_name: str
    from_number: str
    subject: str
    reference: str  # "[#123]"
    sent_at: datetime


def _wrap(text: str, chars: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.replace("\r\n", "\n").split("\n"):
        lines.extend(textwrap.wrap(paragraph, chars, replace_whitespace=False) or [""])
    return lines


def text_pages(text: str, *, dpi: tuple[int, int] = FINE_DPI, size: int = 34) -> list[Image.Image]:
    """Text set in 12 pt on A4 fax pages (1-bit) at ``dpi``."""
    yscale = dpi[1] / dpi[0]
    height = round(A4_LINES_FINE * dpi[1] / FINE_DPI[1])
    face = font(size)
    char_width = max(1, round(face.getlength("n")))
    chars = max(20, (PAGE_WIDTH - 2 * MARGIN) // char_width)
    line_height = round(size * 1.45)
    per_page = max(1, round((A4_LINES_FINE - 2 * MARGIN) / line_height))
    lines = _wrap(text, chars)
    pages = []
    for start in range(0, max(1, len(lines)), per_page):
        canvas = Image.new("L", (PAGE_WIDTH, A4_LINES_FINE), 255)
        draw = ImageDraw.Draw(canvas)
        y = MARGIN
        for line in lines[start : start + per_page]:
            draw.text((MARGIN, y), line, font=face, fill=0)
            y += line_height
        if yscale != 1:
            canvas = canvas.resize((PAGE_WIDTH, height), Image.Resampling.LANCZOS)
        pages.append(canvas.point(lambda v: 255 if v > 140 else 0).convert("1"))
    return pages


def cover_page(cover: CoverPage, total_pages: int) -> Image.Image:
    canvas = Image.new("L", (PAGE_WIDTH, A4_LINES_FINE), 255)
    draw = ImageDraw.Draw(canvas)
    draw.text((MARGIN, MARGIN), "FAX", font=font(110, bold=True), fill=0)
    draw.line((MARGIN, 300, PAGE_WIDTH - MARGIN, 300), fill=0, width=6)
    rows = [
        ("To", cover.to_number),
        ("From", f"{cover.from_name} {cover.from_number}".strip()),
        ("Date", cover.sent_at.strftime("%Y-%m-%d %H:%M %Z").strip()),
        ("Subject", cover.subject),
        ("Reference", cover.reference),
        ("Pages", f"{total_pages} including this cover page"),
    ]
    y = 360
    for label, value in rows:
        draw.text((MARGIN, y), f"{label}:", font=font(44, bold=True), fill=0)
        for line in _wrap(value, 48) or [""]:
            draw.text((MARGIN + 330, y), line, font=font(44), fill=0)
            y += 64
        y += 24
    draw.text(
        (MARGIN, A4_LINES_FINE - MARGIN - 60),
        f"Please quote {cover.reference} when you reply.",
        font=font(36),
        fill=0,
    )
    return canvas.point(lambda v: 255 if v > 140 else 0).convert("1")


def pdf_pages(data: bytes, limits: DocumentLimits) -> list[Image.Image]:
    """An attached PDF's pages as fax pages: rendered by ``decode_pdf`` within ``limits``
    (raises ``DocumentRefused`` with the reason), scaled to the T.4 line width with the
    page's proportions kept at fine mode's 204×196 dpi, then 1-bit.

    A page wider than A4 is shrunk to fit the line (what a fax machine does with A3); a
    narrower one is scaled up, so its text is as large as on paper.
    """
    pages = []
    for image in decode_pdf(data, limits):
        # the same physical height at 196 lines per inch as the width at 204 dots per inch
        scale = PAGE_WIDTH / image.width * FINE_DPI[1] / FINE_DPI[0]
        height = max(1, round(image.height * scale))
        page = image.convert("L").resize((PAGE_WIDTH, height), Image.Resampling.LANCZOS)
        pages.append(page.point(lambda v: 255 if v > 140 else 0).convert("1"))
    return pages


def _pages(
    body: str,
    cover: CoverPage,
    pdfs: tuple[bytes, ...],
    limits: DocumentLimits | None,
) -> list[Image.Image]:
    """Cover, text pages (none for an empty text beside an attachment), attached pages."""
    attached = [page for pdf in pdfs for page in pdf_pages(pdf, limits or DocumentLimits())]
    body_pages = text_pages(body) if body.strip() or not attached else []
    return [cover_page(cover, len(body_pages) + len(attached) + 1), *body_pages, *attached]


def to_tiff(pages: list[Image.Image], *, compression: str = "group3", dpi=FINE_DPI) -> bytes:
    """A multi-page 1-bit TIFF (``group3`` = T.4, ``group4`` = T.6)."""
    buffer = io.BytesIO()
    first, *rest = [p if p.mode == "1" else p.convert("1") for p in pages]
    first.save(
        buffer,
        format="TIFF",
        compression=compression,
        dpi=dpi,
        save_all=True,
        append_images=rest,
    )
    return buffer.getvalue()


def render_fax(
    body: str,
    cover: CoverPage,
    pdfs: tuple[bytes, ...] = (),
    limits: DocumentLimits | None = None,
) -> bytes:
    """The whole outgoing fax: cover page, the body, then each attached PDF's pages."""
    return to_tiff(_pages(body, cover, pdfs, limits))


def preview_pngs(
    body: str,
    cover: CoverPage,
    *,
    width: int = 600,
    pdfs: tuple[bytes, ...] = (),
    limits: DocumentLimits | None = None,
) -> list[bytes]:
    """The pages a reply will be faxed as (cover first), as small PNGs for the composer."""
    pages = _pages(body, cover, pdfs, limits)
    previews = []
    for page in pages:
        small = page.convert("L")
        small.thumbnail((width, round(width * A4_LINES_FINE / PAGE_WIDTH)), Image.LANCZOS)
        buffer = io.BytesIO()
        small.save(buffer, format="PNG", optimize=True)
        previews.append(buffer.getvalue())
    return previews
