"""Queue position and estimated wait time, from the queue's real state.

What a waiting customer is told must hold up: the estimate uses where they stand, the
agents who are taking this kind of work now (READY, BUSY or in WRAP_UP, qualified for the
item), their free slots, and how long this queue's conversations took in the last hour.
When one of those is missing (nobody is taking the work, or the queue has no recent
history) there is no estimate, and the customer is told so, never "less than a minute".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

HANDLE_WINDOW_SECONDS = 3600.0
NO_AGENTS = "no agent is taking this kind of conversation right now"
NO_HISTORY = "not enough recent conversations to go by"


@dataclass(frozen=True, slots=True)
class QueuePosition:
    position: int | None  # 1-based among the queue's waiting items; None when not waiting
    ewt_seconds: int | None  # None when it cannot be estimated (``unknown_because`` says why)
    open: bool
    agents_logged_in: int  # qualified agents not OFFLINE (NOT_READY ones included)
    agents_serving: int = 0  # qualified agents READY, BUSY or in WRAP_UP
    unknown_because: str | None = None


def average_handle_seconds(durations: Iterable[float]) -> float | None:
    """Mean handle time (answered → closed) of recent work; None without any history."""
    values = [d for d in durations if d >= 0]
    if not values:
        return None
    return sum(values) / len(values)


def estimated_wait(
    position: int, average_handle: float | None, slots: int, free: int = 0
) -> int | None:
    """Seconds until the item at ``position`` is offered; None when it cannot be estimated.

    ``slots`` counts the concurrent slots of the agents serving the item (agents × channel
    capacity), ``free`` those of them open right now. The first ``free`` items are offered
    at once (0). Every later one waits for ``position - free`` slots to come free; busy
    slots are half-way through a handle on average, and free up at ``slots / handle`` per
    second: ``(position - free - 0.5) × handle / slots``.
    """
    if slots <= 0 or average_handle is None:
        return None
    if position <= free:
        return 0
    return round((position - free - 0.5) * average_handle / slots)
