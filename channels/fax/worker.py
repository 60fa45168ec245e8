"""Rendering and OCR of received documents in worker processes that are killed at a deadline.

pypdfium2 and tesseract run in C and cannot be interrupted from a Python thread: a PDF
whose page draws a form XObject that draws another ten times, seven levels deep, renders
for hours and holds a core the whole time. So every decode and every OCR of a page runs in
a child process (``python -m channels.fax.worker``), one job at a time per child; the hub
waits for the answer with a time limit, and at the limit kills the child (SIGKILL) and
starts a new one for the next job. A hostile file then costs one worker for the length of
its limit, and the files behind it go on.

The pool is small (``HUB_FAX_OCR_WORKERS``, one per core at most two): it is also the only
bound on how many pages are decoded or read at once across all faxes.

Wire format on the child's stdin/stdout (the child moves its own fd 1 to stderr first, so
a C library that prints cannot corrupt it): a frame is a 4-byte big-endian length, a JSON
header, then the binary blobs whose lengths the header lists. Nothing is unpickled: a child
that a hostile file has subverted can at worst send wrong pixels, never code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import channels

_ROOT = str(Path(channels.__file__).resolve().parent.parent)  # for the child's imports
MAX_HEADER = 16 * 1024 * 1024
START_SECONDS = 60.0  # a worker's imports; far longer than they take even on a busy machine
MAX_BLOBS = 2 * 1024 * 1024 * 1024


class WorkerError(RuntimeError):
    """The job did not finish in its worker; ``reason`` says why, for the agent's note."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WorkerTimeout(WorkerError):
    """The job ran past its time limit: its worker was killed."""


class WorkerCrashed(WorkerError):
    """The worker died during the job (a crash in a C library, the OOM killer…)."""


class WorkerUnavailable(WorkerError):
    """No worker could be started, or the pool is shut down: our fault, a retry may cure it
    (the document is not to blame, so it is not stored with a note)."""


def encode_frame(header: dict[str, Any], blobs: list[bytes] | None = None) -> bytes:
    blobs = blobs or []
    head = json.dumps({**header, "blobs": [len(b) for b in blobs]}).encode()
    return struct.pack(">I", len(head)) + head + b"".join(blobs)


def _parse_header(raw: bytes) -> tuple[dict[str, Any], list[int]]:
    header = json.loads(raw)
    sizes = header.pop("blobs", [])
    if (
        not isinstance(header, dict)
        or not isinstance(sizes, list)
        or not all(isinstance(n, int) and n >= 0 for n in sizes)
        or sum(sizes) > MAX_BLOBS
    ):
        raise ValueError("bad frame header")
    return header, sizes


def read_frame_sync(stream: IO[bytes]) -> tuple[dict[str, Any], list[bytes]] | None:
    """One frame from a blocking stream; None at a clean end of input."""
    raw = stream.read(4)
    if len(raw) < 4:
        return None
    (size,) = struct.unpack(">I", raw)
    if size > MAX_HEADER:
        raise ValueError("frame header too large")
    header, sizes = _parse_header(stream.read(size))
    return header, [stream.read(n) for n in sizes]


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, Any], list[bytes]]:
    (size,) = struct.unpack(">I", await reader.readexactly(4))
    if size > MAX_HEADER:
        raise ValueError("frame header too large")
    header, sizes = _parse_header(await reader.readexactly(size))
    return header, [await reader.readexactly(n) for n in sizes]


@dataclass(frozen=True, slots=True)
class JobRun:
    """What a job cost in its worker: wall time seen by the hub, CPU time seen by the child."""

    pid: int
    started: float  # time.time() in the child
    ended: float
    seconds: float  # wall, measured by the hub from the hand-over to the answer
    cpu_seconds: float


@dataclass(frozen=True, slots=True)
class Reply:
    header: dict[str, Any]
    blobs: list[bytes]
    run: JobRun


# --- the child --------------------------------------------------------------------------------


