"""Properties of the pure routing core, checked with hypothesis over random snapshots."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.routing.decision import (
    AgentView,
    Decision,
    QueueView,
    Router,
    WaitingView,
    decide,
    qualifies,
    rank_key,
    requirements,
    strategy_key,
)
from models import Strategy

SKILLS = ("general", "billing", "spanish")
CHANNELS = ("voice", "webchat", "email")
NOW = 10_000.0


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[list[QueueView], list[AgentView], list[WaitingView]]:
    queue_count = draw(st.integers(1, 3))
    queues = [
        QueueView(
            id=queue_id,
            priority=draw(st.integers(0, 3)),
            strategy=draw(st.sampled_from(list(Strategy))),
            skills=draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=2)),
            open=draw(st.booleans() | st.just(True)),
        )
        for queue_id in range(1, queue_count + 1)
    ]
    agents = []
    for agent_id in range(1, draw(st.integers(0, 8)) + 1):
        capacity = draw(st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 3)))
        load = {c: draw(st.integers(0, n + 1)) for c, n in capacity.items()}  # some overloaded
        if draw(st.booleans()):  # chats the profile allows beside a call
            capacity["beside_call"] = draw(st.integers(0, 2))
        agents.append(
            AgentView(
                id=agent_id,
                skills=draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5))),
                capacity=capacity,
                load=load,
                idle_since=draw(st.sampled_from([0.0, 100.0, 200.0, 300.0])),
                last_offer_at=draw(st.sampled_from([float("-inf"), 50.0, 150.0])),
            )
        )
    agent_ids = [a.id for a in agents]
    waiting = [
        WaitingView(
            id=item_id,
            queue_id=draw(st.integers(1, queue_count)),
            channel=draw(st.sampled_from(CHANNELS)),
            priority=draw(st.integers(0, 3)),
            queued_at=draw(st.sampled_from([0.0, 60.0, 120.0, 9_000.0, 9_940.0])),
            required_skills=draw(
                st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=1)
            ),
            relaxed=draw(st.booleans()),
            excluded_agents=frozenset(
                draw(st.lists(st.sampled_from(agent_ids), max_size=2)) if agent_ids else []
            ),
        )
        for item_id in range(1, draw(st.integers(0, 20)) + 1)
    ]
    return queues, agents, waiting


def can_take(agent: AgentView, item: WaitingView, queue: QueueView, load: Counter) -> bool:
    """May ``agent`` take ``item`` while carrying ``load`` (a brute-force restatement)."""
    return (
        queue.open
        and agent.id not in item.excluded_agents
        and qualifies(agent, item.channel, requirements(item, queue))
        and agent.capacity.get(item.channel, 0) - load[(agent.id, item.channel)] > 0
        and not on_another_call(agent, item.channel, load)
    )


def on_another_call(agent: AgentView, channel: str, load: Counter) -> bool:
    """An agent on a call takes nothing else beyond the profile's ``beside_call``."""
    if channel == "voice" or load[(agent.id, "voice")] == 0:
        return False
    others = sum(n for (a, c), n in load.items() if a == agent.id and c != "voice")
    return others >= agent.capacity.get("beside_call", 0)


def initial_load(agents: list[AgentView]) -> Counter:
    return Counter({(a.id, c): n for a in agents for c, n in a.load.items()})


def naive(
    queues: list[QueueView], agents: list[AgentView], waiting: list[WaitingView]
) -> list[Decision]:
    """The obvious O(items × agents) algorithm: best item first, best agent by strategy."""
    by_id = {q.id: q for q in queues}
    load = initial_load(agents)
    last_offer = {a.id: a.last_offer_at for a in agents}
    decisions = []
    for item in sorted(waiting, key=lambda i: rank_key(i, by_id[i.queue_id])):
        queue = by_id[item.queue_id]
        needs = requirements(item, queue)
        options = []
        for agent in agents:
            if can_take(agent, item, queue, load):
                current = AgentView(
                    agent.id,
                    agent.skills,
                    agent.capacity,
                    {c: load[(agent.id, c)] for c in agent.capacity},
                    agent.idle_since,
                    last_offer[agent.id],
                )
                options.append((strategy_key(current, queue.strategy, needs), agent.id))
        if options:
            _key, chosen = min(options)
            load[(chosen, item.channel)] += 1
            last_offer[chosen] = NOW
            decisions.append(Decision(item.id, chosen, item.queue_id, 0.0))
    return decisions


