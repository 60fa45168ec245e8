"""Opening hours, so a dialog can branch on ``business_hours_open``.

The hub owns each inbox's real hours and passes them in (as a ``BusinessHours``, a callable or
a plain bool); a dialog file may declare defaults for the simulator and its tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Weekly opening windows (weekday 0 = Monday) plus closed dates (holidays)."""

    windows: Mapping[int, tuple[tuple[time, time], ...]]
    closed_dates: frozenset[date] = field(default_factory=frozenset)
    _memo: dict[tuple[date, int, int], bool] = field(
        default_factory=dict, compare=False, repr=False
    )

    def is_open(self, moment: datetime) -> bool:
        key = (moment.date(), moment.hour, moment.minute)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) > 4096:
                self._memo.clear()
            found = self._memo[key] = self._is_open(moment)
        return found

    def _is_open(self, moment: datetime) -> bool:
        if moment.date() in self.closed_dates:
            return False
        now = moment.time()
        return any(start <= now < end for start, end in self.windows.get(moment.weekday(), ()))

    @classmethod
    def parse(cls, spec: Mapping[str, str], closed: Iterable[date] = ()) -> BusinessHours:
        """From ``{"mon-fri": "08:00-18:00, 19:00-20:00", "sat": "09:00-12:00"}``."""
        windows: dict[int, list[tuple[time, time]]] = {}
        for days, ranges in spec.items():
            for day in _days(days):
                for part in str(ranges).split(","):
                    if part.strip().lower() == "closed":
                        continue
                    windows.setdefault(day, []).append(_window(part))
        return cls({d: tuple(sorted(w)) for d, w in windows.items()}, frozenset(closed))


def _days(spec: str) -> list[int]:
    result: list[int] = []
    for part in spec.lower().replace(" ", "").split(","):
        if "-" in part:
            first, last = part.split("-", 1)
            start, end = _day(first), _day(last)
            result.extend(
                range(start, end + 1) if start <= end else [*range(start, 7), *range(end + 1)]
            )
        else:
            result.append(_day(part))
    return result


def _day(name: str) -> int:
    short = name[:3]
    if short not in _DAYS:
        raise ValueError(f"unknown day {name!r} (use mon..sun)")
    return _DAYS.index(short)


def _window(text: str) -> tuple[time, time]:
    match = _RANGE.match(text)
    if not match:
        raise ValueError(f"bad hours {text.strip()!r} (use HH:MM-HH:MM)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    end = time(23, 59, 59, 999999) if (h2, m2) == (24, 0) else time(h2, m2)
    return time(h1, m1), end


HoursSpec = bool | BusinessHours | Callable[[datetime], bool] | Mapping[str, str] | None


def hours_open(spec: HoursSpec, moment: datetime) -> bool:
    """Whether the business is open at ``moment`` (no hours given: always open)."""
    if spec is None:
        return True
    if isinstance(spec, bool):
        return spec
    if isinstance(spec, BusinessHours):
        return spec.is_open(moment)
    if isinstance(spec, Mapping):
        return BusinessHours.parse(spec).is_open(moment)
    return bool(spec(moment))
