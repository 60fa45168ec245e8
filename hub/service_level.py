"""Service level: the one shared definition, used by the wallboard and by reports.

For one queue and one day (the organization's day, ``settings.timezone``, not UTC's), look at
the contacts that entered the queue that day (``queued_at``):

- answered within the queue's target (``answered_at - queued_at <= sla_seconds``): made it;
- answered after the target: a miss;
- abandoned (the customer left before an agent answered): a miss;
- still waiting (queued or ringing) for longer than the target: a miss already, whatever
  happens next. A wallboard that left these out would look best while the queue is worst;
- still waiting within the target: not counted yet.

Service level = made it / (made it + misses); None while there is nothing to count.
Reports may put other denominators beside this one (say, leaving out abandons within a few
seconds); they belong in this module, next to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.routing.snapshot import epoch
from models import Interaction, InteractionState

S = InteractionState
WAITING = (S.QUEUED.value, S.OFFERED.value)


@dataclass(frozen=True, slots=True)
class ServiceLevel:
    target_seconds: int
    answered_in_target: int = 0
    answered_late: int = 0
    abandoned: int = 0
    waiting_past_target: int = 0

    @property
    def misses(self) -> int:
        return self.answered_late + self.abandoned + self.waiting_past_target

    @property
    def counted(self) -> int:
        return self.answered_in_target + self.misses

    @property
    def pct(self) -> float | None:
        """Percent in service level, one decimal; None while nothing counts yet."""
        if not self.counted:
            return None
        return round(100.0 * self.answered_in_target / self.counted, 1)


@dataclass(frozen=True, slots=True)
class Entered:
    """What service level needs of one contact that entered a queue."""

    queued_at: datetime
    answered_at: datetime | None
    state: str


def day_start(now: datetime, timezone: str) -> datetime:
    """Midnight of ``now``'s day in ``timezone``, as a UTC time."""
    local = now.astimezone(ZoneInfo(timezone or "UTC"))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)


def service_level(entered: Iterable[Entered], target_seconds: int, now: datetime) -> ServiceLevel:
    """Classify the day's contacts of one queue (pure, so it is checked by hand)."""
    made = late = abandoned = waiting_late = 0
    for row in entered:
        queued = epoch(row.queued_at)
        if row.answered_at is not None:
            if epoch(row.answered_at) - queued <= target_seconds:
                made += 1
            else:
                late += 1
        elif row.state == S.ABANDONED:
            abandoned += 1
        elif row.state in WAITING and now.timestamp() - queued > target_seconds:
            waiting_late += 1
    return ServiceLevel(target_seconds, made, late, abandoned, waiting_late)


async def service_levels(
    db: AsyncSession, targets: dict[int, int], *, now: datetime, timezone: str
) -> dict[int, ServiceLevel]:
    """Today's service level of each queue in ``targets`` (queue id → target seconds)."""
    start = day_start(now, timezone)
    end = start + timedelta(days=1)
    rows = (
        await db.exec(
            select(
                Interaction.queue_id,
                Interaction.queued_at,
                Interaction.answered_at,
                Interaction.state,
            ).where(
                col(Interaction.queue_id).in_(list(targets)),
                col(Interaction.queued_at) >= start,
                col(Interaction.queued_at) < end,
            )
        )
    ).all()
    by_queue: dict[int, list[Entered]] = {queue_id: [] for queue_id in targets}
    for queue_id, queued_at, answered_at, state in rows:
        if queue_id in by_queue and queued_at is not None:
            by_queue[queue_id].append(Entered(queued_at, answered_at, state))
    return {
        queue_id: service_level(entered, targets[queue_id], now)
        for queue_id, entered in by_queue.items()
    }
