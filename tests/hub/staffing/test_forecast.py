"""Same-weekday forecast with a least-squares trend, worked by hand."""

from __future__ import annotations

import pytest

from hub.staffing.forecast import linear_next, same_weekday_forecast


def test_trend_carries_the_line_one_week_on() -> None:
    # totals 100, 110, 120, 130: +10 a week, so next week 140
    assert linear_next([100, 110, 120, 130]) == pytest.approx((140.0, 10.0))
    # a noisy line: slope = Σ(x−x̄)(y−ȳ)/Σ(x−x̄)² = (−1.5·−12 + −.5·2 + .5·−2 + 1.5·12)/5 = 6.8
    nxt, slope = linear_next([88, 102, 98, 112])
    assert slope == pytest.approx(6.8)
    assert nxt == pytest.approx(100 + 6.8 * 2.5)
    assert linear_next([50, 10])[0] == 0.0  # never below zero


def test_profile_shares_the_trended_total() -> None:
    weeks = [[10, 30, 10], [12, 36, 12], [14, 42, 14]]  # totals 50, 60, 70; shape 1:3:1
    f = same_weekday_forecast(weeks)
    assert f.total == pytest.approx(80)
    assert f.trend_per_week == pytest.approx(10)
    assert f.volumes == pytest.approx([16, 48, 16])
    assert f.weeks_used == 3


def test_one_week_is_that_week_and_none_is_nothing() -> None:
    assert same_weekday_forecast([[3, 0, 5]]).volumes == [3, 0, 5]
    assert same_weekday_forecast([]).volumes == []
    assert same_weekday_forecast([[0, 0], [0, 0]]).volumes == [0, 0]
