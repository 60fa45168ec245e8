"""TIFF fax documents: a header walk that refuses hostile files before any decoding, then
page decoding with the fax aspect ratio corrected.

TIFF 6.0 §2: an 8-byte header (byte order, 42, first IFD offset) and a chain of IFDs, one
per page, whose entries give each page's width, length, resolution and compression (3 = T.4
"G3", ITU-T T.4; 4 = T.6 "G4", ITU-T T.6). Reading only those few bytes tells us what a page
would cost to decode, so a decompression bomb (a tiny G4 file that expands to gigapixels)
or a file with thousands of pages is refused with a reason without allocating anything.

Fax "standard" resolution is 204×98 dpi: its pixels are twice as tall as wide, so a page
looks squashed and OCRs badly until each line is doubled (T.4 §2.2). "Fine" is 204×196.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from PIL import Image

from channels.fax.settings import DocumentLimits

TAG_WIDTH, TAG_LENGTH, TAG_BITS, TAG_COMPRESSION = 256, 257, 258, 259
TAG_DESCRIPTION, TAG_SAMPLES, TAG_XRES, TAG_YRES, TAG_UNIT = 270, 277, 282, 283, 296
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
COMPRESSIONS = {1: "none", 2: "CCITT RLE", 3: "G3 (T.4)", 4: "G4 (T.6)", 5: "LZW", 7: "JPEG",
                8: "Deflate", 32773: "PackBits", 32946: "Deflate"}  # fmt: skip


class DocumentRefused(ValueError):
    """A document we will not decode; ``reason`` is shown to the sender or the agent."""

    def __init__(self, reason: str, *, too_large: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large  # HTTP 413 when True, 422 (undecodable) when False


@dataclass(frozen=True, slots=True)
class TiffPage:
    width: int
    height: int
    xres: float | None  # dots per inch
    yres: float | None
    bits: int
    samples: int
    compression: str
    description: str = ""

    @property
    def decoded_bytes(self) -> int:
        return (self.width * self.height * self.bits * self.samples + 7) // 8


def _unit_scale(unit: int) -> float:
    return 2.54 if unit == 3 else 1.0  # 3 = centimetre → inch


def inspect_tiff(data: bytes, limits: DocumentLimits) -> list[TiffPage]:
    """Walk the IFD chain and check every page against ``limits``; decode nothing."""
    if len(data) > limits.max_bytes:
        raise DocumentRefused(f"the file is {len(data)} bytes; the limit is {limits.max_bytes}")
    if len(data) < 8 or data[:4] not in (b"II*\x00", b"MM\x00*"):
        if data[:4] in (b"II+\x00", b"MM\x00+"):
            raise DocumentRefused("BigTIFF is not a fax format", too_large=False)
        raise DocumentRefused("not a TIFF file", too_large=False)
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", data, 4)
    pages: list[TiffPage] = []
    seen: set[int] = set()
    total = 0
    while offset:
        if offset in seen:
            raise DocumentRefused("the TIFF page chain loops back on itself", too_large=False)
        seen.add(offset)
        if len(pages) >= limits.max_pages:
            raise DocumentRefused(f"more than {limits.max_pages} pages")
        if offset + 2 > len(data):
            raise DocumentRefused("a TIFF page directory points past the file", too_large=False)
        (count,) = struct.unpack_from(order + "H", data, offset)
        if count > 500 or offset + 2 + count * 12 + 4 > len(data):
            raise DocumentRefused("a TIFF page directory is damaged", too_large=False)
        tags = _read_entries(data, order, offset + 2, count)
        page = _page_from(tags)
        _check_page(page, len(pages) + 1, limits)
        total += page.width * page.height
        if total > limits.max_total_pixels:
            raise DocumentRefused(f"the pages add up to more than {limits.max_total_pixels} pixels")
        pages.append(page)
        (offset,) = struct.unpack_from(order + "I", data, offset + 2 + count * 12)
    if not pages:
        raise DocumentRefused("the TIFF has no pages", too_large=False)
    return pages


def _read_entries(data: bytes, order: str, start: int, count: int) -> dict[int, object]:
    tags: dict[int, object] = {}
    for i in range(count):
        tag, typ, n, raw = struct.unpack_from(order + "HHI4s", data, start + i * 12)
        size = _TYPE_SIZES.get(typ, 0) * n
        if tag not in (TAG_WIDTH, TAG_LENGTH, TAG_BITS, TAG_COMPRESSION, TAG_DESCRIPTION,
                       TAG_SAMPLES, TAG_XRES, TAG_YRES, TAG_UNIT):  # fmt: skip
            continue
        if size == 0:
            continue
        if size <= 4:
            blob = raw[:size]
        else:
            (where,) = struct.unpack(order + "I", raw)
            if where + size > len(data) or size > 4096:
                continue
            blob = data[where : where + size]
        if typ == 2:
            tags[tag] = blob.rstrip(b"\x00").decode("latin-1")
        elif typ == 3:
            tags[tag] = struct.unpack_from(order + "H", blob)[0]
        elif typ == 4:
            tags[tag] = struct.unpack_from(order + "I", blob)[0]
        elif typ == 5:
            num, den = struct.unpack_from(order + "II", blob)
            tags[tag] = num / den if den else None
    return tags


def _page_from(tags: dict[int, object]) -> TiffPage:
    width, height = tags.get(TAG_WIDTH), tags.get(TAG_LENGTH)
    if not isinstance(width, int) or not isinstance(height, int) or width < 1 or height < 1:
        raise DocumentRefused("a TIFF page has no valid width or length", too_large=False)
    scale = _unit_scale(int(tags.get(TAG_UNIT, 2) or 2))  # type: ignore[call-overload]
    xres, yres = tags.get(TAG_XRES), tags.get(TAG_YRES)
    code = int(tags.get(TAG_COMPRESSION, 1) or 1)  # type: ignore[call-overload]
    return TiffPage(
        width=width,
        height=height,
        xres=xres * scale if isinstance(xres, float) else None,
        yres=yres * scale if isinstance(yres, float) else None,
        bits=int(tags.get(TAG_BITS, 1) or 1),  # type: ignore[call-overload]
        samples=int(tags.get(TAG_SAMPLES, 1) or 1),  # type: ignore[call-overload]
        compression=COMPRESSIONS.get(code, f"code {code}"),
        description=str(tags.get(TAG_DESCRIPTION, "") or ""),
    )


def _check_page(page: TiffPage, number: int, limits: DocumentLimits) -> None:
    if page.width > limits.max_width or page.height > limits.max_height:
        raise DocumentRefused(
            f"page {number} is {page.width}×{page.height} pixels; the limit is "
            f"{limits.max_width}×{limits.max_height}"
        )
    if page.width * page.height > limits.max_page_pixels:
        raise DocumentRefused(
            f"page {number} has {page.width * page.height} pixels; "
            f"the limit is {limits.max_page_pixels}"
        )
    if page.decoded_bytes > limits.max_page_bytes:
        raise DocumentRefused(
            f"page {number} would take {page.decoded_bytes} bytes decoded; "
            f"the limit is {limits.max_page_bytes}"
        )


def stretch_factor(xres: float | None, yres: float | None) -> int:
    """Lines to repeat so pixels are square: 2 for standard mode (204×98 dpi), else 1."""
    if not xres or not yres or yres >= xres * 0.75:
        return 1
    return max(1, round(xres / yres))


def square_pixels(image: Image.Image, xres: float | None, yres: float | None) -> Image.Image:
    factor = stretch_factor(xres, yres)
    if factor == 1:
        return image
    stretched = image.resize((image.width, image.height * factor), Image.Resampling.NEAREST)
    stretched.info["dpi"] = (xres, (yres or 0) * factor)
    return stretched


def decode_tiff(data: bytes, limits: DocumentLimits) -> list[tuple[Image.Image, TiffPage]]:
    """Every page, aspect-corrected, after ``inspect_tiff`` accepted the file."""
    pages = inspect_tiff(data, limits)
    out: list[tuple[Image.Image, TiffPage]] = []
    with warnings.catch_warnings():
        # Pillow's own bomb check as a second line behind ours.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                for index, page in enumerate(pages):
                    image.seek(index)
                    image.load()
                    frame = image.copy()
                    if frame.mode not in ("1", "L"):
                        frame = frame.convert("L")
                    out.append((square_pixels(frame, page.xres, page.yres), page))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DocumentRefused(f"decompression bomb: {exc}") from exc
        except (OSError, ValueError, EOFError, struct.error) as exc:
            raise DocumentRefused(f"the TIFF could not be decoded: {exc}", too_large=False) from exc
    return out
