"""Stopping background tasks, the same way everywhere."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the tasks and wait until each has finished, so nothing they hold (a socket, a
    connection, a file) is still in use when the caller goes on. ``None`` is skipped."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    for task in live:
        with contextlib.suppress(asyncio.CancelledError):
            await task
