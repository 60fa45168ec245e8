"""PDF fax documents (what most fax-to-email gateways and scanners send), via pypdfium2.

The page count and each page's size in points are read before anything is rendered, and
the render size at ``limits.pdf_dpi`` is checked against the same pixel limits as a TIFF.
"""

from __future__ import annotations

from collections.abc import Iterator

from PIL import Image

from channels.fax.settings import DocumentLimits
from channels.fax.tiff import DocumentRefused


def decode_pdf(data: bytes, limits: DocumentLimits) -> list[Image.Image]:
    return list(iter_pdf(data, limits))


def iter_pdf(data: bytes, limits: DocumentLimits) -> Iterator[Image.Image]:
    """The pages one by one, each rendered only when asked for, so a caller that turns each
    into a PNG holds one page's pixels at a time (every size is checked before the first)."""
    import pypdfium2 as pdfium

    if len(data) > limits.max_bytes:
        raise DocumentRefused(f"the file is {len(data)} bytes; the limit is {limits.max_bytes}")
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise DocumentRefused(f"the PDF could not be read: {exc}", too_large=False) from exc
    try:
        count = len(document)
        if count == 0:
            raise DocumentRefused("the PDF has no pages", too_large=False)
        if count > limits.max_pages:
            raise DocumentRefused(f"the PDF has {count} pages; the limit is {limits.max_pages}")
        scale = limits.pdf_dpi / 72.0
        sizes = []
        total = 0
        for index in range(count):
            width_pt, height_pt = document.get_page_size(index)
            width, height = round(width_pt * scale), round(height_pt * scale)
            if width > limits.max_width or height > limits.max_height:
                raise DocumentRefused(
                    f"page {index + 1} would render at {width}×{height} pixels; "
                    f"the limit is {limits.max_width}×{limits.max_height}"
                )
            total += width * height
            sizes.append((width, height))
        if total > limits.max_total_pixels:
            raise DocumentRefused(f"the pages add up to more than {limits.max_total_pixels} pixels")
        for index in range(count):
            page = document[index]
            try:
                bitmap = page.render(scale=scale, grayscale=True)
                image = bitmap.to_pil().convert("L")
                bitmap.close()
            finally:
                page.close()
            yield image
    finally:
        document.close()
