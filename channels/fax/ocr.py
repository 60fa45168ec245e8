"""OCR with tesseract's library (through ``tesserocr``).

Received documents are read in the worker processes of ``channels.fax.worker`` (one engine
per process, killed at the time limit: tesseract cannot be stopped from a thread); the
thread pool here serves trusted work in the hub process (rendering our own replies, tests).
The notes below, on the library against the command, hold for both.

Why the library and not the ``tesseract`` command: a command run pays process start and
model load (~0.15 s CPU) every time, so a document went through one run and one core. The
library keeps the model loaded per thread and releases the GIL while it recognizes, so a
document's pages spread over every pool thread at no extra cost; the wheel's tesseract 5.5
also took 20–25 % less CPU per page than Debian's 5.3 command on the same pages and the
same model (bench/README.md, "Fax: OCR per page"). The pool size is how many pages are OCR'd at
once across all faxes, so a burst of faxes queues instead of oversubscribing the CPU.

Pages go in as raw pixels, never as an encoded file: Pillow has already decoded the fax, and
the image codecs bundled in the wheel never see untrusted input. The scan resolution goes
in too: left to guess, tesseract misread the layout of a page of 9 pt type and returned a
quarter of its words. The model files are Debian's (``tesseract-ocr-eng``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from channels.fax.settings import default_ocr_workers

T = TypeVar("T")

# Where distributions put tesseract's models (Debian/Ubuntu 5.x and 4.x, Fedora, Alpine).
TESSDATA_DIRS = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
)
# tesseract's credible range: outside it, it warns and guesses, as it does when given none.
CREDIBLE_DPI = (70, 2400)


class OcrUnavailable(RuntimeError):
    pass


def find_tessdata(lang: str, configured: Path | None = None) -> Path | None:
    """The directory holding ``<lang>.traineddata``: the one configured (and only it), else
    $TESSDATA_PREFIX, else the usual distribution paths (the wheel's own default is a build
    path that does not exist here)."""
    if configured is not None:
        candidates = [configured]
    else:
        prefix = os.environ.get("TESSDATA_PREFIX")
        candidates = [Path(d) for d in ([prefix] if prefix else []) + list(TESSDATA_DIRS)]
    models = [f"{name}.traineddata" for name in lang.split("+")]
    for directory in candidates:
        if all((directory / model).is_file() for model in models):
            return directory
    return None


class OcrEngine:
    def __init__(
        self,
        *,
        lang: str = "eng",
        workers: int | None = None,
        timeout: float = 120.0,
        tessdata: Path | None = None,
    ) -> None:
        self.lang = lang
        self.timeout = timeout
        self.workers = max(1, workers or default_ocr_workers())
        self.tessdata = find_tessdata(lang, tessdata)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ocr")
        self._local = threading.local()

    def _api(self) -> Any:
        """This thread's tesseract, created on first use and kept (the model load costs)."""
        api = getattr(self._local, "api", None)
        if api is None:
            try:
                import tesserocr
            except ImportError as exc:  # pragma: no cover - a dependency of the hub
                raise OcrUnavailable("the tesserocr package is not installed") from exc
            if self.tessdata is None:
                raise OcrUnavailable(
                    f"no tesseract model for {self.lang!r} (Debian: tesseract-ocr-<lang>; "
                    "or set HUB_FAX_OCR_TESSDATA to the directory of <lang>.traineddata)"
                )
            try:
                api = tesserocr.PyTessBaseAPI(
                    path=f"{self.tessdata}/", lang=self.lang, psm=tesserocr.PSM.AUTO
                )
            except RuntimeError as exc:
                raise OcrUnavailable(str(exc)) from exc
            self._local.api = api
        return api

    def recognize_sync(self, image: Image.Image, dpi: float | None = None) -> str:
        """The text of one page; ``dpi`` defaults to the image's own (``info["dpi"]``)."""
        api = self._api()
        if image.mode == "1":  # packed bits, 1 = white: what tesseract takes as 0 bytes/pixel
            api.SetImageBytes(image.tobytes(), image.width, image.height, 0, (image.width + 7) // 8)
        else:
            grey = image.convert("L")
            api.SetImageBytes(grey.tobytes(), grey.width, grey.height, 1, grey.width)
        if dpi is None:
            dpi = (image.info.get("dpi") or (None,))[0]
        if dpi and CREDIBLE_DPI[0] <= dpi <= CREDIBLE_DPI[1]:
            api.SetSourceResolution(round(dpi))
        try:
            if not api.Recognize(timeout=max(1, round(self.timeout * 1000))):  # 0 = no limit
                raise OcrUnavailable(
                    f"tesseract stopped before the end of the page (time limit {self.timeout:g} s)"
                )
            return api.GetUTF8Text().strip()
        finally:
            api.Clear()  # do not keep the page and its results until the next fax

    async def recognize(self, image: Image.Image, dpi: float | None = None) -> str:
        return await self.run(self.recognize_sync, image, dpi)

    async def recognize_pages(
        self, pages: Sequence[tuple[Image.Image, float | None]]
    ) -> list[str | BaseException]:
        """Every page as its own pool task, so the pages of one document run side by side;
        a page that fails gives its exception instead of losing the others."""
        return await asyncio.gather(
            *(self.recognize(image, dpi) for image, dpi in pages), return_exceptions=True
        )

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound work (decoding, OCR) in the bounded pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