class _Jobs:
    """The child's side: one tesseract model kept for the child's life (it costs to load)."""

    def __init__(self) -> None:
        self._ocr: Any = None

    def handle(self, header: dict[str, Any], blobs: list[bytes]) -> tuple[dict, list[bytes]]:
        from channels.fax.tiff import DocumentRefused

        try:
            if header.get("job") == "render":
                return self.render(header, blobs)
            if header.get("job") == "ocr":
                return self.ocr(header, blobs)
            return {"ok": False, "error": "failed", "reason": "unknown job"}, []
        except DocumentRefused as refused:
            error = {"error": "refused", "reason": refused.reason, "too_large": refused.too_large}
            return {"ok": False, **error}, []
        except MemoryError:
            return {"ok": False, "error": "failed", "reason": "out of memory"}, []
        except Exception as exc:  # the job's failure, reported; the child lives on
            return {"ok": False, "error": "failed", "reason": f"{type(exc).__name__}: {exc}"}, []

    def render(self, header: dict[str, Any], blobs: list[bytes]) -> tuple[dict, list[bytes]]:
        from channels.fax.document import iter_decoded, previews
        from channels.fax.settings import DocumentLimits

        limits = DocumentLimits(**header["limits"])
        kind, pages = iter_decoded(blobs[0], limits)  # one PDF page's pixels at a time
        out: list[bytes] = []
        described = []
        for page in pages:
            png, thumbnail = previews(page.image)
            out += [png, thumbnail]
            described.append(
                {
                    "number": page.number,
                    "width": page.image.width,
                    "height": page.image.height,
                    "resolution": list(page.resolution) if page.resolution else None,
                    "stretched": page.stretched,
                }
            )
        return {"ok": True, "kind": kind, "pages": described}, out

    def ocr(self, header: dict[str, Any], blobs: list[bytes]) -> tuple[dict, list[bytes]]:
        import io

        from PIL import Image

        from channels.fax.ocr import OcrEngine, OcrUnavailable

        if self._ocr is None:
            tessdata = header.get("tessdata")
            self._ocr = OcrEngine(
                lang=header.get("lang") or "eng",
                workers=1,
                tessdata=Path(tessdata) if tessdata else None,
            )
        self._ocr.timeout = float(header.get("timeout") or 30.0)
        # Our own PNG, written by the render job: trusted, cheap to decode.
        with Image.open(io.BytesIO(blobs[0])) as image:
            image.load()
            try:
                text = self._ocr.recognize_sync(image, header.get("dpi"))
            except OcrUnavailable as exc:
                return {"ok": False, "error": "ocr", "reason": str(exc)}, []
        return {"ok": True, "text": text}, []


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when the hub dies, even in the middle of a render."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # tesseract or pdfium printing to stdout must not corrupt the frames
    sys.stdout = sys.stderr
    _die_with_parent()
    import channels.fax.document  # noqa: F401 - before "ready": start-up is not a job's time

    out.write(encode_frame({"ready": True}))
    out.flush()
    jobs = _Jobs()
    stdin = sys.stdin.buffer
    while True:
        frame = read_frame_sync(stdin)
        if frame is None:
            return
        started, cpu = time.time(), time.process_time()
        header, blobs = jobs.handle(*frame)
        header.update(
            pid=os.getpid(), started=started, ended=time.time(), cpu=time.process_time() - cpu
        )
        out.write(encode_frame(header, blobs))
        out.flush()


# --- the hub's side ---------------------------------------------------------------------------


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def call(self, frame: bytes, seconds: float) -> Reply:
        assert self.process.stdin is not None and self.process.stdout is not None
        handed = time.monotonic()
        try:
            async with asyncio.timeout(seconds):
                self.process.stdin.write(frame)
                await self.process.stdin.drain()
                header, blobs = await read_frame(self.process.stdout)
        except TimeoutError:
            raise WorkerTimeout(f"it ran past the time limit of {seconds:g} s") from None
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            code = self.process.returncode
            raise WorkerCrashed(
                f"the worker process died (exit status {code})" if code else f"bad answer ({exc})"
            ) from None
        run = JobRun(
            int(header.pop("pid", self.process.pid)),
            float(header.pop("started", 0.0)),
            float(header.pop("ended", 0.0)),
            time.monotonic() - handed,
            float(header.pop("cpu", 0.0)),
        )
        return Reply(header, blobs, run)

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(Exception):
            await self.process.wait()


class FaxWorkers:
    """A pool of ``size`` worker processes, started on first use and replaced after a kill."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._idle: asyncio.Queue[_Worker | None] | None = None
        self._all: set[_Worker] = set()
        self._closed = False
        self.jobs = 0  # jobs handed to a worker (a duplicate that is never decoded adds none)
        self.killed = 0  # workers killed at a deadline or lost to a crash

    def _queue(self) -> asyncio.Queue[_Worker | None]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self.size):
                self._idle.put_nowait(None)  # a free slot with no process yet
        return self._idle

    async def _spawn(self) -> _Worker:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH")]))
        env["OMP_THREAD_LIMIT"] = "1"  # one core per worker; the pool size is the bound
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "channels.fax.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        worker = _Worker(process)
        self._all.add(worker)
        assert process.stdout is not None
        try:
            async with asyncio.timeout(START_SECONDS):
                await read_frame(process.stdout)  # "ready": imports done
        except (TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            self._all.discard(worker)
            await worker.kill()
            raise WorkerUnavailable(f"a fax worker process did not start ({exc!r})") from None
        return worker

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[_Worker]:
        queue = self._queue()
        worker = await queue.get()
        healthy = False
        try:
            if worker is None or worker.process.returncode is not None:
                worker = await self._spawn()
            yield worker
            healthy = True
        finally:
            if not healthy and worker is not None:
                self._all.discard(worker)
                await worker.kill()
                worker = None
            queue.put_nowait(worker)

    async def call(
        self,
        header: dict[str, Any],
        blobs: list[bytes],
        seconds: float | Callable[[], float] | None = None,
    ) -> Reply:
        """Run one job in a free worker; ``seconds`` (its time limit) counts from the
        hand-over, not the wait. It may also be a callable, asked once a worker is free (a
        file's budget shrinks while its pages wait). Raises WorkerTimeout / WorkerCrashed."""
        if self._closed:
            raise WorkerUnavailable("the fax workers are shut down")
        frame = encode_frame(header, blobs)
        async with self._slot() as worker:
            limit = seconds() if callable(seconds) else seconds
            if limit is not None and limit <= 0:
                raise WorkerTimeout("no time was left for it")
            self.jobs += 1
            try:
                return await worker.call(frame, limit if limit is not None else 3600.0)
            except WorkerCrashed:
                if self._closed:  # killed by close(): the document is not to blame
                    raise WorkerUnavailable("the fax workers were shut down") from None
                self.killed += 1
                raise
            except WorkerTimeout:
                self.killed += 1
                raise

    async def close(self) -> None:
        self._closed = True
        workers, self._all = list(self._all), set()
        await asyncio.gather(*(w.kill() for w in workers))


if __name__ == "__main__":
    main()
