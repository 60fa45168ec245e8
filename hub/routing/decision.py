"""The pure routing core: who gets which waiting interaction, decided over a snapshot.

No I/O here, so properties can be checked with hypothesis and the latency measured alone.

How it stays fast (1,000 agents, 10,000 waiting, p99 well under 1 ms per decision):

- The score is ``(queue priority + interaction priority) * PRIORITY_STEP_SECONDS + waited``.
  Every item ages at the same rate, so the order of two items never changes over time: it
  is the order of ``static key = points * step - queued_at``. A heap keyed on that static
  key is therefore always correct, without re-scoring anything as time passes.
- Waiting items are bucketed into *classes*: same queue, channel and skill requirements mean
  the same set of eligible agents. Each class has one heap of items (best first) and one
  heap of its eligible agents ordered by the queue's strategy.
- A heap of class heads picks the best item across classes. A class with no agent left is
  marked blocked and leaves the heads heap until an agent of that class frees capacity.

Presence policy (decided here, documented in ``hub/routing/__init__``): the snapshot only
holds agents who may take new work: READY agents, and BUSY agents (already working) who
have spare capacity on the channel. The service leaves out NOT_READY, WRAP_UP and OFFLINE.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from models.routing import Strategy

# One priority point (a queue's priority, or a contact's VIP level) is worth this much waiting.
PRIORITY_STEP_SECONDS = 60.0

Requirements = frozenset[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class QueueView:
    """A queue as the router sees it; ``open`` is already resolved from its business hours."""

    id: int
    priority: int = 0
    strategy: str = Strategy.LONGEST_IDLE
    skills: Mapping[str, int] = field(default_factory=dict)  # skill name → minimum level
    open: bool = True


VOICE = "voice"
# A capacity entry that is no channel: how many other conversations an agent on a call may
# carry (0 when absent). A call otherwise takes the agent's whole capacity.
BESIDE_CALL = "beside_call"
TOTAL = "total"  # capacity key: open work across every channel at once


def free_slots(capacity: Mapping[str, int], load: Mapping[str, int], channel: str) -> int:
    """Slots left on ``channel``. An agent on a call is offered nothing else, on any
    channel, beyond the profile's ``beside_call`` allowance; and the profile's ``total``,
    when set, caps open work across all channels together (2 chats, an email, an SMS and a
    fax at once is too much for most people, whatever each channel allows)."""
    free = capacity.get(channel, 0) - load.get(channel, 0)
    on_call = load.get(VOICE, 0)
    if on_call and channel != VOICE:
        beside = capacity.get(BESIDE_CALL, 0) - (sum(load.values()) - on_call)
        free = min(free, beside)
    if TOTAL in capacity:
        free = min(free, capacity[TOTAL] - sum(load.values()))
    return free


@dataclass(slots=True)
class AgentView:
    """An agent who may take new work, with the load they carry now (per channel)."""

    id: int
    skills: Mapping[str, int]
    capacity: Mapping[str, int]
    load: dict[str, int] = field(default_factory=dict)
    idle_since: float = 0.0  # epoch seconds; smaller = idle for longer
    last_offer_at: float = -math.inf

    def free(self, channel: str) -> int:
        return free_slots(self.capacity, self.load, channel)

    @property
    def total_load(self) -> int:
        return sum(self.load.values())


@dataclass(frozen=True, slots=True)
class WaitingView:
    """One QUEUED interaction. ``relaxed``: overflowed with relaxed skills (levels drop to 1,
    extra IVR skills are dropped). ``excluded_agents`` just rejected or missed it."""

    id: int
    queue_id: int
    channel: str
    priority: int
    queued_at: float
    required_skills: Mapping[str, int] = field(default_factory=dict)
    relaxed: bool = False
    excluded_agents: frozenset[int] = frozenset()
    excluded_until: float = math.inf  # epoch seconds: the earliest exclusion ends then


@dataclass(frozen=True, slots=True)
class Decision:
    interaction_id: int
    agent_id: int
    queue_id: int
    score: float


def score(item: WaitingView, queue: QueueView, now: float) -> float:
    """Priority with aging: waiting raises it, queue priority and VIP level add to it."""
    return (queue.priority + item.priority) * PRIORITY_STEP_SECONDS + (now - item.queued_at)


def rank_key(item: WaitingView, queue: QueueView) -> tuple[float, float, int]:
    """Sort key, smallest first: highest score, then first come (FIFO), then id."""
    static = (queue.priority + item.priority) * PRIORITY_STEP_SECONDS - item.queued_at
    return (-static, item.queued_at, item.id)


def requirements(item: WaitingView, queue: QueueView) -> Requirements:
    """Queue skills plus the interaction's own; relaxed overflow keeps only 'has the skill'."""
    if item.relaxed:
        return frozenset((name, 1) for name in queue.skills)
    merged = dict(queue.skills)
    for name, level in item.required_skills.items():
        merged[name] = max(level, merged.get(name, 0))
    return frozenset(merged.items())


