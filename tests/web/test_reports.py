"""Reports in the browser's terms: pages, charts' data, exports read back, access, bad input,
per-queue rules, the wallboard's tiles and alerts, and a saved report e-mailed."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import httpx
from openpyxl import load_workbook
from sqlmodel import select

from hub.reports.rollups import RollupJob
from hub.services import Services
from models import Job, Queue
from tests.hub.reports.history import Spec, build
from tests.web.conftest import hx, login

DAY = datetime(2026, 11, 3, tzinfo=UTC)
QUERY = "start=2026-11-03&end=2026-11-03&period=hour&by=agent"


async def _history(services: Services) -> None:
    def at(h: int, m: int = 0) -> datetime:
        return DAY + timedelta(hours=h, minutes=m)

    specs = [
        Spec(at(9), "answered", 10, 100, 20, "alice", "voice"),
        Spec(at(9, 20), "answered", 50, 300, 60, "bob", "webchat", customer="c2"),
        Spec(at(10), "abandoned", 40, customer="c3"),
        Spec(at(10, 5), "abandoned", 2, customer="c4"),
    ]
    await services.transactions.run(lambda db: build(db, specs))
    await RollupJob(services).catch_up()


async def test_a_supervisor_reads_the_daily_report_and_exports_it(
    client: httpx.AsyncClient, services: Services
):
    await _history(services)
    await login(client, "sam")
    page = await client.get(f"/reports?{QUERY}", headers={"accept": "text/html"})
    assert page.status_code == 200, page.text
    assert 'id="chart-volume"' in page.text and "/assets/chart.umd.min.js" in page.text
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', page.text, re.S).group(1))
    assert sum(data["offered"]) == 4 and sum(data["abandoned"]) == 2
    assert data["agents"] == ["Alice Martin", "Bob Okafor"] and data["talk"] == [100.0, 300.0]
    assert sum(data["hist_abandoned"]) == 2 and data["hist_answered"][:3] == [0, 1, 0]
    assert "answered + abandoned" in page.text  # the rule each queue used is stated

    exported = await client.get(f"/reports/export.csv?{QUERY}")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    header = rows[0]
    total = next(r for r in rows if r and r[0] == "Total")
    assert total[header.index("Offered")] == "4"
    assert total[header.index("Service level %")] == "25.0"  # 1 within 30 s of 2 + 2
    assert total[header.index("ASA s")] == "30.0"
    alice = next(r for r in rows if len(r) > 1 and r[1] == "Alice Martin")
    assert alice[0].startswith("2026-11-03 09:00") and alice[header.index("AHT s")] == "120.0"

    xlsx = await client.get(f"/reports/export.xlsx?{QUERY}")
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    values = list(sheet.values)
    assert list(values[0]) == header
    assert values[-1][0] == "Total" and values[-1][header.index("Abandoned")] == 2


async def test_definitions_agent_activity_access_and_bad_input(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "alice")  # an agent
    denied = await client.get("/reports", headers={"accept": "text/html"})
    assert denied.status_code == 403
    await client.post("/logout", data={"_csrf_token": client.cookies.get("csrftoken", "")})
    await login(client, "admin")
    definitions = await client.get("/reports/definitions", headers={"accept": "text/html"})
    assert "offered − short abandons" in definitions.text
    assert "(talk + hold + wrap-up) ÷ handled" in definitions.text
    bad = await client.get("/reports?start=2026-13-01", headers={"accept": "text/html"})
    assert bad.status_code == 422 and "From must be a date" in bad.text
    backwards = await client.get("/reports/export.csv?start=2026-11-03&end=2026-11-01")
    assert backwards.status_code == 422 and "To must not be before From" in backwards.text
    agents = await client.get(
        "/reports/agents?start=2026-11-03&end=2026-11-03", headers={"accept": "text/html"}
    )
    assert agents.status_code == 200 and 'id="chart-timeline"' in agents.text


async def test_a_queues_rule_is_set_by_the_admin_and_a_tile_alerts(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "admin")
    async with services.sessionmaker() as db:
        general = (await db.exec(select(Queue).where(Queue.name == "General"))).one()
    changed = await client.post(
        f"/admin/queues/{general.id}",
        data={
            "name": "General",
            "channels": ["webchat", "voice"],
            "strategy": "longest_idle",
            "priority": "0",
            "sla_seconds": "20",
            "sl_denominator": "offered_minus_short",
            "short_abandon_seconds": "8",
            "alert_waiting": "1",
            "offer_timeout_seconds": "20",
            "wrapup_seconds": "60",
            "active": "on",
        },
        headers=hx(client),
    )
    assert changed.status_code == 200, changed.text
    async with services.sessionmaker() as db:  # the recent past is computed again
        rebuilds = (await db.exec(select(Job).where(Job.kind == "reports.rebuild"))).all()
    assert len(rebuilds) == 1
    definitions = await client.get("/reports/definitions", headers={"accept": "text/html"})
    row = re.search(r"<tr><td>General</td>.*?</tr>", definitions.text).group(0)
    assert "20 s" in row and "offered − short abandons" in row and "≤ 8 s" in row

    board = await client.get("/supervisor", headers={"accept": "text/html"})
    assert 'data-queue="General" data-alert="no"' in board.text
    from tests.hub.routing.helpers import chat

    await chat(services, "is anyone there?", sender="tile-visitor")
    board = await client.get("/supervisor/tv", headers={"accept": "text/html"})
    assert 'class="tile tile-alert" data-queue="General" data-alert="yes"' in board.text
    assert "1 waiting (alert at 1)" in board.text
    assert 'id="agents-by-state"' in board.text


async def test_a_saved_report_is_scheduled(client: httpx.AsyncClient, services: Services):
    await login(client, "sam")
    saved = await client.post(
        "/reports/schedules",
        data={
            "name": "Daily <by queue>",
            "email_to": "boss@example.com",
            "every": "daily",
            "hour": "6",
            "file_format": "xlsx",
            "period": "hour",
            "by": "queue",
            "start": "2026-11-03",
            "end": "2026-11-03",
        },
        headers=hx(client),
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    page = await client.get("/reports", headers={"accept": "text/html"})
    assert "Daily &lt;by queue&gt;" in page.text and "boss@example.com" in page.text
    refused = await client.post(
        "/reports/schedules",
        data={"name": "x", "email_to": "a@b.c, d@e.f", "every": "daily"},
        headers=hx(client),
    )
    assert refused.status_code == 422 and "one e-mail address" in refused.text
