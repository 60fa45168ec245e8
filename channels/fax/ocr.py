"""OCR through the tesseract command, in a bounded thread pool off the event loop.

``OMP_THREAD_LIMIT=1``: tesseract's OpenMP threads fight each other on a small machine
(a page takes 2–3 s instead of ~0.4 s), and the pool already gives us the parallelism we
want. The image goes in on stdin as PNG and the text comes back on stdout, so nothing is
written to disk.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from PIL import Image

T = TypeVar("T")


class OcrUnavailable(RuntimeError):
    pass


class OcrEngine:
    def __init__(self, *, lang: str = "eng", workers: int = 1, timeout: float = 120.0) -> None:
        self.lang = lang
        self.timeout = timeout
        self.binary = shutil.which("tesseract")
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ocr")
        self._env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def recognize_sync(self, image: Image.Image) -> str:
        if self.binary is None:
            raise OcrUnavailable("tesseract is not installed (Debian: tesseract-ocr)")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        done = subprocess.run(
            [self.binary, "stdin", "stdout", "-l", self.lang, "--psm", "3"],
            input=buffer.getvalue(),
            capture_output=True,
            env=self._env,
            timeout=self.timeout,
            check=False,
        )
        if done.returncode != 0:
            raise OcrUnavailable(done.stderr.decode("utf-8", "replace").strip()[-300:])
        return done.stdout.decode("utf-8", "replace").replace("\x0c", "").strip()

    def recognize_pages_sync(self, images: list[Image.Image]) -> list[str]:
        """All pages in one tesseract run (a multi-page TIFF on stdin): the ~0.3 s it takes
        to load the model is paid once per document, not once per page."""
        if len(images) == 1:
            return [self.recognize_sync(images[0])]
        if self.binary is None:
            raise OcrUnavailable("tesseract is not installed (Debian: tesseract-ocr)")
        bilevel = all(image.mode == "1" for image in images)
        # Fresh images: frames decoded from a TIFF carry its tags, which confuse the encoder.
        frames = [
            Image.frombytes(image.mode, image.size, image.tobytes())
            if bilevel
            else image.convert("L")
            for image in images
        ]
        buffer = io.BytesIO()
        frames[0].save(
            buffer,
            format="TIFF",
            compression="group4" if bilevel else "tiff_deflate",
            save_all=True,
            append_images=frames[1:],
        )
        done = subprocess.run(
            [self.binary, "stdin", "stdout", "-l", self.lang, "--psm", "3"],
            input=buffer.getvalue(),
            capture_output=True,
            env=self._env,
            timeout=self.timeout * len(images),
            check=False,
        )
        if done.returncode != 0:
            raise OcrUnavailable(done.stderr.decode("utf-8", "replace").strip()[-300:])
        texts = done.stdout.decode("utf-8", "replace").split("\x0c")
        if len(texts) < len(images):
            return [self.recognize_sync(image) for image in images]  # pages did not line up
        return [text.strip() for text in texts[: len(images)]]

    async def recognize(self, image: Image.Image) -> str:
        return await self.run(self.recognize_sync, image)

    async def run(self, func, *args):  # type: ignore[no-untyped-def]
        """Run CPU-bound work (decoding, OCR) in the bounded pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
