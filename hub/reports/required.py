"""Agents required: what the historical charts draw the volume against.

For each hour (each interval when the report is by 15-minute interval) and queue, Erlang C
(``hub.staffing.erlang``) gives the agents on the phones that the contacts actually offered
would have needed, at that hour's own average handle time, to reach the queue's service-level
target within its answer-within time. The queues' needs are added up per hour, and a longer
period shows its busiest hour: a day needs as many agents as its peak, not its average.
Before shrinkage (that is a staffing plan's input), and for every channel alike: a chat
agent holding several chats at once needs fewer seats than this.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from hub.reports.figures import Period, Report, period_start
from hub.staffing.erlang import size_calls

DEFAULT_SL_TARGET_PCT = 80  # the industry's 80/20 when a queue sets no alert threshold


def agents_required(
    by_queue: Report, period: Period, targets: dict[object, tuple[int, int]]
) -> dict[datetime, int]:
    """The agents required per period start, from ``by_queue`` (a by-queue report by hour, or
    by interval). ``targets``: per queue id, (service-level target %, answer within s)."""
    seconds = 900 if by_queue.request.period is Period.INTERVAL else 3600
    per_slot: dict[datetime, int] = defaultdict(int)
    for row in by_queue.rows:
        offered, aht = row.totals["offered"], row.totals.aht_seconds
        if offered <= 0 or not aht:
            continue  # nothing came, or nothing was handled to measure a handle time by
        pct, within = targets.get(row.key, (DEFAULT_SL_TARGET_PCT, 60))
        need = size_calls(offered, aht, seconds, pct / 100, within).raw_agents
        per_slot[row.period] += need
    required: dict[datetime, int] = {}
    for slot, agents in per_slot.items():
        start = period_start(slot, period)
        required[start] = max(required.get(start, 0), agents)
    return required
