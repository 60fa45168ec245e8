"""In Chromium against a real hub process: a supervisor reads a survey's statistics and
exports them as CSV, and an admin sees the self-service figures on a dialog's flow, over
answers and traces written into the hub's database before it started."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.hub_process import hub_server

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000
# (satisfaction or None when the caller left, recommend or None, nodes, outcome)
HISTORY = [
    (5, 10, ["welcome", "main", "goodbye"], "hangup"),
    (4, 6, ["welcome", "main", "agent_queue"], "queued"),
    (1, None, ["welcome", "main"], "caller_hangup"),
    (None, None, ["welcome", "main", "main", "agent_queue"], "queued"),
]


def _build(db: Path) -> None:
    """Four voice contacts in the last hour: main_menu traces and support_csat answers."""
    at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S.000000")
    with sqlite3.connect(db) as conn:
        inbox, queue = conn.execute(
            "SELECT id, default_queue_id FROM inbox WHERE kind = 'voice'"
        ).fetchone()
        contact = conn.execute(
            "INSERT INTO contact (name, vip_level, blocked, blocked_reason, notes, known,"
            " created_at) VALUES ('<b>Survey</b>', 0, 0, '', '', 0, ?)",
            (at,),
        ).lastrowid
        for satisfaction, recommend, nodes, outcome in HISTORY:
            trace = {"version": {"dialog": "main_menu", "number": 1}, "nodes": nodes,
                     "outcome": outcome}  # fmt: skip
            interaction = conn.execute(
                "INSERT INTO interaction (inbox_id, contact_id, channel, state, queue_id,"
                " priority, required_skills, data, wrapup_notes, overflowed, created_at)"
                " VALUES (?, ?, 'voice', 'closed', ?, 0, '{}', ?, '', 0, ?)",
                (inbox, contact, queue, json.dumps({"ivr": trace}), at),
            ).lastrowid
            asked = [("satisfaction", 1, 5, satisfaction)]
            if satisfaction is not None:
                asked.append(("recommend", 0, 10, recommend))
            for position, (question, low, high, value) in enumerate(asked):
                conn.execute(
                    "INSERT INTO surveyanswer (interaction_id, dialog, dialog_version, survey,"
                    " question, position, kind, scale_min, scale_max, answered, value_text,"
                    " value_number, channel, queue_id, asked_at, answered_at) VALUES"
                    " (?, 'satisfaction_survey', 1, 'support_csat', ?, ?, 'scale', ?, ?, ?, ?,"
                    " ?, 'voice', ?, ?, ?)",
                    (
                        interaction, question, position, low, high, value is not None,
                        None if value is None else str(value), value, queue, at,
                        None if value is None else at,
                    ),
                )  # fmt: skip


@pytest.fixture(scope="module")
def report_hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[dict]:
    var = tmp_path_factory.mktemp("surveys") / "var"
    var.mkdir(parents=True)
    shutil.copyfile(seeded_db, var / "hub.sqlite3")
    _build(var / "hub.sqlite3")
    with hub_server(var) as (base, _process):
        yield {"base": base, "db": var / "hub.sqlite3"}


def _login(chromium, base: str, username: str):
    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-pass")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    return context, page


def test_a_supervisor_reads_and_exports_a_surveys_statistics(report_hub: dict, chromium) -> None:
    context, page = _login(chromium, report_hub["base"], "sam")
    page.click("header >> text=Surveys")
    page.click("text=support_csat")
    page.locator("#survey-questions").wait_for()
    satisfaction = page.locator("#question-satisfaction")
    # reached 4, answered 3 (5, 4, 1): drop-off 1 (25 %), mean 10 / 3, CSAT 2 of 3
    assert satisfaction.locator(".reached").inner_text() == "4"
    assert satisfaction.locator(".drop-off").inner_text() == "1 (25.0 %)"
    assert satisfaction.locator(".mean").inner_text() == "3.33"
    assert satisfaction.locator(".score").inner_text() == "CSAT 66.7 %"
    # recommend: 10 and 6 answered, one left: NPS (1 - 1) / 2 = 0
    assert page.locator("#question-recommend .score").inner_text() == "NPS +0.0"
    assert page.locator("#survey-contacts").inner_text() == "4"

    # Filtered to a queue no survey answer is in: nothing.
    page.select_option("select[name=queue]", label="Billing")
    page.click("#apply-filters")
    page.get_by_text("No answers in this period for these filters.").wait_for()
    page.select_option("select[name=queue]", label="All queues")
    page.click("#apply-filters")
    page.locator("#question-satisfaction").wait_for()

    with page.expect_download() as download_info:
        page.click("#export-stats")
    download = download_info.value
    assert download.suggested_filename.startswith("survey-support_csat-stats-")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    by_value = {(r["question"], r["value"]): r for r in rows}
    assert by_value[("satisfaction", "4")]["count"] == "1"
    assert by_value[("satisfaction", "3")]["count"] == "0"
    assert by_value[("recommend", "10")]["nps"] == "0.0"
    context.close()


def test_an_admin_sees_self_service_figures_on_the_flow(report_hub: dict, chromium) -> None:
    with sqlite3.connect(report_hub["db"]) as conn:
        (dialog_id,) = conn.execute("SELECT id FROM dialog WHERE name = 'main_menu'").fetchone()
    context, page = _login(chromium, report_hub["base"], "admin")
    page.goto(f"{report_hub['base']}/admin/dialogs/{dialog_id}")
    page.click("#figures-link")
    page.locator("#figures-diagram svg").wait_for()
    # 4 finished: the dialog's hang-up and the caller's hang-up are contained (2 of 4).
    assert page.inner_text("#containment-rate") == "50.0 %"
    main = page.locator("#figures-diagram svg g.node", has_text="main (menu)")
    assert "visits 5 · exits 1 · hang-ups 1" in main.text_content()
    queue = page.locator("#figures-diagram svg g.node", has_text="agent_queue")
    assert "visits 2 · exits 2 · to agent 2" in queue.text_content()
    row = page.locator('#node-figures tr[data-node="agent_queue"]')
    assert row.locator(".to-agent").inner_text() == "2"
    context.close()