@settings(max_examples=50, deadline=None)
@given(snapshots())
def test_never_offers_without_the_skill_or_without_free_capacity(snapshot):
    queues, agents, waiting = snapshot
    by_queue = {q.id: q for q in queues}
    items = {i.id: i for i in waiting}
    agents_by_id = {a.id: a for a in agents}
    load = initial_load(agents)
    for decision in decide(queues, agents, waiting, NOW):
        item, agent = items[decision.interaction_id], agents_by_id[decision.agent_id]
        assert can_take(agent, item, by_queue[item.queue_id], load)
        load[(agent.id, item.channel)] += 1
    for (agent_id, channel), count in load.items():
        agent = agents_by_id[agent_id]
        assert count <= max(agent.capacity.get(channel, 0), agent.load.get(channel, 0))


@settings(max_examples=50, deadline=None)
@given(snapshots())
def test_no_interaction_is_offered_twice_and_only_waiting_ones_are(snapshot):
    queues, agents, waiting = snapshot
    offered = [d.interaction_id for d in decide(queues, agents, waiting, NOW)]
    assert len(offered) == len(set(offered))
    assert set(offered) <= {i.id for i in waiting}


@settings(max_examples=50, deadline=None)
@given(snapshots())
def test_a_higher_score_is_always_served_first(snapshot):
    """When agent A gets item i, every item A could have taken that ranks above i (higher
    score, or equal score and earlier) was already served."""
    queues, agents, waiting = snapshot
    by_queue = {q.id: q for q in queues}
    agents_by_id = {a.id: a for a in agents}
    decisions = decide(queues, agents, waiting, NOW)
    served_before: set[int] = set()
    load = initial_load(agents)
    items = {i.id: i for i in waiting}
    for decision in decisions:
        item, agent = items[decision.interaction_id], agents_by_id[decision.agent_id]
        mine = rank_key(item, by_queue[item.queue_id])
        for other in waiting:
            if (
                other.id not in served_before
                and other.id != item.id
                and rank_key(other, by_queue[other.queue_id]) < mine
            ):
                assert not can_take(agent, other, by_queue[other.queue_id], load)
        served_before.add(item.id)
        load[(agent.id, item.channel)] += 1
    keys = [rank_key(items[d.interaction_id], by_queue[d.queue_id]) for d in decisions]
    assert keys == sorted(keys)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 5.0, 10.0, 20.0]), min_size=1, max_size=15),
    st.integers(1, 6),
)
def test_fifo_within_equal_score(queued_ats, slots):
    queue = QueueView(id=1)
    waiting = [WaitingView(i, 1, "webchat", 0, t) for i, t in enumerate(queued_ats, start=1)]
    agents = [AgentView(1, {}, {"webchat": slots})]
    decisions = decide([queue], agents, waiting, NOW)
    first_come = sorted(waiting, key=lambda i: (i.queued_at, i.id))[:slots]
    assert [d.interaction_id for d in decisions] == [i.id for i in first_come]


@settings(max_examples=50, deadline=None)
@given(snapshots())
def test_nothing_that_could_be_served_is_left_waiting(snapshot):
    queues, agents, waiting = snapshot
    by_queue = {q.id: q for q in queues}
    decisions = decide(queues, agents, waiting, NOW)
    load = initial_load(agents)
    items = {i.id: i for i in waiting}
    for d in decisions:
        load[(d.agent_id, items[d.interaction_id].channel)] += 1
    served = {d.interaction_id for d in decisions}
    for item in waiting:
        if item.id not in served:
            assert not any(can_take(a, item, by_queue[item.queue_id], load) for a in agents)


