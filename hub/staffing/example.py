"""The model case: a children's hospital's new appointment center.

Open 7:00 to 21:00 on weekdays, with an hourly forecast of calls, some of them in Spanish.
English-speaking operators take English calls; Spanish-speaking operators (who speak English
too) take either. Full-time 8-hour shifts (a 30-minute unpaid lunch after 4 hours) and
part-time 4-hour shifts cost differently. The question: how many of each kind should start
each shift, at least cost? Loading the example writes its groups, templates and (for the
chosen weekday) its forecast; the planner's page then answers it.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.staffing.service import save_overrides
from models import ShiftTemplate, Skill, StaffingGroup, StaffingModel

OPEN_FROM, OPEN_TO = 7 * 60, 21 * 60
# Calls per hour, 07:00 … 20:00: a morning peak when clinics open, a smaller one after school.
ENGLISH = [24, 58, 76, 80, 70, 56, 50, 54, 60, 62, 48, 36, 24, 12]
SPANISH = [6, 14, 18, 20, 16, 12, 10, 12, 16, 18, 14, 10, 6, 2]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]

GROUPS = [
    dict(
        name="English calls",
        skill="english",
        aht_seconds=240,
        sl_target_pct=80,
        sl_seconds=30,
        shrinkage_pct=25,
    ),
    dict(
        name="Spanish calls",
        skill="spanish",
        aht_seconds=300,
        sl_target_pct=80,
        sl_seconds=30,
        shrinkage_pct=25,
    ),
]
TEMPLATES = [
    dict(
        name="English full-time 8h",
        length_minutes=480,
        earliest_start=7 * 60,
        latest_start=13 * 60,
        break_offset_minutes=240,
        break_minutes=30,
        cost_per_hour=20.0,
        skills=["english"],
    ),
    dict(
        name="English part-time 4h",
        length_minutes=240,
        earliest_start=7 * 60,
        latest_start=17 * 60,
        cost_per_hour=26.0,
        skills=["english"],
    ),
    dict(
        name="Spanish full-time 8h",
        length_minutes=480,
        earliest_start=7 * 60,
        latest_start=13 * 60,
        break_offset_minutes=240,
        break_minutes=30,
        cost_per_hour=23.0,
        skills=["english", "spanish"],
    ),
    dict(
        name="Spanish part-time 4h",
        length_minutes=240,
        earliest_start=7 * 60,
        latest_start=17 * 60,
        cost_per_hour=29.0,
        skills=["english", "spanish"],
    ),
]


async def load_example(db: AsyncSession, day: date | None, *, user_id: int | None) -> list[str]:
    """Create what is missing (skills, groups, templates, by name; existing rows are left as
    the planner changed them) and, for a ``day``, its hourly forecast. Audited; the caller
    commits. Returns what was created."""
    created: list[str] = []
    skills = {s.name for s in (await db.exec(select(Skill))).all()}
    for name in ("english", "spanish"):
        if name not in skills:
            db.add(Skill(name=name, description="Language (staffing example)"))
            created.append(f"skill {name}")
    groups = {g.name: g for g in (await db.exec(select(StaffingGroup))).all()}
    for spec in GROUPS:
        if spec["name"] not in groups:
            group = StaffingGroup(model=StaffingModel.CALLS, channels=["voice"], **spec)
            db.add(group)
            await db.flush()
            groups[group.name] = group
            audit.record(
                db,
                user_id=user_id,
                action="create",
                entity="staffing_group",
                entity_id=group.id,
                after=audit.snapshot(group),
            )
            created.append(f"group {group.name}")
    templates = {t.name for t in (await db.exec(select(ShiftTemplate))).all()}
    for spec in TEMPLATES:
        if spec["name"] not in templates:
            template = ShiftTemplate(weekdays=list(WEEKDAYS), start_step_minutes=60, **spec)
            db.add(template)
            await db.flush()
            audit.record(
                db,
                user_id=user_id,
                action="create",
                entity="shift_template",
                entity_id=template.id,
                after=audit.snapshot(template),
            )
            created.append(f"template {template.name}")
    if day is not None:
        for name, volumes in (("English calls", ENGLISH), ("Spanish calls", SPANISH)):
            starts = range(OPEN_FROM, OPEN_TO, 60)
            await save_overrides(
                db,
                groups[name],
                day,
                60,
                dict(zip(starts, map(float, volumes), strict=True)),
                user_id=user_id,
                source="example",
            )
    return created
