"""Service level: the one shared definition, used by the wallboard and by reports.

For one queue and one day (the organization's day, ``settings.timezone``, not UTC's), look at
the contacts that entered the queue that day (``queued_at``):

- answered within the queue's target (``answered_at - queued_at <= sla_seconds``): made it;
- answered after the target: a miss;
- abandoned (the customer left before an agent answered): a miss;
- still waiting (queued or ringing) for longer than the target: a miss already, whatever
  happens next. A wallboard that left these out would look best while the queue is worst;
- still waiting within the target: not counted yet.

Service level = made it / counted; None while there is nothing to count. What "counted" is
(the denominator) is a setting per queue (``Queue.sl_denominator``, ``Denominator`` below):

- ``answered``: answered contacts only (abandons do not count at all);
- ``answered_abandoned`` (the default): answered plus abandoned (plus, live, waiting past
  the target);
- ``offered_minus_short``: every contact that entered the queue (left messages included)
  minus the short abandons: customers who left within ``Queue.short_abandon_seconds``.

The wallboard (``service_levels``) and the reports (``hub.reports``) both count through
``counted`` here, so a figure with this name means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.routing.snapshot import epoch
from models import Interaction, InteractionState

S = InteractionState
WAITING = (S.QUEUED.value, S.OFFERED.value)


class Denominator(StrEnum):
    ANSWERED = "answered"
    ANSWERED_ABANDONED = "answered_abandoned"
    OFFERED_MINUS_SHORT = "offered_minus_short"


DENOMINATOR_LABELS = {
    Denominator.ANSWERED: "answered contacts only",
    Denominator.ANSWERED_ABANDONED: "answered + abandoned",
    Denominator.OFFERED_MINUS_SHORT: "offered − short abandons",
}


def counted(
    rule: str,
    *,
    answered: int,
    abandoned: int,
    short_abandoned: int,
    offered: int,
    waiting_past_target: int = 0,
) -> int:
    """The service level's denominator under ``rule`` (a ``Denominator``).

    ``offered`` is every contact that entered the queue and has an outcome (answered,
    abandoned, left a message); ``waiting_past_target`` are live misses (wallboard only).
    """
    if rule == Denominator.ANSWERED:
        return answered
    if rule == Denominator.OFFERED_MINUS_SHORT:
        return offered - short_abandoned + waiting_past_target
    return answered + abandoned + waiting_past_target


def pct(in_target: int, denominator: int) -> float | None:
    """Percent, one decimal; None while nothing counts."""
    if denominator <= 0:
        return None
    return round(100.0 * in_target / denominator, 1)


@dataclass(frozen=True, slots=True)
class ServiceLevel:
    target_seconds: int
    answered_in_target: int = 0
    answered_late: int = 0
    abandoned: int = 0
    waiting_past_target: int = 0
    short_abandoned: int = 0  # of ``abandoned``: left within the short-abandon threshold
    voicemail: int = 0  # left a message while waiting
    rule: str = Denominator.ANSWERED_ABANDONED

    @property
    def misses(self) -> int:
        return self.counted - self.answered_in_target

    @property
    def counted(self) -> int:
        answered = self.answered_in_target + self.answered_late
        return counted(
            self.rule,
            answered=answered,
            abandoned=self.abandoned,
            short_abandoned=self.short_abandoned,
            offered=answered + self.abandoned + self.voicemail,
            waiting_past_target=self.waiting_past_target,
        )

    @property
    def pct(self) -> float | None:
        """Percent in service level, one decimal; None while nothing counts yet."""
        return pct(self.answered_in_target, self.counted)


@dataclass(frozen=True, slots=True)
class Entered:
    """What service level needs of one contact that entered a queue."""

    queued_at: datetime
    answered_at: datetime | None
    state: str
    left_at: datetime | None = None  # when an abandoned contact left (closed_at)


def day_start(now: datetime, timezone: str) -> datetime:
    """Midnight of ``now``'s day in ``timezone``, as a UTC time."""
    local = now.astimezone(ZoneInfo(timezone or "UTC"))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)


def service_level(
    entered: Iterable[Entered],
    target_seconds: int,
    now: datetime,
    *,
    rule: str = Denominator.ANSWERED_ABANDONED,
    short_abandon_seconds: int = 0,
) -> ServiceLevel:
    """Classify the day's contacts of one queue (pure, so it is checked by hand)."""
    made = late = abandoned = waiting_late = short = voicemail = 0
    for row in entered:
        queued = epoch(row.queued_at)
        if row.answered_at is not None:
            if epoch(row.answered_at) - queued <= target_seconds:
                made += 1
            else:
                late += 1
        elif row.state == S.ABANDONED:
            abandoned += 1
            if row.left_at is not None and epoch(row.left_at) - queued <= short_abandon_seconds:
                short += 1
        elif row.state == S.VOICEMAIL:
            voicemail += 1
        elif row.state in WAITING and now.timestamp() - queued > target_seconds:
            waiting_late += 1
    return ServiceLevel(target_seconds, made, late, abandoned, waiting_late, short, voicemail, rule)


async def service_levels(
    db: AsyncSession,
    targets: dict[int, int],
    *,
    now: datetime,
    timezone: str,
    rules: dict[int, tuple[str, int]] | None = None,
) -> dict[int, ServiceLevel]:
    """Today's service level of each queue in ``targets`` (queue id → target seconds);
    ``rules`` gives a queue's (denominator, short-abandon seconds), the default otherwise."""
    start = day_start(now, timezone)
    end = start + timedelta(days=1)
    rows = (
        await db.exec(
            select(
                Interaction.queue_id,
                Interaction.queued_at,
                Interaction.answered_at,
                Interaction.state,
                Interaction.closed_at,
            ).where(
                col(Interaction.queue_id).in_(list(targets)),
                col(Interaction.queued_at) >= start,
                col(Interaction.queued_at) < end,
            )
        )
    ).all()
    by_queue: dict[int, list[Entered]] = {queue_id: [] for queue_id in targets}
    for queue_id, queued_at, answered_at, state, closed_at in rows:
        if queue_id in by_queue and queued_at is not None:
            by_queue[queue_id].append(Entered(queued_at, answered_at, state, closed_at))
    rules = rules or {}
    result = {}
    for queue_id, entered in by_queue.items():
        rule, short = rules.get(queue_id, (Denominator.ANSWERED_ABANDONED, 0))
        result[queue_id] = service_level(
            entered, targets[queue_id], now, rule=rule, short_abandon_seconds=short
        )
    return result
