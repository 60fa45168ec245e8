"""Fax documents for tests, drawn with Pillow and a TrueType font (independent of our
renderer): real G3/G4 TIFFs at fine (204×196) and standard (204×98) resolution, PDFs, and
hostile files written byte by byte."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, TiffImagePlugin

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
FINE = (204, 196)
STANDARD = (204, 98)


def page(lines: list[str], dpi: tuple[int, int] = FINE) -> Image.Image:
    """An A4 fax page (1728 pixels wide) with ``lines`` in 14 pt, as a 1-bit image."""
    height_fine = 2292
    canvas = Image.new("L", (1728, height_fine), 255)
    draw = ImageDraw.Draw(canvas)
    face = ImageFont.truetype(str(FONT), 40)
    for index, line in enumerate(lines):
        draw.text((120, 150 + index * 64), line, font=face, fill=0)
    if dpi != FINE:  # what a standard-mode scanner sends: every other line
        canvas = canvas.resize((1728, round(height_fine * dpi[1] / FINE[1])), Image.LANCZOS)
    return canvas.point(lambda v: 255 if v > 140 else 0).convert("1")


def tiff(pages: list[tuple[Image.Image, tuple[int, int]]], compression: str = "group4") -> bytes:
    """A multi-page TIFF; each page keeps its own resolution."""
    buffer = io.BytesIO()
    with TiffImagePlugin.AppendingTiffWriter(buffer, new=True) as writer:
        for image, dpi in pages:
            image.encoderinfo = {"compression": compression, "dpi": dpi}
            image.encoderconfig = ()
            TiffImagePlugin._save(image, writer, "page.tif")
            writer.newFrame()
    return buffer.getvalue()


def pdf(pages: list[Image.Image]) -> bytes:
    buffer = io.BytesIO()
    first, *rest = [p.convert("L") for p in pages]
    first.save(buffer, format="PDF", resolution=200.0, save_all=True, append_images=rest)
    return buffer.getvalue()


def crafted_tiff(
    width: int, height: int, *, pages: int = 1, loop: bool = False, compression: int = 4
) -> bytes:
    """A little-endian TIFF whose IFDs claim ``width``×``height``; the strips are garbage,
    so only a check of the header (not a decoder) can say what is wrong with it."""
    entries_per_ifd = 8
    ifd_size = 2 + entries_per_ifd * 12 + 4
    strip = b"\x00\x01" * 8
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    offsets = [8 + i * ifd_size for i in range(pages)]
    strip_at = 8 + pages * ifd_size
    for i, at in enumerate(offsets):
        entries = [
            (256, 4, 1, width),
            (257, 4, 1, height),
            (258, 3, 1, 1),
            (259, 3, 1, compression),
            (262, 3, 1, 0),
            (273, 4, 1, strip_at),
            (278, 4, 1, height),
            (279, 4, 1, len(strip)),
        ]
        out += struct.pack("<H", len(entries))
        for tag, typ, count, value in entries:
            if typ == 3:
                out += struct.pack("<HHIHH", tag, typ, count, value, 0)
            else:
                out += struct.pack("<HHII", tag, typ, count, value)
        following = offsets[i + 1] if i + 1 < pages else (at if loop else 0)
        out += struct.pack("<I", following)
    out += strip
    return bytes(out)
