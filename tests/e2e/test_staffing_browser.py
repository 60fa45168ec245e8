"""A planner in Chromium against a real hub: the children's hospital example, a what-if
that changes the requirement, a schedule with its coverage chart and cost, and the named
roster it becomes."""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_console_browser import log_in

pytestmark = pytest.mark.browser

MONDAY = "2026-12-14"
REQ_AT_10 = "#requirement tr[data-interval='10:00'] td.req[data-group='English calls']"


def test_planner_runs_a_what_if_and_a_schedule_and_keeps_the_roster(hub: str, chromium):
    context = chromium.new_context()
    page = log_in(context, hub, "sam")
    page.click("header nav >> text=Staffing")
    page.wait_for_url(re.compile(r"/staffing/plan"))
    page.fill("input[name=day]", MONDAY)
    page.click("#grid-form button[type=submit]")
    page.wait_for_url(re.compile(r"day=2026-12-14"))
    page.click("#load-example")
    page.locator(REQ_AT_10).wait_for()

    # what-if: without shrinkage the same calls need fewer agents scheduled
    before = int(page.inner_text(REQ_AT_10))
    english = page.locator("fieldset[data-group='English calls']")
    english.locator("input[name$=_shrinkage]").fill("0")
    page.click("button[value=requirement]")
    page.wait_for_function(
        "([sel, old]) => Number(document.querySelector(sel).textContent) < old",
        arg=[REQ_AT_10, before],
    )
    after = int(page.inner_text(REQ_AT_10))
    assert 0 < after < before

    # the schedule: least cost, a coverage chart drawn by Chart.js, a cost
    page.click("#run-schedule")
    page.locator("#plan[data-status=optimal]").wait_for()
    cost = float(page.inner_text("#plan-cost"))
    assert cost > 0
    page.wait_for_function("() => window.Chart && Chart.getChart('coverage-chart')")
    labels = page.evaluate("() => Chart.getChart('coverage-chart').data.datasets.map(d => d.label)")
    assert labels == [
        "English calls required",
        "English calls scheduled",
        "Spanish calls required",
        "Spanish calls scheduled",
    ]
    assert page.locator("#picks tbody tr").count() > 0

    # it becomes a named roster; the planner names who works the first shift
    page.fill("input[name=roster_name]", "Monday (e2e)")
    page.click("#save-roster")
    page.wait_for_url(re.compile(r"/staffing/rosters/\d+$"))
    assert page.inner_text("h1") == "Monday (e2e)"
    assert page.inner_text("#roster-cost") == f"{cost:.2f}"
    assert page.inner_text("#roster-gaps") == "Every interval is covered."
    page.wait_for_function("() => window.Chart && Chart.getChart('roster-chart')")
    first = page.locator("#roster-shifts tbody tr").first.locator("select")
    dave = first.locator("option", has_text="Dave Kowalski").get_attribute("value")
    first.select_option(value=dave)
    page.locator("#roster p.notice:text-is('Saved.')").wait_for()
    chosen = page.locator("#roster-shifts tbody tr").first.locator("select option:checked")
    assert chosen.inner_text().startswith("Dave Kowalski")
    context.close()
