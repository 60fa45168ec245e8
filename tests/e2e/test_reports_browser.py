"""Reports and the wallboard in Debian Chromium against a real hub process: a supervisor
opens the day's report, sees a chart drawn, exports CSV and XLSX and reads them back; a
wallboard tile turns red when its queue passes its threshold."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, update
from sqlmodel import Session

from models import Queue
from tests.e2e.hub_process import hub_server
from tests.e2e.test_console_browser import chat_send, log_in, open_chat
from tests.hub.reports.history import Spec, build

pytestmark = pytest.mark.browser

# Yesterday (UTC, the hub's zone here): a finished day the rollup job has all of.
DAY = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def reports_hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[str]:
    var = tmp_path_factory.mktemp("reports-hub") / "var"
    var.mkdir()
    database = var / "hub.sqlite3"
    shutil.copyfile(seeded_db, database)
    engine = create_engine(f"sqlite:///{database}")
    with Session(engine) as db:
        build(
            db,
            [
                Spec(DAY + timedelta(hours=9), "answered", 12, 200, 30, "alice", "voice"),
                Spec(
                    DAY + timedelta(hours=9, minutes=30),
                    "answered",
                    40,
                    100,
                    10,
                    "bob",
                    "webchat",
                    customer="c2",
                ),
                Spec(DAY + timedelta(hours=14), "abandoned", 25, customer="c3"),
            ],
        )
        db.execute(update(Queue).where(Queue.name == "General").values(alert_waiting=1))
        db.commit()
    engine.dispose()
    with hub_server(var, HUB_REPORTS_ROLLUP_SECONDS="1") as (base, _process):
        yield base


def test_the_supervisor_opens_the_daily_report_sees_a_chart_and_exports_it(
    reports_hub: str, chromium, tmp_path: Path
):
    context = chromium.new_context(accept_downloads=True)
    page = log_in(context, reports_hub, "sam")
    url = f"{reports_hub}/reports?start={DAY:%Y-%m-%d}&end={DAY:%Y-%m-%d}&period=day&by=queue"
    for _attempt in range(30):  # the rollup job runs every second
        page.goto(url)
        if page.locator("#report-table tr.total td").nth(2).inner_text() == "3":
            break
        page.wait_for_timeout(500)
    total = page.locator("#report-table tr.total td")
    assert total.nth(2).inner_text() == "3"  # offered
    page.locator("#chart-volume[data-rendered='1']").wait_for()
    drawn = page.evaluate(
        "Chart.getChart(document.getElementById('chart-volume')).data.datasets"
        ".map(d => [d.label, d.data])"
    )
    # two contacts handled in the 9:00 hour (AHT 170 s): Erlang C needs one agent at 80/30
    assert drawn == [
        ["Offered", [3]],
        ["Answered", [2]],
        ["Abandoned", [1]],
        ["Agents required", [1]],
    ]
    page.locator("#chart-heat[data-rendered='1']").wait_for()

    with page.expect_download() as got:
        page.click("#export-csv")
    rows = list(csv.reader(io.StringIO(Path(got.value.path()).read_bytes().decode("utf-8-sig"))))
    header = rows[0]
    general = next(r for r in rows if len(r) > 1 and r[1] == "General")
    assert general[header.index("Answered")] == "2"
    assert general[header.index("Abandoned")] == "1"
    assert general[header.index("ASA s")] == "26.0"  # (12 + 40) / 2

    with page.expect_download() as got:
        page.click("#export-xlsx")
    assert got.value.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(Path(got.value.path()).read_bytes())).active
    values = list(sheet.values)
    assert values[-1][0] == "Total" and values[-1][header.index("Handled")] == 2
    context.close()


def test_a_wallboard_tile_turns_red_past_its_threshold(reports_hub: str, chromium):
    context = chromium.new_context()
    board = log_in(context, reports_hub, "sam")
    board.goto(f"{reports_hub}/supervisor/tv")
    general = board.locator(".tile[data-queue='General']")
    assert general.get_attribute("data-alert") == "no"
    customer = open_chat(context, reports_hub)
    chat_send(customer, "Hello, anyone?")  # nobody is ready: it waits in General
    board.locator(".tile.tile-alert[data-queue='General']").wait_for()
    assert "1 waiting (alert at 1)" in board.locator("#alerts").inner_text()
    context.close()
