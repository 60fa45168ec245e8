"""Erlang C and friends: agents needed per interval for calls, chats and email.

Calls queue (M/M/N): Erlang C gives the probability of waiting, the service level and the
average speed of answer. It is computed from the Erlang B recursion
``B(0) = 1, B(k) = A·B(k-1) / (k + A·B(k-1))``, which never forms ``A**N`` or ``N!``, so it
stays exact for hundreds of agents where the textbook factorial form overflows.

Chats queue too, but one agent serves ``concurrency`` of them at once: each chat slot is a
server, and agents = slots / concurrency (rounded up). Email does not queue in real time:
what arrives must be answered within a target time, so it is sized by workload (volume ×
handle time spread over that target).

Shrinkage (breaks, training, absence) is applied last: scheduled = ⌈raw / (1 − shrinkage)⌉.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_AGENTS = 10_000  # a search bound, far above any interval's need


def erlang_b(servers: int, traffic: float) -> float:
    """Blocking probability of ``servers`` lines offered ``traffic`` Erlangs (recursive)."""
    if servers < 0 or traffic < 0:
        raise ValueError("servers and traffic must not be negative")
    b = 1.0
    for k in range(1, servers + 1):
        b = traffic * b / (k + traffic * b)
    return b


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a contact waits (Erlang C); 1.0 when the agents cannot keep up."""
    if traffic <= 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    b = erlang_b(agents, traffic)
    return agents * b / (agents - traffic * (1.0 - b))


def service_level(agents: int, traffic: float, aht_seconds: float, target_seconds: float) -> float:
    """Share of contacts answered within ``target_seconds`` (0..1)."""
    if traffic <= 0:
        return 1.0
    if agents <= traffic:
        return 0.0
    pw = erlang_c(agents, traffic)
    return max(0.0, 1.0 - pw * math.exp(-(agents - traffic) * target_seconds / aht_seconds))


def average_speed_of_answer(agents: int, traffic: float, aht_seconds: float) -> float:
    """Mean wait over all contacts, in seconds (infinite when the agents cannot keep up)."""
    if traffic <= 0:
        return 0.0
    if agents <= traffic:
        return math.inf
    return erlang_c(agents, traffic) * aht_seconds / (agents - traffic)


def traffic_erlangs(volume: float, aht_seconds: float, interval_seconds: float) -> float:
    """Offered load: contacts in the interval × handle time / interval length."""
    return volume * aht_seconds / interval_seconds


def with_shrinkage(raw_agents: float, shrinkage: float) -> int:
    """Agents to schedule so that ``raw_agents`` are on the phones after shrinkage."""
    if not 0 <= shrinkage < 1:
        raise ValueError("shrinkage must be at least 0 and below 1")
    if raw_agents <= 0:
        return 0
    # Round away float noise first: 14 / 0.7 must be 20, not 21.
    return math.ceil(round(raw_agents / (1.0 - shrinkage), 9))


@dataclass(frozen=True, slots=True)
class Staffing:
    """One interval's answer: how many agents and what service they would give."""

    traffic: float  # Erlangs (for chat: chat slots busy)
    raw_agents: int  # on the phones (or at the keyboard)
    agents: int  # to schedule, after shrinkage
    service_level: float | None  # 0..1 (None for email)
    asa_seconds: float | None
    occupancy: float | None


NONE = Staffing(0.0, 0, 0, None, None, None)


def servers_for_service_level(
    traffic: float,
    aht_seconds: float,
    sl_target: float,
    target_seconds: float,
    *,
    max_occupancy: float = 1.0,
) -> int:
    """The fewest servers whose service level reaches ``sl_target`` (0..1), and whose
    occupancy stays at or below ``max_occupancy``."""
    if traffic <= 0:
        return 0
    if not 0 < sl_target < 1:
        raise ValueError("the service-level target must be above 0 % and below 100 %")
    if not 0 < max_occupancy <= 1:
        raise ValueError("the maximum occupancy must be above 0 % and at most 100 %")
    n = max(math.floor(traffic) + 1, math.ceil(traffic / max_occupancy - 1e-9))
    while n < MAX_AGENTS:
        if service_level(n, traffic, aht_seconds, target_seconds) >= sl_target:
            return n
        n += 1
    raise ValueError("the load needs more agents than any interval can hold")


def size_calls(
    volume: float,
    aht_seconds: float,
    interval_seconds: float,
    sl_target: float,
    target_seconds: float,
    shrinkage: float = 0.0,
    max_occupancy: float = 1.0,
) -> Staffing:
    """Calls in one interval: Erlang C to the service-level target, then shrinkage."""
    if volume <= 0:
        return NONE
    a = traffic_erlangs(volume, aht_seconds, interval_seconds)
    n = servers_for_service_level(
        a, aht_seconds, sl_target, target_seconds, max_occupancy=max_occupancy
    )
    return Staffing(
        traffic=a,
        raw_agents=n,
        agents=with_shrinkage(n, shrinkage),
        service_level=service_level(n, a, aht_seconds, target_seconds),
        asa_seconds=average_speed_of_answer(n, a, aht_seconds),
        occupancy=a / n,
    )


def size_chat(
    volume: float,
    aht_seconds: float,
    interval_seconds: float,
    sl_target: float,
    target_seconds: float,
    concurrency: int,
    shrinkage: float = 0.0,
) -> Staffing:
    """Chats: Erlang C over chat slots (each agent holds ``concurrency`` chats at once).

    ``aht_seconds`` is how long one chat stays open (concurrent chats each take longer than
    a lone one; the planner enters the observed duration)."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if volume <= 0:
        return NONE
    a = traffic_erlangs(volume, aht_seconds, interval_seconds)
    slots = servers_for_service_level(a, aht_seconds, sl_target, target_seconds)
    raw = math.ceil(slots / concurrency)
    return Staffing(
        traffic=a,
        raw_agents=raw,
        agents=with_shrinkage(raw, shrinkage),
        service_level=service_level(slots, a, aht_seconds, target_seconds),
        asa_seconds=average_speed_of_answer(slots, a, aht_seconds),
        occupancy=a / (raw * concurrency),
    )


def size_email(
    volumes: list[float],
    aht_seconds: float,
    interval_seconds: float,
    target_seconds: float,
    shrinkage: float = 0.0,
) -> list[Staffing]:
    """Email by workload: what arrives in an interval is answered within ``target_seconds``.

    Each interval's work (volume × handle time) is spread evenly over the intervals of its
    target window, starting with its own, so the backlog is cleared in time; an interval's
    need is the work falling on it divided by its length. Work whose window runs past the
    last interval is put on the last one (the day must clear its own mail)."""
    if target_seconds < interval_seconds:
        raise ValueError("the email target must be at least one interval long")
    span = max(1, int(target_seconds // interval_seconds))
    work = [0.0] * len(volumes)
    for i, volume in enumerate(volumes):
        if volume <= 0:
            continue
        share = volume * aht_seconds / span
        for j in range(i, i + span):
            work[min(j, len(volumes) - 1)] += share
    result = []
    for load in work:
        busy = load / interval_seconds
        if busy <= 0:
            result.append(NONE)
            continue
        raw = math.ceil(round(busy, 9))
        result.append(Staffing(busy, raw, with_shrinkage(raw, shrinkage), None, None, busy / raw))
    return result
