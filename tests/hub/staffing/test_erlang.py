"""Erlang C against published worked examples, and chat and email sizing by hand."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from hub.staffing.erlang import (
    average_speed_of_answer,
    erlang_b,
    erlang_c,
    servers_for_service_level,
    service_level,
    size_calls,
    size_chat,
    size_email,
    traffic_erlangs,
    with_shrinkage,
)


def erlang_c_factorial(agents: int, traffic: int) -> Fraction:
    """The textbook form, (A^N/N! · N/(N−A)) / (Σ_{k<N} A^k/k! + A^N/N! · N/(N−A)), in exact
    rational arithmetic: an independent check of the recursion."""
    a = Fraction(traffic)
    top = a**agents / math.factorial(agents) * Fraction(agents, agents - traffic)
    bottom = sum(a**k / math.factorial(k) for k in range(agents)) + top
    return top / bottom


def test_call_centre_helper_worked_example() -> None:
    """Call Centre Helper, "Erlang C Formula – Made Simple With an Easy Worked Example":
    100 calls in 30 minutes, AHT 180 s, target 80 % answered in 20 s, shrinkage 30 %.
    Published: traffic 10 Erlangs; with 14 agents the probability of waiting is 17.41 %,
    the service level 88.84 %, the ASA 7.8 s and occupancy 71.43 %; 14 agents are the first
    to reach 80 % in 20 s, and 30 % shrinkage makes it 14 / 0.7 = 20 agents to schedule."""
    a = traffic_erlangs(100, 180, 1800)
    assert a == pytest.approx(10.0)
    assert erlang_c(14, a) == pytest.approx(0.1741, abs=5e-5)
    assert service_level(14, a, 180, 20) == pytest.approx(0.8884, abs=5e-5)
    assert average_speed_of_answer(14, a, 180) == pytest.approx(7.8, abs=0.05)
    # 13 agents miss the target (79.6 %), 14 make it
    assert service_level(13, a, 180, 20) < 0.80 <= service_level(14, a, 180, 20)
    sized = size_calls(100, 180, 1800, 0.80, 20, shrinkage=0.30)
    assert (sized.raw_agents, sized.agents) == (14, 20)
    assert sized.occupancy == pytest.approx(0.7143, abs=5e-5)


def test_westbay_worked_example_matches_the_factorial_form() -> None:
    """Westbay Engineers, "The Erlang-C formula" (erlang.com): 360 calls per half hour,
    4-minute calls, 55 agents, 15 s target: traffic 48 Erlangs, occupancy 0.873. The figures
    below are the factorial form evaluated exactly: probability of waiting 0.2387, ASA 8.2 s,
    service level 84.6 %."""
    a = traffic_erlangs(360, 240, 1800)
    assert a == pytest.approx(48.0)
    assert a / 55 == pytest.approx(0.873, abs=5e-4)
    exact = float(erlang_c_factorial(55, 48))
    assert erlang_c(55, a) == pytest.approx(exact, rel=1e-12)
    assert exact == pytest.approx(0.2387, abs=5e-5)
    assert average_speed_of_answer(55, a, 240) == pytest.approx(8.18, abs=0.01)
    assert service_level(55, a, 240, 15) == pytest.approx(0.8459, abs=5e-5)


@pytest.mark.parametrize(("agents", "traffic"), [(1, 0), (2, 1), (5, 3), (30, 25), (120, 100)])
def test_recursion_equals_the_factorial_form(agents: int, traffic: int) -> None:
    assert erlang_c(agents, traffic) == pytest.approx(float(erlang_c_factorial(agents, traffic)))


def test_large_centres_stay_finite() -> None:
    """1,000 Erlangs: A**N and N! overflow a float long before this; the recursion does not."""
    with pytest.raises(OverflowError):
        float(1000.0**1050) / math.factorial(1050)
    pw = erlang_c(1050, 1000.0)
    assert 0 < pw < 1
    n = servers_for_service_level(1000.0, 180, 0.8, 20)
    assert 1000 < n < 1100
    assert service_level(n, 1000.0, 180, 20) >= 0.8 > service_level(n - 1, 1000.0, 180, 20)


def test_erlang_b_known_value() -> None:
    """Erlang B table: 10 Erlangs on 15 lines block 3.65 % of calls."""
    assert erlang_b(15, 10.0) == pytest.approx(0.0365, abs=5e-5)


def test_overloaded_and_idle_edges() -> None:
    assert erlang_c(10, 10.0) == 1.0
    assert service_level(9, 10.0, 180, 20) == 0.0
    assert math.isinf(average_speed_of_answer(10, 10.0, 180))
    assert size_calls(0, 180, 1800, 0.8, 20).agents == 0
    with pytest.raises(ValueError, match="shrinkage"):
        with_shrinkage(10, 1.0)


def test_chat_concurrency_divides_the_slots() -> None:
    """Chat: 120 chats an hour lasting 10 minutes = 20 Erlangs of chat slots. As calls that
    needs 25 servers for 80 % in 30 s; agents holding 3 chats each: ⌈25 / 3⌉ = 9."""
    slots = servers_for_service_level(20.0, 600, 0.8, 30)
    assert slots == size_calls(120, 600, 3600, 0.8, 30).raw_agents
    chat = size_chat(120, 600, 3600, 0.8, 30, concurrency=3)
    assert chat.raw_agents == math.ceil(slots / 3)
    assert size_chat(120, 600, 3600, 0.8, 30, concurrency=1).raw_agents == slots
    assert chat.agents == with_shrinkage(chat.raw_agents, 0.0)


def test_email_backlog_cleared_within_target() -> None:
    """Email: 40 mails at 9:00, 6 minutes each = 4 agent-hours of work, due within 4 hours:
    one agent per hour from 9 to 13; 20 more at 11:00 add half an agent from 11 to 15."""
    volumes = [40, 0, 20, 0, 0, 0, 0, 0]  # 9:00 … 16:00, hourly
    sized = size_email(volumes, 360, 3600, 4 * 3600)
    assert [s.traffic for s in sized] == pytest.approx([1, 1, 1.5, 1.5, 0.5, 0.5, 0, 0])
    assert [s.raw_agents for s in sized] == [1, 1, 2, 2, 1, 1, 0, 0]
    # whatever the target, the day's work is all done within the day
    assert sum(s.traffic for s in sized) * 3600 == pytest.approx(60 * 360)
    late = size_email([0, 0, 0, 0, 0, 0, 0, 8], 360, 3600, 4 * 3600)
    assert late[-1].traffic == pytest.approx(8 * 360 / 3600)
