"""The hub's end of the softphone worker processes (``hub.softphone.worker``).

Each worker is a child process spoken to over its stdin/stdout in JSON lines. Legs go to
the worker with the fewest; each worker gets its own slice of the ICE port range.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
REQUEST_TIMEOUT = 20.0  # an answer waits for ICE gathering (no trickle in aiortc)


class WorkerGone(RuntimeError):
    """The worker process exited or did not answer."""


class WorkerClient:
    """One worker process."""

    def __init__(self, config: dict[str, Any], on_event: Callable[[dict[str, Any]], None]) -> None:
        self.config = config
        self.on_event = on_event
        self.legs = 0
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._restarting = asyncio.Lock()

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hub.softphone.worker",
            json.dumps(self.config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 20,
        )
        self._reader = asyncio.create_task(self._read(), name="softphone-worker")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def ensure_running(self) -> bool:
        """Start the worker again if its process has exited (a crash, or killed): the next
        leg is then served by a fresh process. True when it was restarted. Legs that were
        on the old process have lost their media; a reconnecting page opens them again."""
        async with self._restarting:  # two legs at once start one process
            if self._proc is None or self.running:
                return False
            log.warning(
                "the softphone worker (pid %s) exited with %s: starting it again",
                self._proc.pid,
                self._proc.returncode,
            )
            if self._reader is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._reader
            await self.start()
            return True

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "event" in message:
                try:
                    self.on_event(message)
                except Exception:
                    log.exception("softphone event handler failed")
                continue
            future = self._waiting.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(WorkerGone("the softphone worker exited"))
        self._waiting.clear()

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise WorkerGone("the softphone worker is not running")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        proc.stdin.write((json.dumps({"id": request_id, "op": op, **fields}) + "\n").encode())
        await proc.stdin.drain()
        try:
            reply = await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except TimeoutError:
            raise WorkerGone(f"the softphone worker did not answer {op}") from None
        finally:
            self._waiting.pop(request_id, None)
        if "error" in reply:
            raise WorkerGone(str(reply["error"]))
        return reply

    async def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def port_slices(port_min: int, port_max: int, count: int) -> list[tuple[int, int]]:
    """The ICE range cut in ``count`` slices, one per worker (no two bind the same port)."""
    size = max(1, (port_max - port_min + 1) // max(1, count))
    return [
        (port_min + i * size, port_max if i == count - 1 else port_min + (i + 1) * size - 1)
        for i in range(count)
    ]