def qualifies(agent: AgentView, channel: str, needs: Requirements) -> bool:
    """Has every skill at the minimum level, and may work this channel at all."""
    if agent.capacity.get(channel, 0) <= 0:
        return False
    return all(agent.skills.get(name, 0) >= level for name, level in needs)


def strategy_key(agent: AgentView, strategy: str, needs: Requirements) -> tuple:
    """Smallest first. Less loaded agents go first under longest-idle and highest-skill."""
    if strategy == Strategy.ROUND_ROBIN:
        return (agent.last_offer_at, agent.id)
    if strategy == Strategy.HIGHEST_SKILL:
        level = sum(agent.skills.get(name, 0) for name, _ in needs)
        return (-level, agent.total_load, agent.idle_since, agent.id)
    return (agent.total_load, agent.idle_since, agent.id)


class _Class:
    """Waiting items with the same queue, channel and requirements; and who can serve them."""

    __slots__ = (
        "agent_heap",
        "blocked",
        "channel",
        "deferred",
        "head",
        "items",
        "key",
    )

    def __init__(self, key: tuple, channel: str) -> None:
        self.key = key
        self.channel = channel
        self.items: list[tuple[tuple[float, float, int], int]] = []
        self.agent_heap: list[tuple[tuple, int, int]] = []  # (strategy key, agent id, version)
        self.blocked = False
        self.deferred: list[tuple[tuple[float, float, int], int]] = []
        self.head: tuple | None = None  # this class's one live entry in the heads heap


