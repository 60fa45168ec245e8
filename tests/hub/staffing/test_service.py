"""Staffing against the database (SQLite and PostgreSQL): history from stored interactions,
overrides and uploads, the hospital example end to end, rosters edited by the planner."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from hub.services import Services
from hub.staffing import example, service
from hub.staffing.schedule import Status
from hub.staffing.service import DayGrid, GroupInputs, StaffingInputError
from models import (
    AuditEntry,
    Contact,
    Inbox,
    Interaction,
    Queue,
    Roster,
    RosterShift,
    ShiftTemplate,
    StaffingGroup,
)

NY = "America/New_York"
MONDAY = date(2026, 12, 14)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    """A New York wall-clock time as UTC (December: UTC−5)."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=ZoneInfo(NY)).astimezone(UTC)


async def test_history_forecast_from_stored_interactions(services: Services) -> None:
    async with services.sessionmaker() as db:
        general = (await db.exec(select(Queue).where(Queue.name == "General"))).one()
        billing = (await db.exec(select(Queue).where(Queue.name == "Billing"))).one()
        phone = (await db.exec(select(Inbox).where(Inbox.kind == "voice"))).one()
        chat = (await db.exec(select(Inbox).where(Inbox.kind == "webchat"))).one()
        contact = Contact(name="Caller")
        db.add(contact)
        await db.flush()
        group = StaffingGroup(
            name="English calls", skill="english", channels=["voice"], queue_id=general.id
        )
        db.add(group)
        await db.flush()

        def call(when: datetime, **kw) -> Interaction:
            return Interaction(
                inbox_id=kw.pop("inbox", phone.id),
                contact_id=contact.id,
                channel=kw.pop("channel", "voice"),
                state="closed",
                queue_id=kw.pop("queue", general.id),
                queued_at=when,
                **kw,
            )

        # three past Mondays: 9:00–10:00 gets 4, 5, 6 calls and 10:00–11:00 gets 2, 3, 4
        for week, (nine, ten) in zip((3, 2, 1), ((4, 2), (5, 3), (6, 4)), strict=True):
            day = MONDAY - timedelta(weeks=week)
            for k in range(nine):
                start = at(day, 9, 5 * k)
                db.add(
                    call(
                        start,
                        answered_at=start + timedelta(seconds=10),
                        closed_at=start + timedelta(seconds=210),
                    )
                )
            db.add_all(call(at(day, 10, 5 * k)) for k in range(ten))
            # not this group's: a chat, a Billing call, an outbound call, a Tuesday, 6:59
            db.add(call(at(day, 9, 30), channel="webchat", inbox=chat.id))
            db.add(call(at(day, 9, 30), queue=billing.id))
            db.add(call(at(day, 9, 30), data={"direction": "outbound"}))
            db.add(call(at(day + timedelta(days=1), 9, 30)))
            db.add(call(at(day, 6, 59)))
        await db.commit()

        grid = DayGrid(MONDAY, 60, 7 * 60, 12 * 60)
        (fc,) = await service.forecasts(db, [group], grid, 6, NY)
        # totals 6, 8, 10 → 12 next; profile 15/24 at 9:00 and 9/24 at 10:00
        assert fc.history.weeks_used == 3
        assert fc.history.total == pytest.approx(12)
        assert fc.volumes == pytest.approx([0, 0, 7.5, 4.5, 0])
        assert fc.history_aht == pytest.approx(200)

        # the planner overrides 10:00, then goes back to history's number; both audited
        me = None
        assert await service.save_overrides(db, group, MONDAY, 60, {600: 20.0}, user_id=me) == 1
        await db.commit()
        (fc,) = await service.forecasts(db, [group], grid, 6, NY)
        assert fc.volumes == pytest.approx([0, 0, 7.5, 20, 0])
        assert fc.overridden == [False, False, False, True, False]
        assert await service.save_overrides(db, group, MONDAY, 60, {600: None}, user_id=me) == 1
        await db.commit()
        (fc,) = await service.forecasts(db, [group], grid, 6, NY)
        assert fc.volumes[3] == pytest.approx(4.5)
        audits = (
            await db.exec(select(AuditEntry).where(AuditEntry.entity == "staffing_forecast"))
        ).all()
        assert [a.after["volumes"] for a in audits] == [{"10:00": 20.0}, {}]
        assert audits[1].before["volumes"] == {"10:00": 20.0}


def test_csv_upload_names_the_bad_line() -> None:
    group = StaffingGroup(name="English calls", skill="english")
    groups = {"English calls": group}
    rows = service.parse_forecast_csv(
        "group,date,time,volume\nEnglish calls,2026-12-14,09:00,42\n", groups, 60
    )
    assert [(r.day, r.start, r.volume) for r in rows] == [(MONDAY, 540, 42.0)]
    bad = {
        "Spanish,2026-12-14,09:00,1": "Line 1: no staffing group called “Spanish”.",
        "English calls,14/12/2026,09:00,1": "Line 1: “14/12/2026” is not a date",
        "English calls,2026-12-14,09:30,1": "Line 1: 09:30 does not start a 60-minute interval.",
        "English calls,2026-12-14,09:00,lots": "Line 1: “lots” is not a number.",
        "English calls,2026-12-14,09:00": "Line 1: expected group,date,time,volume.",
    }
    for text, message in bad.items():
        with pytest.raises(StaffingInputError) as caught:
            service.parse_forecast_csv(text, groups, 60)
        assert str(caught.value).startswith(message)


