"""A forecast per interval of a coming day from the same weekday of the last N weeks.

Why this method: contact volume repeats weekly (Mondays look like Mondays) and within the day
(the 10 o'clock peak), while the level drifts. So the day's total is a straight line fitted
by least squares through the last N same-weekday totals and carried one step on (the trend),
and the intervals share it as they did on average over those weeks (the profile). With one
week of history there is no trend: the forecast is that week.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Forecast:
    volumes: list[float]  # per interval of the day being forecast
    weeks_used: int
    trend_per_week: float  # change of the day's total per week (least-squares slope)
    total: float


def linear_next(totals: Sequence[float]) -> tuple[float, float]:
    """Least-squares line through ``totals`` (x = 0, 1, …), evaluated one step further.

    Returns (next value, slope); the next value is never below zero."""
    n = len(totals)
    if n == 0:
        return 0.0, 0.0
    if n == 1:
        return max(0.0, float(totals[0])), 0.0
    mean_x = (n - 1) / 2.0
    mean_y = sum(totals) / n
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(totals))
    slope = sxy / sxx
    return max(0.0, mean_y + slope * (n - mean_x)), slope


def same_weekday_forecast(weeks: Sequence[Sequence[float]]) -> Forecast:
    """``weeks`` oldest first, each the volumes per interval of one past same weekday."""
    if not weeks:
        return Forecast([], 0, 0.0, 0.0)
    size = len(weeks[0])
    if any(len(w) != size for w in weeks):
        raise ValueError("every week must have the same intervals")
    totals = [float(sum(w)) for w in weeks]
    total, slope = linear_next(totals)
    grand = sum(totals)
    if grand <= 0:
        return Forecast([0.0] * size, len(weeks), 0.0, 0.0)
    profile = [sum(w[i] for w in weeks) / grand for i in range(size)]
    volumes = [round(total * share, 2) for share in profile]
    return Forecast(volumes, len(weeks), round(slope, 3), round(total, 2))