class Router:
    """Indexes a snapshot and hands out decisions one at a time, best item first.

    It is kept up to date incrementally between dispatch passes (``add_waiting``,
    ``remove_waiting``, ``put_agent``, ``remove_agent``, ``release``): the dispatcher reloads
    only the rows an event named, and the result is the same as indexing a fresh snapshot
    (a hypothesis property checks that).
    """

    def __init__(
        self,
        queues: Iterable[QueueView],
        agents: Iterable[AgentView],
        waiting: Iterable[WaitingView] = (),
    ) -> None:
        self.queues = {q.id: q for q in queues}
        self.agents = {a.id: a for a in agents}
        self.items: dict[int, WaitingView] = {}
        self._classes: dict[tuple, _Class] = {}
        self._item_class: dict[int, _Class] = {}
        # An item replaced in place (``put_waiting``) leaves its old heap entry behind;
        # only the entry recorded here is live.
        self._item_entry: dict[int, tuple[tuple[float, float, int], int]] = {}
        self._agent_classes: dict[int, list[_Class]] = {a: [] for a in self.agents}
        self._version: dict[int, int] = dict.fromkeys(self.agents, 0)
        self._heads: list[tuple[tuple[float, float, int], int, tuple]] = []
        self._skill_index: dict[str, set[int]] = {}
        for agent in self.agents.values():
            for name in agent.skills:
                self._skill_index.setdefault(name, set()).add(agent.id)
        by_class: dict[_Class, list[tuple[tuple[float, float, int], int]]] = {}
        for item in waiting:
            admitted = self._admit(item)
            if admitted is not None:
                by_class.setdefault(admitted[0], []).append(admitted[1])
        for cls, entries in by_class.items():
            cls.items.extend(entries)
            heapq.heapify(cls.items)
            self._push_head(cls)

    # -- building -----------------------------------------------------------------------

    def _admit(
        self, item: WaitingView
    ) -> tuple[_Class, tuple[tuple[float, float, int], int]] | None:
        """Index the item: its class, and the heap entry that is its one live entry."""
        queue = self.queues.get(item.queue_id)
        if queue is None or not queue.open:
            return None  # a closed or unknown queue offers nothing
        needs = requirements(item, queue)
        key = (item.queue_id, item.channel, needs)
        cls = self._classes.get(key)
        if cls is None:
            cls = self._new_class(key, queue, item.channel, needs)
        entry = (rank_key(item, queue), item.id)
        self.items[item.id] = item
        self._item_class[item.id] = cls
        self._item_entry[item.id] = entry
        return cls, entry

    def _new_class(self, key: tuple, queue: QueueView, channel: str, needs: Requirements) -> _Class:
        cls = _Class(key, channel)
        self._classes[key] = cls
        candidates: Iterable[int] = self.agents
        for name, _level in needs:  # start from the agents holding the rarest skill
            holders = self._skill_index.get(name, set())
            if len(holders) < len(candidates):  # type: ignore[arg-type]
                candidates = holders
        for agent_id in sorted(candidates):
            agent = self.agents[agent_id]
            if qualifies(agent, channel, needs):
                self._agent_classes[agent_id].append(cls)
                if agent.free(channel) > 0:
                    cls.agent_heap.append(
                        (
                            strategy_key(agent, queue.strategy, needs),
                            agent_id,
                            self._version[agent_id],
                        )
                    )
        heapq.heapify(cls.agent_heap)
        return cls

    def _push_head(self, cls: _Class) -> None:
        """(Re-)register the class in the heads heap; older entries of it go stale."""
        if cls.items and not cls.blocked:
            cls.head = (cls.items[0][0], cls.items[0][1], cls.key)
            heapq.heappush(self._heads, cls.head)
        else:
            cls.head = None

    # -- incremental updates ------------------------------------------------------------

    def add_waiting(self, item: WaitingView) -> None:
        admitted = self._admit(item)
        if admitted is None:
            return
        cls, entry = admitted
        heapq.heappush(cls.items, entry)
        if cls.items[0] is entry:
            self._push_head(cls)

    def remove_waiting(self, interaction_id: int) -> None:
        """Forget an item (answered elsewhere, abandoned); its heap entry is dropped lazily."""
        self.items.pop(interaction_id, None)
        self._item_class.pop(interaction_id, None)
        self._item_entry.pop(interaction_id, None)

    def put_waiting(self, item: WaitingView) -> None:
        """Add an item, or replace it (re-queued, moved to another queue, new exclusions)."""
        self.remove_waiting(item.id)
        self.add_waiting(item)

    def put_agent(self, agent: AgentView) -> None:
        """Add an agent who may take work, or replace what is known of one (load, idle
        time, capacity, skills); the classes it can serve may move again."""
        self.remove_agent(agent.id)
        self.agents[agent.id] = agent
        self._version.setdefault(agent.id, 0)
        for name in agent.skills:
            self._skill_index.setdefault(name, set()).add(agent.id)
        self._agent_classes[agent.id] = [
            cls for cls in self._classes.values() if qualifies(agent, cls.channel, cls.key[2])
        ]
        self._reindex_agent(agent, unblock=True)

    def remove_agent(self, agent_id: int) -> None:
        """The agent stopped taking work; their heap entries go stale and are dropped lazily."""
        agent = self.agents.pop(agent_id, None)
        if agent is None:
            return
        for name in agent.skills:
            self._skill_index.get(name, set()).discard(agent_id)
        self._agent_classes.pop(agent_id, None)
        self._version[agent_id] += 1

    def release(self, agent_id: int, channel: str) -> None:
        """The agent finished one piece of work on ``channel``: their classes may move again."""
        agent = self.agents[agent_id]
        agent.load[channel] = max(0, agent.load.get(channel, 0) - 1)
        self._reindex_agent(agent, unblock=True)

    def _reindex_agent(self, agent: AgentView, *, unblock: bool) -> None:
        version = self._version[agent.id] + 1
        self._version[agent.id] = version
        for cls in self._agent_classes[agent.id]:
            if agent.free(cls.channel) <= 0:
                continue
            queue = self.queues[cls.key[0]]
            heapq.heappush(
                cls.agent_heap, (strategy_key(agent, queue.strategy, cls.key[2]), agent.id, version)
            )
            if unblock and (cls.blocked or cls.deferred):
                cls.blocked = False
                for entry in cls.deferred:
                    heapq.heappush(cls.items, entry)
                cls.deferred.clear()
                self._push_head(cls)

    # -- deciding -----------------------------------------------------------------------

    def _head_item(self, cls: _Class) -> WaitingView | None:
        """The best live item of a class (dropping entries of removed or replaced items)."""
        while cls.items:
            entry = cls.items[0]
            item_id = entry[1]
            if self._item_class.get(item_id) is cls and self._item_entry.get(item_id) == entry:
                return self.items[item_id]
            heapq.heappop(cls.items)
        return None

    def _best_agent(self, cls: _Class, excluded: frozenset[int]) -> tuple[AgentView | None, bool]:
        """(best agent not excluded, whether any agent at all is still available)."""
        skipped: list[tuple[tuple, int, int]] = []
        found: AgentView | None = None
        heap = cls.agent_heap
        while heap:
            _key, agent_id, version = heap[0]
            agent = self.agents.get(agent_id)
            if agent is None or version != self._version[agent_id] or agent.free(cls.channel) <= 0:
                heapq.heappop(heap)
                continue
            if agent_id in excluded:
                skipped.append(heapq.heappop(heap))
                continue
            found = agent
            break
        any_available = found is not None or bool(skipped)
        for entry in skipped:
            heapq.heappush(heap, entry)
        return found, any_available

    def next_decision(self, now: float) -> Decision | None:
        """The best (item, agent) pair now, applied to the index; None when nothing fits."""
        heads = self._heads
        while heads:
            entry = heads[0]
            cls = self._classes[entry[2]]
            if entry is not cls.head:
                heapq.heappop(heads)  # stale: the class re-registered or left
                continue
            item = self._head_item(cls)
            if item is None:
                heapq.heappop(heads)
                cls.head = None
                continue
            if item.id != entry[1]:  # the head item was removed: re-register the class
                heapq.heappop(heads)
                self._push_head(cls)
                continue
            agent, any_available = self._best_agent(cls, item.excluded_agents)
            if agent is None:
                heapq.heappop(heads)
                cls.head = None
                if any_available:  # only this item's own exclusions stand in the way
                    cls.deferred.append(heapq.heappop(cls.items))
                    self._push_head(cls)
                else:
                    cls.blocked = True
                continue
            heapq.heappop(heads)
            heapq.heappop(cls.items)
            self.remove_waiting(item.id)
            self._push_head(cls)
            agent.load[cls.channel] = agent.load.get(cls.channel, 0) + 1
            agent.last_offer_at = now
            self._reindex_agent(agent, unblock=False)
            queue = self.queues[item.queue_id]
            return Decision(item.id, agent.id, item.queue_id, score(item, queue, now))
        return None

    def decide_all(self, now: float) -> list[Decision]:
        decisions: list[Decision] = []
        while (decision := self.next_decision(now)) is not None:
            decisions.append(decision)
        return decisions


def decide(
    queues: Iterable[QueueView],
    agents: Iterable[AgentView],
    waiting: Iterable[WaitingView],
    now: float,
) -> list[Decision]:
    """Every offer to make now, best item first. The inputs are not modified."""
    copies = [
        AgentView(a.id, a.skills, a.capacity, dict(a.load), a.idle_since, a.last_offer_at)
        for a in agents
    ]
    return Router(queues, copies, waiting).decide_all(now)


def ordered(waiting: Iterable[WaitingView], queues: Mapping[int, QueueView]) -> list[WaitingView]:
    """Waiting items in service order (for queue positions)."""
    return sorted(waiting, key=lambda item: rank_key(item, queues[item.queue_id]))