@settings(max_examples=50, deadline=None)
@given(snapshots())
def test_the_indexed_router_decides_exactly_like_the_obvious_algorithm(snapshot):
    queues, agents, waiting = snapshot
    fast = [(d.interaction_id, d.agent_id) for d in decide(queues, agents, waiting, NOW)]
    slow = [(d.interaction_id, d.agent_id) for d in naive(queues, agents, waiting)]
    assert fast == slow


@settings(max_examples=40, deadline=None)
@given(snapshots())
def test_an_offer_timeout_reoffers_to_the_next_agent(snapshot):
    """After ring-no-answer the agent is not ready (gone from the snapshot) and the item
    waits again, excluded for them: it goes to another agent whenever one can take it."""
    queues, agents, waiting = snapshot
    decisions = decide(queues, agents, waiting, NOW)
    if not decisions:
        return
    missed = decisions[0]
    items = {i.id: i for i in waiting}
    load = initial_load(agents)
    for d in decisions[1:]:
        load[(d.agent_id, items[d.interaction_id].channel)] += 1
    item = items[missed.interaction_id]
    again = WaitingView(
        item.id,
        item.queue_id,
        item.channel,
        item.priority,
        item.queued_at,
        item.required_skills,
        item.relaxed,
        item.excluded_agents | {missed.agent_id},
    )
    remaining = [
        AgentView(
            a.id, a.skills, a.capacity, {c: load[(a.id, c)] for c in a.capacity}, a.idle_since
        )
        for a in agents
        if a.id != missed.agent_id
    ]
    queue = {q.id: q for q in queues}[item.queue_id]
    retry = decide(queues, remaining, [again], NOW + 20)
    someone_can = any(can_take(a, again, queue, load) for a in remaining)
    assert [d.interaction_id for d in retry] == ([item.id] if someone_can else [])
    assert all(d.agent_id != missed.agent_id for d in retry)


@settings(max_examples=40, deadline=None)
@given(snapshots(), st.data())
def test_incremental_updates_match_a_fresh_decision(snapshot, data):
    """Kept up to date by release/add/remove, the router decides like one built afresh."""
    queues, agents, waiting = snapshot
    router = Router(
        queues,
        [
            AgentView(a.id, a.skills, a.capacity, dict(a.load), a.idle_since, a.last_offer_at)
            for a in agents
        ],
        waiting,
    )
    router.decide_all(NOW)
    served = set(waiting and {i.id for i in waiting} - set(router.items))
    if agents:
        agent = data.draw(st.sampled_from(agents))
        channel = data.draw(st.sampled_from(CHANNELS))
        if router.agents[agent.id].load.get(channel, 0) > 0:
            router.release(agent.id, channel)
    extra = WaitingView(1000, queues[0].id, data.draw(st.sampled_from(CHANNELS)), 1, 9_990.0)
    router.add_waiting(extra)
    left = [i for i in waiting if i.id not in served and i.id in router.items]
    if left:
        gone = data.draw(st.sampled_from(left))
        router.remove_waiting(gone.id)
        left.remove(gone)
    state = [
        AgentView(a.id, a.skills, a.capacity, dict(a.load), a.idle_since, a.last_offer_at)
        for a in router.agents.values()
    ]
    expected = [(d.interaction_id, d.agent_id) for d in naive(queues, state, [*left, extra])]
    assert [(d.interaction_id, d.agent_id) for d in router.decide_all(NOW + 1)] == expected


def _copy(agent: AgentView) -> AgentView:
    return AgentView(
        agent.id,
        agent.skills,
        agent.capacity,
        dict(agent.load),
        agent.idle_since,
        agent.last_offer_at,
    )


