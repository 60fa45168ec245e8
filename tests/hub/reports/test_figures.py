"""Report figures on a built week (voice and chat, presence changes), with the expected
figures worked out here from the week's own description, in New York (whose week holds the
end of daylight-saving time on 1 November 2026) and in Kolkata (UTC+05:30)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from hub.reports.agents import agent_activity
from hub.reports.facts import Event, QueueRule, interaction_facts
from hub.reports.figures import Dimension, Period, Report, ReportRequest, build_report
from hub.reports.required import agents_required
from hub.reports.rollups import RollupJob, aggregate, facts_of, queue_rules, rebuild
from hub.services import Services
from hub.staffing.erlang import size_calls
from models import (
    CallbackRequest,
    CallbackState,
    ControlEvent,
    Interaction,
    ReportRepeat,
    ReportRollup,
    ReportRollupQueue,
)
from tests.hub.reports.history import Spec, build, presence

FIRST = datetime(2026, 10, 28, 0, 30, tzinfo=UTC)
HOURS = 24 * 9  # 28 Oct 00:30 UTC to 5 Nov 23:30 UTC, one contact an hour
GENERAL_SLA = 30  # the demo General queue's target; short abandons ≤ 5 s (the default)


def week() -> list[Spec]:
    """Five kinds of contact in turn; customers come back every 30 hours."""
    specs = []
    for hour in range(HOURS):
        at = FIRST + timedelta(hours=hour)
        customer = f"c{hour % 30}"
        kind = hour % 5
        if kind == 0:  # a call through the IVR, answered quickly
            spec = Spec(
                at, "answered", 10, 100, 20, "alice", "voice", customer=customer, bot_seconds=20
            )
        elif kind == 1:  # a chat answered late
            spec = Spec(at, "answered", 45, 200, 40, "bob", "webchat", customer=customer)
        elif kind == 2:
            spec = Spec(at, "abandoned", 3, customer=customer)  # a short abandon
        elif kind == 3:
            spec = Spec(at, "abandoned", 50, channel="webchat", customer=customer)
        else:  # the IVR answered it all
            spec = Spec(at, "contained", customer=customer)
        specs.append(spec)
    return specs


def expected_by_day(specs: list[Spec], zone: str) -> dict[date, dict[str, float]]:
    """Each figure per local day, straight from the specs."""
    tz = ZoneInfo(zone)
    days: dict[date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    seen: dict[str, list[datetime]] = defaultdict(list)
    for spec in specs:
        start = spec.queued_at - timedelta(seconds=spec.bot_seconds)
        created_day = days[start.astimezone(tz).date()]
        created_day["contacts"] += 1
        earlier = seen[spec.customer]
        created_day["repeat1"] += any(start - t <= timedelta(days=1) for t in earlier)
        created_day["repeat7"] += any(start - t <= timedelta(days=7) for t in earlier)
        earlier.append(start)
        if spec.bot_seconds or spec.outcome == "contained":
            created_day["self_service"] += 1
            created_day["contained"] += spec.outcome == "contained"
        if spec.outcome == "contained":
            continue
        d = days[spec.queued_at.astimezone(tz).date()]
        d["offered"] += 1
        if spec.outcome == "answered":
            d["answered"] += 1
            d["in_sl"] += spec.wait <= GENERAL_SLA
            d["wait"] += spec.wait
            d["handle"] += spec.talk + spec.wrap
            d["talk"] += spec.talk
        else:
            d["abandoned"] += 1
            d["short"] += spec.wait <= 5
        d["longest"] = max(d["longest"], spec.wait)
    return days


def _build_and_roll(services: Services, specs: list[Spec]):
    async def run() -> None:
        await services.transactions.run(lambda db: build(db, specs))
        await RollupJob(services).catch_up()

    return run()


async def _report(services: Services, request: ReportRequest):
    async with services.sessionmaker() as db:
        return await db.run_sync(build_report, request, [1, 7])


def test_one_call_through_the_ivr_adds_up_by_hand():
    at = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)

    def ev(seconds: int, frm: str | None, to: str, agent: int | None = None) -> Event:
        return Event(at + timedelta(seconds=seconds), frm, to, agent, 1, None)

    events = [
        ev(0, "new", "self_service"),
        ev(60, "self_service", "queued"),
        ev(80, "queued", "offered", 7),
        ev(150, "offered", "active", 7),  # waited 90 s
        ev(390, "active", "wrap_up", 7),  # talked 240 s
        ev(450, "wrap_up", "closed", 7),  # wrapped up 60 s
    ]
    facts = interaction_facts("voice", 3, events, {1: QueueRule(60, "answered_abandoned", 5)})
    bot, episode = facts
    assert (bot.self_service, bot.contained) == (1, 0)
    assert (episode.offered, episode.answered, episode.agent_id) == (1, 1, 7)
    assert episode.wait_answered_seconds == 90 and episode.answered_in_sl == 0
    assert episode.answered_hist == [0, 0, 0, 0, 1, 0, 0]  # 60–120 s
    assert (episode.talk_seconds, episode.wrap_seconds, episode.handled) == (240, 60, 1)
    assert episode.sl_counted == 1  # answered + abandoned


def test_a_transfer_back_to_the_queue_is_a_second_offer():
    at = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
    events = [
        Event(at, "new", "queued", None, 1, None),
        Event(at + timedelta(seconds=5), "queued", "active", 7, 1, "accepted"),
        Event(at + timedelta(seconds=65), "active", "queued", 7, 2, "transfer to queue B"),
        Event(at + timedelta(seconds=95), "queued", "active", 8, 2, "accepted"),
        Event(at + timedelta(seconds=195), "active", "closed", 8, 2, None),
    ]
    first, second = interaction_facts("webchat", 1, events, {})
    assert (first.queue_id, first.agent_id, first.transfers, first.talk_seconds) == (1, 7, 1, 60)
    assert (second.queue_id, second.agent_id, second.offered) == (2, 8, 1)
    assert (second.wait_answered_seconds, second.talk_seconds, second.handled) == (30, 100, 1)


def test_hold_and_a_consult_count_as_hold_not_talk_and_a_transfer_out_counts():
    at = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)

    def ev(seconds: int, frm: str | None, to: str) -> Event:
        return Event(at + timedelta(seconds=seconds), frm, to, 7, 1, None)

    events = [
        ev(0, "new", "queued"),
        ev(10, "queued", "active"),
        ev(40, None, "control:hold"),
        ev(70, None, "control:resume"),  # 30 s on hold
        ev(100, None, "control:consult"),
        ev(110, None, "control:remote_hold"),  # the agent's phone too: still one hold
        ev(120, None, "control:remote_resume"),
        ev(145, None, "control:consult_cancel"),  # 45 s more
        ev(190, None, "control:transfer_out"),
        ev(200, None, "control:hold"),
        ev(230, "active", "wrap_up"),  # held to the end of the talk: 30 s more
        ev(260, None, "control:resume"),  # after the talk: nothing
        ev(270, "wrap_up", "closed"),
    ]
    (episode,) = interaction_facts("voice", 1, events, {})
    assert (episode.hold_seconds, episode.talk_seconds, episode.wrap_seconds) == (105, 115, 40)
    assert episode.transfers == 1  # the transfer out through the trunk


async def test_holds_and_callbacks_on_the_timeline_reach_the_report(services: Services):
    day = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)

    def setup(db: Session) -> None:
        held, called_back, gave_up = build(
            db,
            [
                Spec(day, "answered", 10, 300, 20),
                Spec(day, "answered", 200, 60, customer="c2"),  # called back and connected
                Spec(day, "abandoned", 200, customer="c3"),  # asked, never reached
            ],
        )
        for seconds, kind in ((60, "hold"), (150, "resume")):
            db.add(
                ControlEvent(interaction_id=held, kind=kind, at=day + timedelta(seconds=seconds))
            )
        for detail in ({"to": "external", "number": "+15550199"}, {"connected": "+15550199"}):
            at = day + timedelta(seconds=250)  # the transfer, then its outcome row
            db.add(ControlEvent(interaction_id=called_back, kind="transfer", at=at, detail=detail))
        db.add_all(
            [
                CallbackRequest(
                    interaction_id=called_back,
                    number="+15550100",
                    state=CallbackState.CONNECTED,
                    created_at=day + timedelta(seconds=30),
                    finished_at=day + timedelta(seconds=200),
                ),
                CallbackRequest(
                    interaction_id=gave_up,
                    number="+15550101",
                    state=CallbackState.FAILED,
                    created_at=day + timedelta(seconds=30),
                    finished_at=day + timedelta(seconds=200),
                ),
            ]
        )

    await services.transactions.run(setup)
    await RollupJob(services).catch_up()
    report = await _report(
        services, ReportRequest(date(2026, 11, 3), date(2026, 11, 3), Period.DAY, Dimension.QUEUE)
    )
    (row,) = report.rows
    assert row.totals["hold_seconds"] == 90
    assert row.totals["talk_seconds"] == 210 + 60  # 300 s answered, less the hold; 60 s
    assert row.totals["handled"] == 2
    assert row.totals["transfers"] == 1
    assert (row.totals["callbacks_requested"], row.totals["callbacks_completed"]) == (2, 1)


async def test_agents_required_adds_queues_per_hour_and_a_day_shows_its_busiest_hour(
    services: Services,
):
    nine = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    ten = nine + timedelta(hours=1)
    specs = [Spec(nine + timedelta(minutes=i), "answered", 10, 240) for i in range(30)]
    specs += [
        Spec(nine + timedelta(minutes=i), "answered", 10, 120, queue="Billing") for i in range(12)
    ]
    specs += [Spec(ten + timedelta(minutes=i), "answered", 10, 240) for i in range(0, 60, 6)]
    await _build_and_roll(services, specs)

    async def by_queue(period: Period) -> Report:
        request = ReportRequest(date(2026, 11, 3), date(2026, 11, 3), period, Dimension.QUEUE)
        return await _report(services, request)

    hourly = await by_queue(Period.HOUR)
    ids = {row.label: row.key for row in hourly.rows}
    targets = {ids["General"]: (80, 30), ids["Billing"]: (90, 60)}
    # Erlang C per queue and hour (hub.staffing.erlang is checked against published examples)
    general_9 = size_calls(30, 240, 3600, 0.80, 30).raw_agents
    billing_9 = size_calls(12, 120, 3600, 0.90, 60).raw_agents
    general_10 = size_calls(10, 240, 3600, 0.80, 30).raw_agents
    assert general_10 < general_9 + billing_9
    utc = ZoneInfo("UTC")
    assert agents_required(hourly, Period.HOUR, targets) == {
        nine.astimezone(utc): general_9 + billing_9,
        ten.astimezone(utc): general_10,
    }
    day = agents_required(hourly, Period.DAY, targets)
    assert day == {datetime(2026, 11, 3, tzinfo=utc): general_9 + billing_9}
    # a queue that sets no target is sized for 80 % within 60 s
    assert agents_required(hourly, Period.DAY, {})[datetime(2026, 11, 3, tzinfo=utc)] == (
        size_calls(30, 240, 3600, 0.80, 60).raw_agents
        + size_calls(12, 120, 3600, 0.80, 60).raw_agents
    )


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
async def test_a_week_by_day_in_the_organizations_zone(services: Services, zone: str):
    specs = week()
    await _build_and_roll(services, specs)
    expected = expected_by_day(specs, zone)
    report = await _report(
        services,
        ReportRequest(date(2026, 10, 29), date(2026, 11, 4), Period.DAY, Dimension.TOTAL, zone),
    )
    got = {row.period.date(): row.totals for row in report.rows}
    assert sorted(got) == [date(2026, 10, 29) + timedelta(days=n) for n in range(7)]
    for day, t in got.items():
        e = expected[day]
        assert int(t["offered"]) == e["offered"], day
        assert (int(t["answered"]), int(t["abandoned"])) == (e["answered"], e["abandoned"])
        assert int(t["short_abandoned"]) == e["short"]
        assert int(t["answered_in_sl"]) == e["in_sl"]
        assert t.service_level_pct == round(100 * e["in_sl"] / (e["answered"] + e["abandoned"]), 1)
        assert t.abandon_pct == round(100 * e["abandoned"] / e["offered"], 1)
        assert t.asa_seconds == round(e["wait"] / e["answered"], 1)
        assert t.wait_max_seconds == e["longest"]
        assert t.aht_seconds == round(e["handle"] / e["answered"], 1)
        assert t.avg_talk_seconds == round(e["talk"] / e["answered"], 1)
        assert t.containment_pct == round(100 * e["contained"] / e["self_service"], 1)
        assert t.repeat_pct(1) == round(100 * e["repeat1"] / e["contacts"], 1)
        assert t.repeat_pct(7) == round(100 * e["repeat7"] / e["contacts"], 1)
    if zone == "America/New_York":
        # 1 November has 25 hours in New York: 25 contacts, and 25 hour rows.
        assert got[date(2026, 11, 1)]["offered"] + expected[date(2026, 11, 1)]["contained"] == 25
        hours = await _report(
            services,
            ReportRequest(date(2026, 11, 1), date(2026, 11, 1), Period.HOUR, Dimension.TOTAL, zone),
        )
        labels = [
            hours.period_label(row.period)
            for row in hours.rows
            if row.totals["offered"] or row.totals["self_service"]
        ]
        assert len(labels) == 25
        assert "2026-11-01 01:00 -0400" in labels and "2026-11-01 01:00 -0500" in labels
    else:
        # Kolkata's day starts at 18:30 UTC: the :30 UTC contacts fall on the hour there.
        assert (
            int(got[date(2026, 10, 29)]["offered"]) + int(expected[date(2026, 10, 29)]["contained"])
            == 24
        )


async def test_by_agent_and_channel_the_rows_add_up_to_the_total(services: Services):
    specs = week()
    await _build_and_roll(services, specs)
    request = ReportRequest(date(2026, 11, 2), date(2026, 11, 2), Period.DAY, Dimension.AGENT)
    report = await _report(services, request)
    by_label = {row.label: row.totals for row in report.rows}
    day = [s for s in specs if s.queued_at.date() == date(2026, 11, 2) and s.outcome != "contained"]
    alice = [s for s in day if s.agent == "alice" and s.outcome == "answered"]
    assert int(by_label["Alice Martin"]["answered"]) == len(alice)
    assert by_label["Alice Martin"].aht_seconds == 120.0  # 100 s talk + 20 s wrap-up
    assert by_label["Bob Okafor"].asa_seconds == 45.0
    assert int(by_label["(no agent)"]["abandoned"]) == sum(s.outcome == "abandoned" for s in day)
    channels = await _report(
        services, ReportRequest(date(2026, 11, 2), date(2026, 11, 2), Period.DAY, Dimension.CHANNEL)
    )
    assert sum(int(r.totals["offered"]) for r in channels.rows) == len(day)
    assert {r.label for r in channels.rows} == {"voice", "webchat"}


def _snapshot(db: Session) -> tuple[list, list]:
    rollups = []
    for model in (ReportRollup, ReportRollupQueue):
        cols = [c for c in model.__table__.c if c.name != "id"]  # type: ignore[attr-defined]
        rollups += sorted(tuple(str(v) for v in row) for row in db.execute(sa.select(*cols)))
    rcols = [c for c in ReportRepeat.__table__.c if c.name != "id"]  # type: ignore[attr-defined]
    repeats = sorted(tuple(str(v) for v in row) for row in db.execute(sa.select(*rcols)))
    return rollups, repeats


async def test_rollups_kept_up_incrementally_equal_a_recompute_from_the_raw_events(
    services: Services,
):
    specs = week()
    # The week arrives in three parts, each rolled up as the job would, and one interaction
    # changes later (reopened and answered again), touching an interval already rolled up.
    for part in (specs[:70], specs[70:140], specs[140:]):
        await _build_and_roll(services, part)

    def reopen(db: Session) -> None:
        from hub.interactions import change_state
        from models import InteractionState as S

        ix = db.get(Interaction, 2)
        assert ix is not None and ix.state == "closed"
        at = datetime(2026, 11, 6, 9, 0, tzinfo=UTC)
        change_state(db, ix, S.QUEUED, at=at)  # type: ignore[arg-type]
        change_state(db, ix, S.ABANDONED, at=at + timedelta(seconds=12))  # type: ignore[arg-type]

    await services.transactions.run(reopen)
    await RollupJob(services).catch_up()
    async with services.sessionmaker() as adb:
        kept = await adb.run_sync(_snapshot)

        def from_scratch(db: Session) -> tuple[list, list, int]:
            db.execute(ReportRollup.__table__.delete())  # type: ignore[attr-defined]
            db.execute(ReportRollupQueue.__table__.delete())  # type: ignore[attr-defined]
            db.execute(ReportRepeat.__table__.delete())  # type: ignore[attr-defined]
            rebuild(
                db,
                datetime(2026, 10, 27, tzinfo=UTC),
                datetime(2026, 11, 7, tzinfo=UTC),
                days=[1, 7],
            )
            every = aggregate(facts_of(db, range(1, 10_000), queue_rules(db)))
            return (*_snapshot(db), sum(f.offered for f in every.values()))

        rebuilt_rollups, rebuilt_repeats, offered = await adb.run_sync(from_scratch)
    assert kept[0] == rebuilt_rollups
    assert kept[1] == rebuilt_repeats
    assert offered == sum(s.outcome != "contained" for s in specs) + 1  # the reopened one


async def test_agent_activity_time_in_state_and_occupancy(services: Services):
    def day(h: int, m: int = 0) -> datetime:
        return datetime(2026, 11, 3, h, m, tzinfo=UTC)

    def changes(db: Session) -> None:
        presence(
            db,
            "alice",
            [
                (day(9), "ready", None),
                (day(9, 10), "busy", None),
                (day(9, 20), "wrap_up", None),
                (day(9, 25), "ready", None),
                (day(12), "not_ready", "lunch"),
                (day(13), "ready", None),
                (day(17), "offline", None),
            ],
        )
        build(
            db,
            [
                Spec(
                    day(
                        9,
                        9,
                    ),
                    "answered",
                    60,
                    540,
                    300,
                    "alice",
                    "voice",
                )
            ],
        )

    await services.transactions.run(changes)
    await RollupJob(services).catch_up()
    request = ReportRequest(date(2026, 11, 3), date(2026, 11, 3))
    async with services.sessionmaker() as db:
        rows = await db.run_sync(agent_activity, request, day(23))
    alice = next(a for a in rows if a.name == "Alice Martin")
    minutes = {state: round(seconds / 60) for state, seconds in alice.state_seconds.items()}
    assert minutes == {"ready": 10 + 155 + 240, "busy": 10, "wrap_up": 5, "not_ready": 60}
    assert dict(alice.reason_seconds) == {"lunch": 3600.0}
    assert alice.occupancy_pct == round(100 * 15 / 420, 1)
    assert dict(alice.handled) == {"voice": 1} and alice.aht_seconds == 840.0
