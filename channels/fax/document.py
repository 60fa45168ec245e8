"""A received fax document → pages with OCR text, a page image and a thumbnail.

The decoding and the OCR run in worker processes (``channels.fax.worker``) under the time
limits of ``DocumentLimits``; this module says what each job does and what a stopped job
means for the fax.

Browsers cannot show TIFF, so every page is also kept as a PNG (1-bit pages stay 1-bit,
which is small) plus a small grey thumbnail; both go to the content-addressed attachment
store and are listed in ``Message.meta["fax"]["pages"]`` for the console.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from channels.fax.pdf import iter_pdf
from channels.fax.settings import DocumentLimits
from channels.fax.tiff import DocumentRefused, decode_tiff
from channels.fax.worker import FaxWorkers, JobRun, WorkerCrashed, WorkerTimeout

THUMBNAIL_BOX = (240, 340)
# tesseract stops itself at the page limit; the kill is for when it does not.
OCR_KILL_GRACE = 2.0


def sniff(data: bytes) -> str | None:
    """'tiff', 'pdf' or None, from the magic bytes (never trust a declared content type)."""
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return "pdf"
    return None


@dataclass(frozen=True, slots=True)
class DecodedPage:
    number: int
    image: Image.Image  # aspect-corrected, for OCR and the previews
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
    ocr_run: JobRun | None = None  # what its OCR cost in the worker (None: not read)


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
    # zlib's default level, not ``optimize``: on a 1-bit fax page that is 3–8× less CPU
    # (0.01–0.05 s instead of 0.04–0.27 s, on every page) for a file 5–11 % larger.
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _thumbnail(image: Image.Image) -> bytes:
    small = image.convert("L")
    small.thumbnail(THUMBNAIL_BOX, Image.Resampling.LANCZOS)
    return _png(small)


def previews(image: Image.Image) -> tuple[bytes, bytes]:
    """The page for the console and its thumbnail (run in a worker process)."""
    return _png(image), _thumbnail(image)


def decode(data: bytes, limits: DocumentLimits) -> tuple[str, list[DecodedPage]]:
    """Decode after the header checks (run in a worker process)."""
    kind, pages = iter_decoded(data, limits)
    return kind, list(pages)


def iter_decoded(data: bytes, limits: DocumentLimits) -> tuple[str, Iterator[DecodedPage]]:
    """The kind and the pages, a PDF's rendered one at a time as they are taken."""
    kind = sniff(data)
    if kind is None:
        raise DocumentRefused("not a TIFF or PDF document", too_large=False)
    if kind == "tiff":
        return kind, iter(
            [
                DecodedPage(
                    index,
                    image,
                    (info.xres, info.yres) if info.xres and info.yres else None,
                    image.height != info.height,
                )
                for index, (image, info) in enumerate(decode_tiff(data, limits), start=1)
            ]
        )
    dpi = float(limits.pdf_dpi)
    return kind, (
        DecodedPage(index, image, (dpi, dpi), False)
        for index, image in enumerate(iter_pdf(data, limits), start=1)
    )


class RenderStopped(DocumentRefused):
    """The file's worker was killed at a time limit or died: no header could have told.
    The message is stored with the file attached as it came and this reason as a note, on
    every path, the upload API's too (the sender cannot fix it; the agent should see that
    it arrived)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, too_large=True)


class _Budget:
    """Worker time left for one file (``file_seconds``): render and every page's OCR."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    def spend(self, seconds: float) -> None:
        self.left -= seconds


def _refusal(header: dict[str, Any]) -> DocumentRefused:
    if header.get("error") == "refused":
        return DocumentRefused(str(header.get("reason")), too_large=bool(header.get("too_large")))
    return DocumentRefused(f"it could not be rendered: {header.get('reason')}", too_large=False)


