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


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF written byte by byte: ``objects`` are numbered from 1 (1 is the catalog), with
    a correct cross-reference table (PDF 32000-1 §7.5)."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _stream(data: bytes, dictionary: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(data), dictionary, data)


def _one_page(page: bytes, *more: bytes) -> list[bytes]:
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R " + page + b" >>",
        *more,
    ]


def slow_pdf(levels: int = 7, fan: int = 10) -> bytes:
    """A 3 KB letter-size page that renders for hours: a form XObject that draws the next
    one ``fan`` times, ``levels`` deep, the last a filled curve over the page — fan**levels
    curves (10 million here), the way nested forms multiply the work of a tiny file."""
    first = 5
    objects = _one_page(
        b"/MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /XObject << /X %d 0 R >> >>"
        % first,
        _stream(b"/X Do"),
    )
    form = b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] "
    for level in range(1, levels + 1):
        if level < levels:
            body = b" ".join(b"q 1 0 0 1 %d %d cm /N Do Q" % (i % 5, i % 7) for i in range(fan))
            resources = b"/Resources << /XObject << /N %d 0 R >> >>" % (first + level)
        else:
            body, resources = b"10 10 m 500 700 l 300 20 500 500 100 600 c f", b""
        objects.append(_stream(body, form + resources))
    return raw_pdf(objects)


def huge_page_pdf(points: int = 14_400) -> bytes:
    """One empty page of ``points``×``points`` pt (the largest PDF 1.4 allows: 200 inches),
    40,000 pixels square at a fax's 200 dpi."""
    return raw_pdf(
        _one_page(b"/MediaBox [0 0 %d %d] /Contents 4 0 R" % (points, points), _stream(b""))
    )
