"""Business hours: weekly ranges in a time zone, with holidays closed all day."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models import BusinessHours

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse(value: str) -> time | None:
    """``"HH:MM"``; ``"24:00"`` means the end of the day (None)."""
    if value.strip() == "24:00":
        return None
    hours, minutes = value.strip().split(":")
    return time(int(hours), int(minutes))


def is_open(hours: BusinessHours | None, at: datetime) -> bool:
    """Open at ``at`` (aware)? No hours configured means always open.

    A malformed time zone fails closed to UTC rather than crashing the dispatcher.
    """
    if hours is None:
        return True
    try:
        zone = ZoneInfo(hours.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = at.astimezone(zone)
    if local.date().isoformat() in set(hours.holidays or ()):
        return False
    now = local.time().replace(tzinfo=None)
    for start_text, end_text in (hours.weekly or {}).get(WEEKDAYS[local.weekday()], []):
        start, end = _parse(start_text) or time(0), _parse(end_text)
        if start <= now and (end is None or now < end):
            return True
    return False