async def test_hospital_example_schedules_and_becomes_an_editable_roster(
    services: Services,
) -> None:
    async with services.sessionmaker() as db:
        created = await example.load_example(db, MONDAY, user_id=None)
        await db.commit()
        assert "group English calls" in created and "template Spanish part-time 4h" in created
        assert await example.load_example(db, None, user_id=None) == []  # idempotent

        groups = list((await db.exec(select(StaffingGroup))).all())
        templates = list((await db.exec(select(ShiftTemplate))).all())
        grid = DayGrid(MONDAY, 60, example.OPEN_FROM, example.OPEN_TO)
        forecasts = await service.forecasts(db, groups, grid, 6, "UTC")
        volumes = {f.group.name: f.volumes for f in forecasts}
        assert volumes["Spanish calls"] == [float(v) for v in example.SPANISH]
        # the hourly forecast spreads onto quarter hours: 58 calls 08:00–09:00, 76 after
        english = next(g for g in groups if g.name == "English calls")
        quarter = DayGrid(MONDAY, 15, 8 * 60, 9 * 60 + 30)
        (fc,) = await service.forecasts(db, [english], quarter, 6, "UTC")
        assert fc.volumes == pytest.approx([14.5, 14.5, 14.5, 14.5, 19, 19])
        assert all(fc.overridden)

        inputs = [GroupInputs.of(g) for g in groups]
        outcome = service.what_if(grid, inputs, volumes, templates)
        plan = outcome.plan
        assert plan is not None and plan.status is Status.OPTIMAL
        for name, need in outcome.required.items():
            assert all(c >= n for c, n in zip(plan.coverage[name], need, strict=True))
        assert plan.cost == pytest.approx(sum(p.option.cost * p.count for p in plan.picks))
        # a Saturday has no shift templates: nothing can be planned, and the reason is named
        saturday = DayGrid(MONDAY + timedelta(days=5), 60, example.OPEN_FROM, example.OPEN_TO)
        weekend = service.what_if(saturday, inputs, volumes, templates)
        assert weekend.plan is not None and weekend.plan.status is Status.INFEASIBLE
        assert "English calls at 07:00: no shift template works then" in weekend.plan.problems

        roster = await service.save_roster(
            db, "Monday plan", outcome, {t.name: t for t in templates}, user_id=None
        )
        await db.commit()
        roster_id = roster.id
        with pytest.raises(StaffingInputError, match="exists already"):
            await service.save_roster(
                db, "Monday plan", outcome, {t.name: t for t in templates}, user_id=None
            )
        await db.rollback()
        roster = await db.get(Roster, roster_id)
        assert roster is not None
        view = await service.roster_view(db, roster)
        assert len(view.shifts) == plan.agents
        assert view.cost == pytest.approx(plan.cost)
        assert all(n == 0 for short in view.short.values() for n in short)

        # the planner removes the Spanish speaker who starts first: Spanish is short then
        first_spanish = next(s for s in view.shifts if "spanish" in s.skills)
        await db.delete(first_spanish)
        await db.commit()
        view = await service.roster_view(db, roster)
        assert view.cost == pytest.approx(plan.cost - first_spanish.cost)
        shortfalls = {g: sum(s) for g, s in view.short.items()}
        assert sum(shortfalls.values()) > 0
        rows = (await db.exec(select(RosterShift).where(RosterShift.roster_id == roster.id))).all()
        assert len(rows) == plan.agents - 1


def test_each_model_sizes_its_own_way() -> None:
    """The group's model picks the method: calls by Erlang C, chat over chat slots, email by
    workload (40 mails of 6 minutes due within 2 hours: 2 agents for each of two hours)."""
    calls = GroupInputs("Calls", "calls", "general", 180, 80, 20, 30, 1, 240)
    chat = GroupInputs("Chat", "chat", "general", 180, 80, 20, 30, 3, 240)
    email = GroupInputs("Mail", "email", "general", 360, 80, 20, 0, 1, 120)
    assert [s.agents for s in service.requirement(calls, [200], 60)] == [20]
    assert [s.raw_agents for s in service.requirement(chat, [200], 60)] == [5]  # ⌈14/3⌉
    assert [s.agents for s in service.requirement(email, [40, 0, 0], 60)] == [2, 2, 0]
    with pytest.raises(StaffingInputError, match="Mail: shrinkage"):
        service.requirement(GroupInputs("Mail", "email", "x", 360, 80, 20, 95, 1, 120), [1], 60)
