"""Staffing pages through the app: who may plan, the what-if and the schedule, uploads,
templates and rosters, each change audited and each bad input refused with its reason."""

from __future__ import annotations

import re
from datetime import date

import httpx
import pytest
from sqlmodel import col, select

from hub.services import Services
from models import Agent, AuditEntry, RosterShift, User
from tests.web.conftest import hx, login

MONDAY = date(2026, 12, 14)
# The database parts run on SQLite and PostgreSQL in tests/hub/staffing; the pages once.
pytestmark = pytest.mark.parametrize("web_database_url", ["sqlite"], indirect=True)


async def entities(services: Services) -> list[str]:
    async with services.sessionmaker() as db:
        rows = (await db.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
    return [f"{r.entity}:{r.action}" for r in rows]


async def test_planners_only_and_bad_input_is_named(
    client: httpx.AsyncClient, services: Services
) -> None:
    await login(client, "alice")
    assert (await client.get("/staffing/plan")).status_code == 403
    await client.post("/logout", data={"_csrf_token": client.cookies.get("csrftoken", "")})
    await login(client, "sam")
    page = await client.get("/staffing/plan")
    assert page.status_code == 200
    assert '<a href="/staffing">Staffing</a>' in page.text
    assert "No staffing groups yet" in page.text

    saturday = await client.post(
        "/staffing/example", data={"day": "2026-12-19"}, headers=hx(client)
    )
    assert saturday.status_code == 422
    assert "weekdays" in saturday.json()["detail"]
    bad_day = await client.get("/staffing/plan", params={"day": "14/12/2026"})
    assert bad_day.status_code == 422

    loaded = await client.post(
        "/staffing/example", data={"day": MONDAY.isoformat()}, headers=hx(client)
    )
    assert loaded.headers["hx-redirect"].startswith("/staffing/plan?day=2026-12-14")
    plan = await client.get(loaded.headers["hx-redirect"])
    groups = dict(re.findall(r'data-group="([^"]+)".*?name="(g\d+)_aht"', plan.text, re.S))
    english = groups["English calls"]
    # the week's table: the example's Monday (710 English, 174 Spanish calls), nothing after
    assert re.search(r"Mon 2026-12-14</a></td>\s*<td>710</td><td>174</td>", plan.text)
    assert re.search(r"Tue 2026-12-15</a></td>\s*<td>0</td><td>0</td>", plan.text)
    # the example's forecast fills the volume inputs (58 English calls at 08:00)
    assert f'name="{english}_v480" value="58.0"' in plan.text

    form = {
        "day": MONDAY.isoformat(),
        "minutes": "60",
        "open_from": "07:00",
        "open_to": "21:00",
        "weeks": "6",
    }
    too_much = await client.post(
        "/staffing/plan", headers=hx(client), data={**form, f"{english}_shrinkage": "95"}
    )
    assert too_much.status_code == 422
    assert too_much.json()["detail"] == "English calls: shrinkage must be 0 to 90."

    async def required_at_10(extra: dict[str, str]) -> int:
        r = await client.post("/staffing/plan", headers=hx(client), data={**form, **extra})
        assert r.status_code == 200, r.text
        rows = re.findall(
            r'<tr data-interval="10:00"><td>10:00</td>\s*<td>[^<]*</td>\s*<td class="req" '
            r'data-group="English calls">(\d+)</td>',
            r.text,
        )
        return int(rows[0])

    base = await required_at_10({})
    assert await required_at_10({f"{english}_shrinkage": "0"}) < base
    assert await required_at_10({f"{english}_scale": "200"}) > base

    scheduled = await client.post(
        "/staffing/plan", headers=hx(client), data={**form, "action": "schedule"}
    )
    assert 'data-status="optimal"' in scheduled.text
    assert 'id="coverage-chart"' in scheduled.text
    cost = float(re.search(r'id="plan-cost">([\d.]+)<', scheduled.text).group(1))
    assert cost > 0

    saved = await client.post(
        "/staffing/plan",
        headers=hx(client),
        data={**form, "action": "save_roster", "roster_name": "<b>Monday</b>"},
    )
    roster_url = saved.headers["hx-redirect"]
    roster = await client.get(roster_url)
    assert "&lt;b&gt;Monday&lt;/b&gt;" in roster.text and "<b>Monday</b>" not in roster.text
    assert f'id="roster-cost">{cost:.2f}<' in roster.text
    assert "Every interval is covered." in roster.text

    async with services.sessionmaker() as db:
        shifts = list(
            (await db.exec(select(RosterShift).order_by(col(RosterShift.start_minute)))).all()
        )
        dave = (
            await db.exec(
                select(Agent)
                .join(User, col(User.id) == col(Agent.user_id))
                .where(User.username == "dave")
            )
        ).one()
    first, second = shifts[0], shifts[1]  # both start at 07:00: they overlap
    ok = await client.post(
        f"{roster_url}/shifts/{first.id}", headers=hx(client), data={"agent_id": str(dave.id)}
    )
    assert ok.status_code == 200 and "selected>Dave Kowalski" in ok.text
    clash = await client.post(
        f"{roster_url}/shifts/{second.id}", headers=hx(client), data={"agent_id": str(dave.id)}
    )
    assert clash.status_code == 409
    removed = await client.post(f"{roster_url}/shifts/{first.id}/delete", headers=hx(client))
    assert 'id="roster-gaps"' in removed.text and "Not covered:" in removed.text

    kinds = await entities(services)
    for kind in (
        "staffing_group:create",
        "shift_template:create",
        "staffing_forecast:forecast_example",
        "roster:create",
        "roster_shift:assign",
        "roster_shift:delete",
    ):
        assert kind in kinds


async def test_upload_and_templates_refuse_bad_input(
    client: httpx.AsyncClient, services: Services
) -> None:
    await login(client, "admin")
    group = await client.post(
        "/staffing/groups",
        headers=hx(client),
        data={
            "name": "Chat",
            "model": "chat",
            "skill": "general",
            "aht_seconds": "600",
            "sl_target_pct": "80",
            "sl_seconds": "60",
            "shrinkage_pct": "20",
            "concurrency": "3",
            "email_target_minutes": "240",
            "active": "on",
        },
    )
    assert group.status_code == 200
    no_skill = await client.post(
        "/staffing/templates",
        headers=hx(client),
        data={
            "name": "Day",
            "length_hours": "8",
            "earliest_start": "08:00",
            "latest_start": "10:00",
            "cost_per_hour": "20",
        },
    )
    assert no_skill.status_code == 422
    assert "skill" in no_skill.json()["detail"]
    bad_clock = await client.post(
        "/staffing/templates",
        headers=hx(client),
        data={
            "name": "Day",
            "length_hours": "8",
            "earliest_start": "8 am",
            "latest_start": "10:00",
            "cost_per_hour": "20",
            "skills": "general",
        },
    )
    assert bad_clock.json()["detail"] == "Earliest start: “8 am” is not a time like 07:00."

    csv = "group,date,time,volume\nChat,2026-12-14,09:00,30\nChat,2026-12-14,25:00,3\n"
    bad = await client.post(
        "/staffing/forecast/upload",
        headers=hx(client),
        data={"minutes": "60"},
        files={"file": ("f.csv", csv, "text/csv")},
    )
    assert bad.status_code == 422
    assert bad.json()["detail"] == "Line 3: “25:00” is not a time like 07:00."
    good = await client.post(
        "/staffing/forecast/upload",
        headers=hx(client),
        data={"minutes": "60"},
        files={"file": ("f.csv", csv.splitlines(True)[1], "text/csv")},
    )
    assert "Uploaded 1 line(s); 1 interval(s) changed." in good.text
    plan = await client.get("/staffing/plan", params={"day": "2026-12-14"})
    assert re.search(r'class="override" name="g\d+_v540" value="30.0"', plan.text)
    assert "staffing_forecast:forecast_upload" in await entities(services)