async def process_document(
    data: bytes,
    limits: DocumentLimits,
    workers: FaxWorkers,
    *,
    lang: str = "eng",
    tessdata: Path | None = None,
) -> FaxDocument:
    """Decode, preview and OCR every page in the worker processes; raises DocumentRefused
    (RenderStopped when the render was killed at its time limit).

    The render is one job (``render_seconds``); then each page's OCR is a job of its own
    (``ocr_page_seconds``), so a document's pages run on every worker at once. All of a
    file's jobs share ``file_seconds``: pages whose OCR did not fit are kept as images, and
    ``problems`` says which limit stopped what.
    """
    budget = _Budget(limits.file_seconds)
    render_limit = min(limits.render_seconds, limits.file_seconds)
    try:
        reply = await workers.call(
            {"job": "render", "limits": dataclasses.asdict(limits)}, [data], render_limit
        )
    except WorkerTimeout:
        which = (
            f"HUB_FAX_RENDER_SECONDS={limits.render_seconds:g}"
            if render_limit == limits.render_seconds
            else f"HUB_FAX_FILE_SECONDS={limits.file_seconds:g}"
        )
        raise RenderStopped(
            f"rendering was stopped at the time limit ({which}); the file is attached as "
            "it came, without page images or text, and may be slow to open"
        ) from None
    except WorkerCrashed as exc:
        raise RenderStopped(
            f"the renderer failed on it ({exc.reason}); the file is attached as it came"
        ) from None
    budget.spend(reply.run.seconds)
    if not reply.header.get("ok"):
        raise _refusal(reply.header)
    described = reply.header["pages"]
    blobs = reply.blobs
    if len(blobs) != 2 * len(described):
        raise RenderStopped("the renderer gave a damaged answer; the file is attached as it came")

    async def read(index: int) -> tuple[str, JobRun | None, str | None]:
        """(text, run, problem) for one page."""
        info = described[index]
        number = info["number"]
        limit = {"page": limits.ocr_page_seconds}

        def timeout() -> float:  # asked when a worker is free: the budget may have shrunk
            limit["page"] = min(limits.ocr_page_seconds, budget.left)
            return limit["page"] + OCR_KILL_GRACE if limit["page"] > 0 else 0

        header = {
            "job": "ocr",
            "dpi": (info["resolution"] or [None])[0],
            "lang": lang,
            "tessdata": str(tessdata) if tessdata else None,
            "timeout": limits.ocr_page_seconds,
        }
        try:
            reply = await workers.call(header, [blobs[2 * index]], timeout)
        except WorkerTimeout:
            spent = limit["page"]
            budget.spend(max(spent, 0))
            if spent < limits.ocr_page_seconds:
                return (
                    "",
                    None,
                    (
                        f"page {number} was not OCR'd: the file used its worker time "
                        f"(HUB_FAX_FILE_SECONDS={limits.file_seconds:g}); it is kept as an image"
                    ),
                )
            return (
                "",
                None,
                (
                    f"OCR of page {number} was stopped at the time limit "
                    f"(HUB_FAX_OCR_TIMEOUT_SECONDS={limits.ocr_page_seconds:g}); "
                    "it is kept as an image"
                ),
            )
        except WorkerCrashed as exc:
            return "", None, f"OCR failed on page {number} ({exc.reason}); it is kept as an image"
        budget.spend(reply.run.seconds)
        if not reply.header.get("ok"):
            reason = reply.header.get("reason")
            return "", reply.run, f"OCR failed on page {number} ({reason}); it is kept as an image"
        return str(reply.header.get("text") or ""), reply.run, None

    results = await asyncio.gather(*(read(i) for i in range(len(described))))
    problems: list[str] = []
    pages = []
    for index, (info, (text, run, problem)) in enumerate(zip(described, results, strict=True)):
        if problem:
            problems.append(problem)
        resolution = info["resolution"]
        pages.append(
            FaxPage(
                info["number"],
                text,
                blobs[2 * index],
                blobs[2 * index + 1],
                info["width"],
                info["height"],
                (float(resolution[0]), float(resolution[1])) if resolution else None,
                bool(info["stretched"]),
                run,
            )
        )
    return FaxDocument(str(reply.header["kind"]), tuple(pages), tuple(sorted(problems)))