@settings(max_examples=60, deadline=None)
@given(snapshots(), st.data())
def test_a_router_kept_by_events_decides_like_a_fresh_snapshot(snapshot, data):
    """The dispatcher keeps one router between passes and feeds it the rows that events
    name (``put_agent``, ``remove_agent``, ``put_waiting``, ``remove_waiting``). After any
    sequence of those, and of decisions, it must decide exactly what a router built afresh
    from the same state decides."""
    queues, agents, waiting = snapshot
    router = Router(queues, [_copy(a) for a in agents], waiting)
    next_item = 500
    for step in range(data.draw(st.integers(1, 12))):
        op = data.draw(st.sampled_from(["agent", "leave", "item", "drop", "decide"]))
        if op == "agent":  # a new agent, or one whose load/idle time/capacity changed
            agent_id = data.draw(st.integers(1, 10))
            capacity = data.draw(st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 3)))
            router.put_agent(
                AgentView(
                    agent_id,
                    data.draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5))),
                    capacity,
                    {c: data.draw(st.integers(0, n)) for c, n in capacity.items()},
                    idle_since=data.draw(st.sampled_from([0.0, 100.0, 300.0])),
                    last_offer_at=data.draw(st.sampled_from([float("-inf"), 50.0])),
                )
            )
        elif op == "leave" and router.agents:
            router.remove_agent(data.draw(st.sampled_from(sorted(router.agents))))
        elif op == "item":  # a new arrival, or a waiting one re-queued with changes
            known = sorted(router.items)
            item_id = (
                data.draw(st.sampled_from(known)) if known and data.draw(st.booleans()) else None
            )
            if item_id is None:
                next_item += 1
                item_id = next_item
            router.put_waiting(
                WaitingView(
                    item_id,
                    data.draw(st.sampled_from([q.id for q in queues])),
                    data.draw(st.sampled_from(CHANNELS)),
                    data.draw(st.integers(0, 3)),
                    data.draw(st.sampled_from([0.0, 60.0, 9_000.0 + step])),
                    excluded_agents=frozenset(data.draw(st.lists(st.integers(1, 10), max_size=2))),
                )
            )
        elif op == "drop" and router.items:
            router.remove_waiting(data.draw(st.sampled_from(sorted(router.items))))
        now = NOW + step
        fresh = Router(queues, [_copy(a) for a in router.agents.values()], router.items.values())
        expected = [(d.interaction_id, d.agent_id) for d in fresh.decide_all(now)]
        if op == "decide" or data.draw(st.booleans()):
            assert [(d.interaction_id, d.agent_id) for d in router.decide_all(now)] == expected
    fresh = Router(queues, [_copy(a) for a in router.agents.values()], router.items.values())
    expected = [(d.interaction_id, d.agent_id) for d in fresh.decide_all(NOW + 99)]
    assert [(d.interaction_id, d.agent_id) for d in router.decide_all(NOW + 99)] == expected


def test_a_closed_queue_offers_nothing():
    queue = QueueView(id=1, open=False)
    agents = [AgentView(1, {}, {"webchat": 3})]
    assert decide([queue], agents, [WaitingView(1, 1, "webchat", 0, 0.0)], NOW) == []


def test_strategies_pick_the_expected_agent():
    agents = [
        AgentView(1, {"billing": 2}, {"voice": 1}, idle_since=100.0, last_offer_at=500.0),
        AgentView(2, {"billing": 5}, {"voice": 1}, idle_since=300.0, last_offer_at=400.0),
        AgentView(3, {"billing": 3}, {"voice": 1}, idle_since=200.0, last_offer_at=-1.0),
    ]
    item = WaitingView(1, 1, "voice", 0, 0.0)
    expected = {Strategy.LONGEST_IDLE: 1, Strategy.ROUND_ROBIN: 3, Strategy.HIGHEST_SKILL: 2}
    for strategy, agent_id in expected.items():
        queue = QueueView(id=1, strategy=strategy, skills={"billing": 1})
        assert [d.agent_id for d in decide([queue], agents, [item], NOW)] == [agent_id]


def test_aging_lets_a_long_wait_overtake_a_vip():
    """One priority point is worth a minute of waiting: a VIP who just arrived does not
    jump a customer waiting for two minutes, but does jump one waiting for thirty seconds."""
    queue = QueueView(id=1)
    agents = [AgentView(1, {}, {"webchat": 1})]
    vip = WaitingView(1, 1, "webchat", 1, NOW)
    patient = WaitingView(2, 1, "webchat", 0, NOW - 120)
    recent = WaitingView(3, 1, "webchat", 0, NOW - 30)
    assert decide([queue], agents, [vip, patient], NOW)[0].interaction_id == 2
    assert decide([queue], agents, [vip, recent], NOW)[0].interaction_id == 1
