"""Queue position and estimated wait time from recent handle times."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_HANDLE_SECONDS = 180.0  # used until the queue has closed something in the window
HANDLE_WINDOW_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class QueuePosition:
    position: int | None  # 1-based among the queue's waiting items; None when not waiting
    ewt_seconds: int | None  # None when nobody is logged in to serve it
    open: bool
    agents_logged_in: int


def average_handle_seconds(durations: Iterable[float]) -> float:
    """Mean handle time (answered → closed) of recent work; the default without history."""
    values = [d for d in durations if d >= 0]
    if not values:
        return DEFAULT_HANDLE_SECONDS
    return sum(values) / len(values)


def estimated_wait(position: int, average_handle: float, servers: int) -> int | None:
    """Erlang-free estimate: the ones ahead of you, served ``servers`` at a time.

    ``servers`` counts concurrent slots (agents × channel capacity). The item at position 1
    waits on average half a handle time for the first slot to free.
    """
    if servers <= 0:
        return None
    return round((position - 0.5) * average_handle / servers)
