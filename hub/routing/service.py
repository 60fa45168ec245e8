"""RoutingService: commits the pure core's decisions, and runs the conversation lifecycle.

A dispatch pass reads a snapshot without locks, lets ``decision.Router`` choose, then
commits in one transaction what still holds once the rows are locked: the interaction is
still QUEUED in the same queue (``FOR UPDATE SKIP LOCKED``), the agent is still routable and
has a free slot (``FOR UPDATE SKIP LOCKED``, load recounted after the lock). A partial
unique index allows one PENDING offer per interaction, as the last guard. Two hub processes
on one PostgreSQL therefore never offer one interaction twice; on SQLite the one write lock
serializes them. Whatever was skipped is retried on the next pass.

Every change of an interaction or offer happens under that interaction's row lock, and locks
are always taken interactions first, then agents. Events are published after commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.events import (
    ROUTING_TOPIC,
    SUPERVISOR_TOPIC,
    agent_topic,
    interaction_topic,
)
from hub.interactions import InvalidTransition, change_state
from hub.presence import (
    MISSED_REASON,
    VOICE,
    apply_presence,
    cancel_offers,
    check_reason,
    lock_agent_offers,
    requeue_keeping_place,
    settle,
)
from hub.routing.decision import (
    AgentView,
    Decision,
    Router,
    WaitingView,
    free_slots,
    ordered,
    qualifies,
    requirements,
)
from hub.routing.estimates import (
    HANDLE_WINDOW_SECONDS,
    NO_AGENTS,
    NO_HISTORY,
    QueuePosition,
    average_handle_seconds,
    estimated_wait,
)
from hub.routing.offers import cancel_pending, end_offer, pending_offer
from hub.routing.snapshot import (
    QueueConfig,
    QueueRows,
    agent_skills,
    as_utc,
    epoch,
    load_agents,
    load_queue_rows,
    load_queues,
    load_waiting,
    resolve_queues,
)
from hub.routing.work import (
    ROUTABLE_PRESENCE,
    AfterCommit,
    agent_loads,
    agent_name,
    lock_agent,
    lock_interaction,
    write_lock,
)
from hub.tasks import cancel_and_wait
from hub.text_collab import end_joined
from models import (
    Agent,
    Disposition,
    Interaction,
    InteractionState,
    Message,
    Offer,
    OfferOutcome,
    PresenceState,
    Queue,
    SenderKind,
    utcnow,
)

if TYPE_CHECKING:
    from hub.services import Services

S = InteractionState
log = logging.getLogger(__name__)
# Agents who serve a queue's work now: taking it, or finishing one (wrap-up).
SERVING_PRESENCE = (
    PresenceState.READY.value,
    PresenceState.BUSY.value,
    PresenceState.WRAP_UP.value,
)
DEFAULT_OFFER_TIMEOUT_SECONDS = 20
DEFAULT_WRAPUP_SECONDS = 60
MAX_RETRY_PASSES = 5
# Queue configuration is cached this long by the dispatcher; a ``routing`` "config" event
# (the admin pages publish it after a change) or ``invalidate_config`` drops it at once.
CONFIG_TTL_SECONDS = 5.0
# The kept router is rebuilt from a full snapshot at least this often.
REBUILD_SECONDS = 10.0


# A pass locks what it decided on; built once (see hub.routing.snapshot).
_LOCK_QUEUED = (
    select(Interaction)
    .where(
        col(Interaction.id).in_(bindparam("ids", expanding=True)),
        Interaction.state == S.QUEUED,
    )
    .with_for_update(skip_locked=True)
)
_LOCK_ROUTABLE = (
    select(Agent)
    .where(
        col(Agent.id).in_(bindparam("ids", expanding=True)),
        col(Agent.presence).in_(ROUTABLE_PRESENCE),
    )
    .with_for_update(skip_locked=True)
)


# Open text work a supervisor can move (wrap-ups are the agent's to finish).
REASSIGNABLE = (S.QUEUED, S.OFFERED, S.ACTIVE, S.VOICEMAIL)


def _placement(interaction: Interaction) -> dict[str, Any]:
    """Where an interaction stands, for the audit trail."""
    return {
        "state": str(interaction.state),
        "queue_id": interaction.queue_id,
        "agent_id": interaction.agent_id,
    }


class OfferGone(Exception):
    """The offer expired, was cancelled or taken, or is not this agent's."""


class NotYourInteraction(PermissionError):
    """The agent does not hold this interaction (someone else does, or nobody)."""


class NotReassignable(ValueError):
    """A call, or work that is not open (closed, abandoned) or is the agent's (wrap-up)."""


class AgentUnavailable(ValueError):
    """A transfer target who does not exist, is the sender, or is not taking work."""


def _still_ringing(offer: Offer, interaction: Interaction) -> bool:
    """A pending offer only counts while its interaction is OFFERED to that same agent."""
    return interaction.state == S.OFFERED and interaction.agent_id == offer.agent_id


class RoutingService:
    """Routes waiting work, and runs the conversation lifecycle (accept to close).

    The dispatcher keeps one ``Router`` between passes. Every change that matters to it
    publishes a ``routing`` event naming the rows to read again ("interaction": an item
    joined, left or changed its queue; "agent": presence, load or idle time changed;
    "offered": another process offered work), so a pass reads only those rows, and a new
    arrival costs one small read, the decision and the offer's commit. A full snapshot is
    read again on "config" (queues, skills), on any other event, when a commit finds the
    index stale (a row was taken elsewhere), when a queue opens or closes, when the first
    re-offer cool-down ends, and every ``REBUILD_SECONDS`` (a lost event heals).
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._wake = asyncio.Event()
        self._pass_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._config: QueueRows | None = None
        self._agent_skills: dict[int, dict[str, int]] = {}  # cached with the queue config
        self._config_expires = 0.0
        self._router: Router | None = None
        self._router_expires = 0.0
        self._generation = 0  # bumped by every full invalidation
        self._config_generation = 0  # bumped by every config invalidation
        self._stale_items: set[int] = set()
        self._stale_agents: set[int] = set()

    @property
    def _node(self) -> str:
        return self._services.settings.node_name

    # -- the background loop --------------------------------------------------------------

    async def start(self) -> None:
        """Dispatch on every ``routing`` event (any process) and on a timer."""
        if self._tasks:
            return
        subscribed = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen(subscribed), name="routing-listen"),
            asyncio.create_task(self._loop(), name="routing-loop"),
            asyncio.create_task(self._timers(), name="routing-timers"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscribed.wait(), 5)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(*tasks)

    def wake(self) -> None:
        """Ask for a dispatch pass soon (this process)."""
        self._wake.set()

    def invalidate_config(self) -> None:
        """Queues, hours or skills changed: read them, and the whole snapshot, again."""
        self._config = None
        self._config_generation += 1
        self.invalidate_router()

    def invalidate_router(self) -> None:
        self._router = None
        self._generation += 1

    def _queue_config(self, db: Session, now: datetime) -> QueueConfig:
        """Queues, hours and skills (agents' too), cached for ``CONFIG_TTL_SECONDS``."""
        clock = time.monotonic()
        if self._config is None or clock >= self._config_expires:
            self._config = load_queue_rows(db)
            self._agent_skills = agent_skills(db, self._config.skill_names)
            self._config_expires = clock + CONFIG_TTL_SECONDS
        return resolve_queues(self._config, now)

    async def _listen(self, subscribed: asyncio.Event) -> None:
        async with self._services.bus.subscribe([ROUTING_TOPIC]) as events:
            subscribed.set()
            async for event in events:
                if self._on_event(event.name, event.data):
                    self._wake.set()

    def _on_event(self, name: str, data: dict[str, Any]) -> bool:
        """What a ``routing`` event means for the kept router; False: nothing to do."""
        if name == "offered" and data.get("node") == self._node:
            return False  # our own offer: the router applied it already
        if name in ("interaction", "agent", "offered"):
            if data.get("interaction_id") is not None:
                self._stale_items.add(data["interaction_id"])
            if data.get("agent_id") is not None:
                self._stale_agents.add(data["agent_id"])
        elif name == "config":
            self.invalidate_config()
        else:
            self.invalidate_router()
        return True

    async def _loop(self) -> None:
        """Dispatch when woken, and at least every interval (aging)."""
        interval = self._services.settings.dispatch_interval_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):  # no extra task, unlike wait_for
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.dispatch()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad row or a lost connection must not stop routing
                log.exception("routing pass failed; retrying on the next tick")
                await asyncio.sleep(interval)

    async def _timers(self) -> None:
        """The timeouts run beside dispatch, so a new arrival never waits for them; they
        wake the dispatcher when they free work."""
        interval = self._services.settings.dispatch_interval_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_timers()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("routing timers failed; retrying on the next tick")

    async def run_timers(self) -> None:
        """Ring-no-answer, overflow and wrap-up timeouts that are due now."""
        await self.expire_offers()
        await self.overflow()
        await self.end_expired_wrapups()

    # -- dispatch ---------------------------------------------------------------------------

    async def dispatch(self) -> list[int]:
        """One pass: offer every waiting interaction that an agent can take now."""
        made: list[int] = []
        async with self._pass_lock:
            for _attempt in range(MAX_RETRY_PASSES):
                offers, skipped = await self._dispatch_once()
                made.extend(offers)
                if not skipped:
                    break
        return made

    async def _dispatch_once(self) -> tuple[list[int], int]:
        if not self._tasks:
            self.invalidate_router()  # no listener keeps it current: read a full snapshot
        items, self._stale_items = self._stale_items, set()
        agents, self._stale_agents = self._stale_agents, set()
        generation, config_generation = self._generation, self._config_generation
        try:
            router, offers, after, skipped = await self._services.transactions.run(
                self._pass, utcnow(), items, agents
            )
        except BaseException:
            self.invalidate_router()
            raise
        if config_generation != self._config_generation:
            self._config = None  # the pass may have cached rows read before the change
        if skipped or generation != self._generation:
            self.invalidate_router()  # the index saw rows that changed under it: read afresh
        else:
            self._router = router
        await after.publish(self._services.bus)
        return offers, skipped

    def _pass(
        self, db: Session, now: datetime, items: set[int], agents: set[int]
    ) -> tuple[Router, list[int], AfterCommit, int]:
        """Bring the router up to date, decide, and write the offers that still hold."""
        config = self._queue_config(db, now)
        router = self._router
        if (
            router is None
            or router.queues != config.views
            or time.monotonic() >= self._router_expires
        ):
            waiting = load_waiting(db, config, now)
            router = Router(config.views.values(), load_agents(db, self._agent_skills), waiting)
            self._router_expires = time.monotonic() + REBUILD_SECONDS
            self._expire_with_exclusions(waiting, now)
        else:
            if items:
                waiting = load_waiting(db, config, now, ids=items)
                self._expire_with_exclusions(waiting, now)
                for item in waiting:
                    items.discard(item.id)
                    router.put_waiting(item)
                for gone in items:
                    router.remove_waiting(gone)
            if agents:
                for agent in load_agents(db, self._agent_skills, ids=agents):
                    agents.discard(agent.id)
                    router.put_agent(agent)
                for gone in agents:
                    router.remove_agent(gone)
        decisions = router.decide_all(now.timestamp())
        after = AfterCommit()
        if not decisions:
            return router, [], after, 0
        offers, skipped = self._commit(db, decisions, config, now, after)
        return router, offers, after, skipped

    def _expire_with_exclusions(self, waiting: list[WaitingView], now: datetime) -> None:
        """Read a full snapshot again when the first re-offer cool-down ends, so an agent
        who said no may get the item again on time (the kept index cannot see time pass)."""
        ends = min((item.excluded_until for item in waiting), default=math.inf)
        if ends != math.inf:
            when = time.monotonic() + max(0.0, ends - now.timestamp())
            self._router_expires = min(self._router_expires, when)

    def _commit(
        self,
        db: Session,
        decisions: list[Decision],
        config: QueueConfig,
        now: datetime,
        after: AfterCommit,
    ) -> tuple[list[int], int]:
        """Write the decisions that still hold with the rows locked (``SKIP LOCKED``)."""
        interactions = {
            i.id: i
            for i in db.exec(
                _LOCK_QUEUED, params={"ids": [d.interaction_id for d in decisions]}
            ).all()
        }
        agents = {
            a.id: a
            for a in db.exec(
                _LOCK_ROUTABLE, params={"ids": list({d.agent_id for d in decisions})}
            ).all()
        }
        loads = agent_loads(db, agents)  # type: ignore[arg-type]
        skipped = 0
        offers: list[Offer] = []
        for decision in decisions:
            interaction = interactions.get(decision.interaction_id)
            agent = agents.get(decision.agent_id)
            if (
                interaction is None
                or agent is None
                or interaction.queue_id != decision.queue_id
                or free_slots(agent.capacity or {}, loads[agent.id], interaction.channel) <= 0  # type: ignore[index]
            ):
                skipped += 1
                continue
            loads[agent.id][interaction.channel] = (  # type: ignore[index]
                loads[agent.id].get(interaction.channel, 0) + 1  # type: ignore[index]
            )
            offers.append(
                self._offer(db, interaction, agent, config.rows.get(decision.queue_id), now)
            )
            agent.last_offer_at = now
            db.add(agent)
        if not offers:
            return [], skipped
        try:
            db.flush()
        except IntegrityError:  # another process offered one of them: redo the pass
            db.rollback()
            return [], len(decisions)
        for offer in offers:
            self._announce_offer(after, offer)
            after.add(
                ROUTING_TOPIC,
                "offered",
                interaction_id=offer.interaction_id,
                agent_id=offer.agent_id,
                node=self._node,
            )
        return [o.id for o in offers], skipped  # type: ignore[misc]

    def _offer(
        self,
        db: AsyncSession | Session,
        interaction: Interaction,
        agent: Agent,
        queue: Queue | None,
        now: datetime,
        **extra: object,
    ) -> Offer:
        timeout = queue.offer_timeout_seconds if queue else DEFAULT_OFFER_TIMEOUT_SECONDS
        offer = Offer(
            interaction_id=interaction.id,  # type: ignore[arg-type]
            agent_id=agent.id,  # type: ignore[arg-type]
            queue_id=interaction.queue_id,
            offered_at=now,
            expires_at=now + timedelta(seconds=timeout),
            node=self._node,
            extra=dict(extra),
        )
        change_state(db, interaction, S.OFFERED, at=now, agent_id=agent.id, reason="offered")
        interaction.agent_id = agent.id
        db.add(offer)
        return offer

    @staticmethod
    def _announce_offer(after: AfterCommit, offer: Offer) -> None:
        after.add(
            agent_topic(offer.agent_id),
            "offer",
            offer_id=offer.id,
            interaction_id=offer.interaction_id,
            expires_at=as_utc(offer.expires_at).isoformat(),  # type: ignore[union-attr]
        )
        after.add(interaction_topic(offer.interaction_id), "state", state="offered", agent_id=None)
        after.add(SUPERVISOR_TOPIC, "queue", queue_id=offer.queue_id)
        after.add(SUPERVISOR_TOPIC, "agent", agent_id=offer.agent_id)

    # -- offers: accept, reject, time out -----------------------------------------------------

    async def _locked_offer(
        self, db: AsyncSession, offer_id: int, agent_id: int
    ) -> tuple[Offer, Interaction]:
        """The agent's pending offer and its interaction, locked; OfferGone otherwise."""
        await write_lock(db)
        offer = await db.get(Offer, offer_id)
        if offer is None or offer.agent_id != agent_id:
            raise OfferGone(f"offer {offer_id} is not yours")
        interaction = await lock_interaction(db, offer.interaction_id)
        await db.refresh(offer)
        if interaction is None or offer.outcome != OfferOutcome.PENDING:
            raise OfferGone(f"offer {offer_id} is {offer.outcome}")
        if not _still_ringing(offer, interaction):
            raise OfferGone(f"interaction {interaction.id} is {interaction.state} now")
        return offer, interaction

    async def accept_offer(self, offer_id: int, agent_id: int) -> Interaction:
        """The agent takes the offered interaction: ACTIVE, assigned, agent BUSY."""
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            offer, interaction = await self._locked_offer(db, offer_id, agent_id)
            now = utcnow()
            if as_utc(offer.expires_at) is not None and as_utc(offer.expires_at) <= now:  # type: ignore[operator]
                raise OfferGone(f"offer {offer_id} has expired")
            agent = await lock_agent(db, agent_id)
            offer.outcome = OfferOutcome.ACCEPTED
            offer.decided_at = now
            db.add(offer)
            change_state(db, interaction, S.ACTIVE, at=now, agent_id=agent_id, reason="accepted")
            interaction.agent_id = agent_id
            await settle(db, agent, after, now=now)  # type: ignore[arg-type]
            self._announce_work(after, interaction, agent_id)
            await db.commit()
        await after.publish(self._services.bus)
        return interaction

    async def reject_offer(self, offer_id: int, agent_id: int) -> None:
        """Back to the queue; the next agent gets it (this one is skipped for a while)."""
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            offer, interaction = await self._locked_offer(db, offer_id, agent_id)
            end_offer(
                db,
                offer,
                interaction,
                OfferOutcome.REJECTED,
                after,
                now=utcnow(),
                reason="rejected",
            )
            after.add(SUPERVISOR_TOPIC, "agent", agent_id=agent_id)
            await db.commit()
        await after.publish(self._services.bus)
        self.wake()

    async def expire_offers(self) -> int:
        """Ring-no-answer: the offer times out, the agent goes NOT_READY "missed", and the
        interaction goes back to the queue for the next agent. Returns how many expired."""
        now = utcnow()
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            due = (
                await db.exec(
                    select(Offer.interaction_id).where(
                        Offer.outcome == OfferOutcome.PENDING, col(Offer.expires_at) <= now
                    )
                )
            ).all()
            if not due:
                return 0
            await write_lock(db)
            interactions = (
                await db.exec(
                    select(Interaction)
                    .where(col(Interaction.id).in_(list(due)))
                    .with_for_update(skip_locked=True)
                    .execution_options(populate_existing=True)
                )
            ).all()
            expired: list[tuple[Offer, Interaction]] = []
            stale: list[tuple[Offer, Interaction]] = []
            for interaction in interactions:
                offer = await pending_offer(db, interaction.id)  # type: ignore[arg-type]
                if offer is None or as_utc(offer.expires_at) > now:  # type: ignore[operator]
                    continue
                # a pending offer whose interaction moved on (the customer left) is stale
                (expired if _still_ringing(offer, interaction) else stale).append(
                    (offer, interaction)
                )
            missed_by = sorted({offer.agent_id for offer, _ in expired})
            done = {offer.id for offer, _ in expired}
            # the agents' other ringing offers are withdrawn too (they are not there)
            others = [
                pair
                for pair in await lock_agent_offers(db, missed_by, skip_locked=True)
                if pair[0].id not in done
            ]
            agents = [await lock_agent(db, agent_id) for agent_id in missed_by]  # before writes
            cancel_offers(db, stale, after, now=now, reason="stale")
            for offer, interaction in expired:
                end_offer(
                    db,
                    offer,
                    interaction,
                    OfferOutcome.TIMEOUT,
                    after,
                    now=now,
                    reason="ring-no-answer",
                )
            cancel_offers(db, others, after, now=now, reason="agent missed an offer")
            for agent in agents:
                if agent is not None and agent.presence in ROUTABLE_PRESENCE:
                    apply_presence(
                        db, agent, PresenceState.NOT_READY, after, reason=MISSED_REASON, now=now
                    )
            await db.commit()
        await after.publish(self._services.bus)
        if expired:
            self.wake()
        return len(expired)

    # -- overflow and wrap-up timeouts -------------------------------------------------------

    async def overflow(self) -> int:
        """Move items waiting longer than their queue's ``overflow_after_seconds`` to the
        overflow queue, or relax their skills (levels drop to 1). Once per interaction."""
        now = utcnow()
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            queues = {
                q.id: q
                for q in (
                    await db.exec(
                        select(Queue).where(col(Queue.overflow_after_seconds).is_not(None))
                    )
                ).all()
                if q.overflow_queue_id is not None or q.overflow_relax_skills
            }
            if not queues:
                return 0
            rows = await db.exec(
                select(Interaction.id, Interaction.queue_id, Interaction.queued_at).where(
                    Interaction.state == S.QUEUED,
                    Interaction.overflowed == False,  # noqa: E712
                    col(Interaction.queue_id).in_(list(queues)),
                )
            )
            due = [
                interaction_id
                for interaction_id, queue_id, queued_at in rows.all()
                if epoch(queued_at, default=now.timestamp())
                + queues[queue_id].overflow_after_seconds  # type: ignore[operator]
                <= now.timestamp()
            ]
            if not due:
                return 0
            await write_lock(db)
            locked = (
                await db.exec(
                    select(Interaction)
                    .where(
                        col(Interaction.id).in_(due),
                        Interaction.state == S.QUEUED,
                        Interaction.overflowed == False,  # noqa: E712
                    )
                    .with_for_update(skip_locked=True)
                    .execution_options(populate_existing=True)
                )
            ).all()
            for interaction in locked:
                queue = queues.get(interaction.queue_id)  # type: ignore[arg-type]
                if queue is None:
                    continue
                interaction.overflowed = True
                after.add(SUPERVISOR_TOPIC, "queue", queue_id=interaction.queue_id)
                if queue.overflow_queue_id is not None:
                    interaction.queue_id = queue.overflow_queue_id
                    reason = f"overflow to queue {queue.overflow_queue_id}"
                else:
                    reason = "overflow: skills relaxed"
                change_state(db, interaction, S.QUEUED, at=now, reason=reason)
                after.add(SUPERVISOR_TOPIC, "queue", queue_id=interaction.queue_id)
                after.add(ROUTING_TOPIC, "interaction", interaction_id=interaction.id)
            await db.commit()
        await after.publish(self._services.bus)
        if locked:
            self.wake()
        return len(locked)

    async def end_expired_wrapups(self) -> int:
        """Close wrap-ups older than their queue's ``wrapup_seconds`` (no disposition)."""
        now = utcnow()
        async with self._services.sessionmaker() as db:
            limits = {q.id: q.wrapup_seconds for q in (await db.exec(select(Queue))).all()}
            rows = await db.exec(
                select(Interaction.id, Interaction.queue_id, Interaction.wrapup_at).where(
                    Interaction.state == S.WRAP_UP
                )
            )
            due = [
                interaction_id
                for interaction_id, queue_id, wrapup_at in rows.all()
                if epoch(wrapup_at) + limits.get(queue_id, DEFAULT_WRAPUP_SECONDS)
                <= now.timestamp()
            ]
        closed = 0
        for interaction_id in due:
            after = AfterCommit()
            async with self._services.sessionmaker() as db:
                await write_lock(db)
                interaction = await lock_interaction(db, interaction_id)
                if interaction is None or interaction.state != S.WRAP_UP:
                    continue
                await self._finish(
                    db,
                    interaction,
                    after,
                    disposition_id=interaction.disposition_id,
                    notes=interaction.wrapup_notes,
                    next_presence=None,
                    reason=None,
                    why="wrap-up timeout",
                    now=now,
                )
                await db.commit()
            await after.publish(self._services.bus)
            closed += 1
        return closed

    # -- the conversation lifecycle -----------------------------------------------------------

    async def _held(
        self, db: AsyncSession, interaction_id: int, agent_id: int, *states: InteractionState
    ) -> Interaction:
        await write_lock(db)
        interaction = await lock_interaction(db, interaction_id)
        if interaction is None:
            raise LookupError(f"interaction {interaction_id} does not exist")
        if interaction.agent_id != agent_id or interaction.state not in (
            S.ACTIVE,
            S.WRAP_UP,
        ):
            raise NotYourInteraction(f"agent {agent_id} does not hold interaction {interaction_id}")
        if interaction.state not in states:
            raise InvalidTransition(interaction.id, interaction.state, states[0])
        return interaction

    @staticmethod
    def _announce_work(after: AfterCommit, interaction: Interaction, agent_id: int | None) -> None:
        after.add(
            interaction_topic(interaction.id),  # type: ignore[arg-type]
            "state",
            state=str(interaction.state),
            agent_id=interaction.agent_id,
        )
        # The dispatcher reads this interaction (and the agent's load) again.
        after.add(ROUTING_TOPIC, "interaction", interaction_id=interaction.id)
        if agent_id is not None:
            after.add(agent_topic(agent_id), "conversation", interaction_id=interaction.id)
            after.add(SUPERVISOR_TOPIC, "agent", agent_id=agent_id)
            after.add(ROUTING_TOPIC, "agent", agent_id=agent_id)
        after.add(SUPERVISOR_TOPIC, "queue", queue_id=interaction.queue_id)

    @staticmethod
    def _note(db: AsyncSession, interaction: Interaction, agent_id: int, note: str | None) -> None:
        """A transfer note travels as a private note on the interaction."""
        if note:
            db.add(
                Message(
                    interaction_id=interaction.id,  # type: ignore[arg-type]
                    inbox_id=interaction.inbox_id,
                    direction="out",
                    sender_kind=SenderKind.AGENT,
                    agent_id=agent_id,
                    body=note,
                    private=True,
                    delivery_status="internal",
                )
            )

    async def transfer_to_queue(
        self, interaction_id: int, queue_id: int, *, by_agent_id: int, note: str | None = None
    ) -> None:
        """Hand an active interaction (a chat or a call) to a queue, with its data and a
        note. It keeps its place by priority: its original ``queued_at`` stays, so it goes
        before everyone of the same priority who came after it, not to the back."""
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            interaction = await self._held(db, interaction_id, by_agent_id, S.ACTIVE)
            queue = await db.get(Queue, queue_id)
            if queue is None or not queue.active:
                raise LookupError(f"queue {queue_id} does not exist or is disabled")
            agent = await lock_agent(db, by_agent_id)
            now = utcnow()
            waited_since = interaction.queued_at
            interaction.queue_id = queue_id
            interaction.overflowed = False
            change_state(
                db,
                interaction,
                S.QUEUED,
                at=now,
                agent_id=by_agent_id,
                reason=f"transfer to queue {queue.name}",
            )
            interaction.queued_at = waited_since or now
            interaction.agent_id = None
            await end_joined(db, interaction, after, why="transferred", now=now)
            self._note(db, interaction, by_agent_id, note)
            await settle(db, agent, after, now=now)  # type: ignore[arg-type]
            self._announce_work(after, interaction, by_agent_id)
            await db.commit()
        await after.publish(self._services.bus)
        self.wake()

    async def transfer_to_agent(
        self, interaction_id: int, agent_id: int, *, by_agent_id: int, note: str | None = None
    ) -> None:
        """A targeted offer to one agent. If they reject or miss it, the interaction waits
        in its queue for normal routing."""
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            interaction = await self._held(db, interaction_id, by_agent_id, S.ACTIVE)
            if agent_id == by_agent_id:
                raise AgentUnavailable("cannot transfer to yourself")
            agents = {}
            for locked_id in sorted((agent_id, by_agent_id)):
                agents[locked_id] = await lock_agent(db, locked_id)
            target = agents[agent_id]
            target_name = await agent_name(db, agent_id)
            if target is None or target.presence not in ROUTABLE_PRESENCE:
                raise AgentUnavailable(f"{target_name} is not taking work now")
            await self._require_free_slot(db, target, target_name, interaction.channel)
            now = utcnow()
            change_state(
                db,
                interaction,
                S.QUEUED,
                at=now,
                agent_id=by_agent_id,
                reason=f"transfer to agent {agent_id}",
            )
            await end_joined(db, interaction, after, why="transferred", now=now)
            self._note(db, interaction, by_agent_id, note)
            queue = await db.get(Queue, interaction.queue_id) if interaction.queue_id else None
            offer = self._offer(db, interaction, target, queue, now, transfer_from=by_agent_id)
            await db.flush()
            await settle(db, agents[by_agent_id], after, now=now)  # type: ignore[arg-type]
            self._announce_offer(after, offer)
            after.add(agent_topic(by_agent_id), "conversation", interaction_id=interaction_id)
            after.add(ROUTING_TOPIC, "agent", agent_id=by_agent_id)
            after.add(ROUTING_TOPIC, "offered", interaction_id=interaction_id, agent_id=agent_id)
            await db.commit()
        await after.publish(self._services.bus)

    async def reassign(
        self,
        interaction_id: int,
        *,
        by_user_id: int,
        queue_id: int | None = None,
        agent_id: int | None = None,
    ) -> Interaction:
        """A supervisor moves an open text interaction (waiting, ringing, active or a left
        message) to a queue, or offers it to one agent; audited.

        It keeps its place by arrival (``queued_at``), so a rescued conversation is not sent
        to the back. Whoever held it is freed. An offer to an agent who rejects or misses it
        leaves it waiting in its queue for normal routing. Calls are never moved: a call in
        progress stays on the agent's device until hang-up.
        """
        if (queue_id is None) == (agent_id is None):
            raise ValueError("pick a queue or an agent")
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, interaction_id)
            if interaction is None:
                raise LookupError(f"interaction {interaction_id} does not exist")
            if interaction.channel == VOICE:
                raise NotReassignable(
                    f"conversation #{interaction_id} is a call: it stays with its agent "
                    "until hang-up"
                )
            if interaction.state not in REASSIGNABLE:
                state = str(interaction.state).replace("_", " ")
                raise NotReassignable(
                    f"conversation #{interaction_id} is {state}: it cannot be moved now"
                )
            before = _placement(interaction)
            queue = await db.get(Queue, queue_id) if queue_id is not None else None
            if queue_id is not None and (queue is None or not queue.active):
                raise LookupError(f"queue {queue_id} does not exist or is disabled")
            holder = interaction.agent_id if interaction.state == S.ACTIVE else None
            # Lock order: interactions first, then agents (by id).
            agents = {
                locked: await lock_agent(db, locked)
                for locked in sorted({a for a in (holder, agent_id) if a is not None})
            }
            target = agents.get(agent_id) if agent_id is not None else None
            target_name = queue.name if queue else await agent_name(db, agent_id)  # type: ignore[arg-type]
            if target is None and agent_id is not None:
                raise AgentUnavailable(f"{target_name} does not exist")
            if target is not None and target.presence not in ROUTABLE_PRESENCE:
                raise AgentUnavailable(f"{target_name} is not taking work now")
            if target is not None:
                await self._require_free_slot(db, target, target_name, interaction.channel)
            now = utcnow()
            why = f"reassigned by a supervisor to {target_name}"
            if interaction.state == S.OFFERED:
                await cancel_pending(db, interaction, after, now=now, reason=why)
                await db.flush()  # the pending offer is closed before another one is written
            await requeue_keeping_place(
                db,
                interaction,
                after,
                now=now,
                reason=why,
                by_user_id=by_user_id,
                queue_id=queue_id,
            )
            if holder is not None:
                await settle(db, agents[holder], after, now=now)  # type: ignore[arg-type]
            if target is not None:
                home = await db.get(Queue, interaction.queue_id) if interaction.queue_id else None
                offer = self._offer(db, interaction, target, home, now, reassigned_by=by_user_id)
                await db.flush()
                self._announce_offer(after, offer)
                after.add(
                    ROUTING_TOPIC, "offered", interaction_id=interaction_id, agent_id=agent_id
                )
            audit.record(
                db,
                user_id=by_user_id,
                action="reassign",
                entity="interaction",
                entity_id=interaction_id,
                before=before,
                after=_placement(interaction),
            )
            await db.commit()
        await after.publish(self._services.bus)
        self.wake()
        return interaction

    @staticmethod
    async def _require_free_slot(db: AsyncSession, agent: Agent, name: str, channel: str) -> None:
        """A targeted offer respects capacity like the dispatcher's (``free_slots``)."""
        loads = await db.run_sync(agent_loads, [agent.id])
        if free_slots(agent.capacity or {}, loads.get(agent.id, {}), channel) <= 0:  # type: ignore[arg-type]
            raise AgentUnavailable(f"{name} has no free {channel} slot now")

    async def wrap_up(self, interaction_id: int, *, agent_id: int) -> None:
        """The conversation ended: WRAP_UP until closed or the queue's wrap-up timeout."""
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            interaction = await self._held(db, interaction_id, agent_id, S.ACTIVE)
            agent = await lock_agent(db, agent_id)
            now = utcnow()
            change_state(db, interaction, S.WRAP_UP, at=now, agent_id=agent_id, reason="ended")
            await end_joined(db, interaction, after, why="ended", now=now)
            await settle(db, agent, after, now=now)  # type: ignore[arg-type]
            self._announce_work(after, interaction, agent_id)
            await db.commit()
        await after.publish(self._services.bus)

    async def close(
        self,
        interaction_id: int,
        *,
        agent_id: int,
        disposition_id: int | None,
        notes: str,
        next_presence: PresenceState = PresenceState.READY,
        reason: str | None = None,
    ) -> None:
        """CLOSED with a disposition and wrap-up notes; the agent moves to ``next_presence``
        (BUSY instead of READY while other conversations are still active)."""
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            interaction = await self._held(db, interaction_id, agent_id, S.ACTIVE, S.WRAP_UP)
            next_presence = PresenceState(next_presence)
            await check_reason(db, next_presence, reason)
            if disposition_id is not None and await db.get(Disposition, disposition_id) is None:
                raise LookupError(f"disposition {disposition_id} does not exist")
            await self._finish(
                db,
                interaction,
                after,
                disposition_id=disposition_id,
                notes=notes,
                next_presence=next_presence,
                reason=reason,
                why="closed by agent",
                now=utcnow(),
            )
            await db.commit()
        await after.publish(self._services.bus)
        if next_presence is PresenceState.OFFLINE:  # going offline hands the rest back
            await self._services.presence.set_presence(agent_id, PresenceState.OFFLINE, reason)

    async def _finish(
        self,
        db: AsyncSession,
        interaction: Interaction,
        after: AfterCommit,
        *,
        disposition_id: int | None,
        notes: str,
        next_presence: PresenceState | None,
        reason: str | None,
        why: str,
        now: datetime,
    ) -> None:
        agent_id = interaction.agent_id
        # Lock the agent before writing rows that reference it (see lock_agent_offers).
        agent = await lock_agent(db, agent_id) if agent_id is not None else None
        interaction.disposition_id = disposition_id
        interaction.wrapup_notes = notes
        change_state(db, interaction, S.CLOSED, at=now, agent_id=agent_id, reason=why)
        await end_joined(db, interaction, after, why=why, now=now)
        if agent is not None:
            await settle(db, agent, after, next_presence=next_presence, reason=reason, now=now)
        self._announce_work(after, interaction, agent_id)

    async def pick_up(self, interaction_id: int, agent_id: int) -> Interaction:
        """The agent takes a voicemail/left message, or a queued item, directly."""
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, interaction_id)
            if interaction is None:
                raise LookupError(f"interaction {interaction_id} does not exist")
            agent = await lock_agent(db, agent_id)  # before writing rows that reference it
            if agent is None:
                raise LookupError(f"agent {agent_id} does not exist")
            now = utcnow()
            if interaction.state == S.OFFERED:
                offer = await pending_offer(db, interaction_id)
                if offer is None or offer.agent_id != agent_id:
                    raise OfferGone(f"interaction {interaction_id} is offered to someone else")
                offer.outcome, offer.decided_at = OfferOutcome.ACCEPTED, now
                db.add(offer)
            elif interaction.state == S.QUEUED:
                queue = await db.get(Queue, interaction.queue_id) if interaction.queue_id else None
                offer = self._offer(db, interaction, agent, queue, now, picked_up=True)
                offer.outcome, offer.decided_at = OfferOutcome.ACCEPTED, now
            elif interaction.state != S.VOICEMAIL:
                raise OfferGone(f"interaction {interaction_id} is {interaction.state}")
            change_state(db, interaction, S.ACTIVE, at=now, agent_id=agent_id, reason="picked up")
            interaction.agent_id = agent_id
            await settle(db, agent, after, now=now)
            self._announce_work(after, interaction, agent_id)
            await db.commit()
        await after.publish(self._services.bus)
        return interaction

    # -- queueing after self-service (the call service; later bots) ---------------------------

    async def enqueue(
        self,
        interaction_id: int,
        queue_id: int | None,
        *,
        priority: int = 0,
        skills: dict[str, int] | None = None,
        data: dict[str, Any] | None = None,
        reason: str = "queued",
        also: Callable[[AsyncSession, Interaction], Awaitable[None]] | None = None,
    ) -> bool:
        """NEW/SELF_SERVICE → QUEUED in ``queue_id`` (the IVR's choice), with extra
        priority, skills and attached data. False when the customer already left.

        ``also`` writes more in the same transaction, first, whether or not the interaction
        is queued (the call service stores the IVR's trace with the enqueue)."""
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, interaction_id)
            if interaction is None:
                raise LookupError(f"interaction {interaction_id} does not exist")
            if also is not None:
                await also(db, interaction)
            if interaction.state not in (S.NEW, S.SELF_SERVICE):
                await db.commit()
                return False
            if queue_id is not None:
                interaction.queue_id = queue_id
            interaction.priority += priority
            if skills:
                interaction.required_skills = {**interaction.required_skills, **skills}
            if data:
                interaction.data = {**interaction.data, **data}
            change_state(db, interaction, S.QUEUED, reason=reason)
            self._announce_work(after, interaction, None)
            after.add(SUPERVISOR_TOPIC, "queue", queue_id=interaction.queue_id)
            await db.commit()
        await after.publish(self._services.bus)
        self.wake()
        return True

    async def abandon(self, interaction_id: int, reason: str = "customer left") -> None:
        """The customer left before an agent answered: ABANDONED; a ringing offer is
        withdrawn. Nothing happens once an agent has it (ACTIVE or later)."""
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, interaction_id)
            if interaction is None:
                raise LookupError(f"interaction {interaction_id} does not exist")
            if interaction.state not in (S.NEW, S.SELF_SERVICE, S.QUEUED, S.OFFERED):
                return
            now = utcnow()
            if interaction.state == S.OFFERED:
                await cancel_pending(db, interaction, after, now=now, reason=reason)
            change_state(db, interaction, S.ABANDONED, at=now, reason=reason)
            self._announce_work(after, interaction, None)
            await db.commit()
        await after.publish(self._services.bus)

    async def leave_message(self, interaction_id: int) -> None:
        """The customer chose "leave a message": kept as VOICEMAIL, visible to agents."""
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, interaction_id)
            if interaction is None:
                raise LookupError(f"interaction {interaction_id} does not exist")
            if interaction.state == S.VOICEMAIL:
                return
            now = utcnow()
            if interaction.state == S.OFFERED:
                await cancel_pending(db, interaction, after, now=now, reason="left a message")
            change_state(db, interaction, S.VOICEMAIL, at=now, reason="left a message")
            self._announce_work(after, interaction, None)
            await db.commit()
        await after.publish(self._services.bus)

    # -- estimates --------------------------------------------------------------------------

    async def queue_position(self, interaction_id: int) -> QueuePosition:
        """Where the customer stands, and how long it may take (``hub.routing.estimates``)."""
        now = utcnow()
        async with self._services.sessionmaker() as db:
            interaction = await db.get(Interaction, interaction_id)
            if interaction is None:
                raise LookupError(f"interaction {interaction_id} does not exist")
            config = await db.run_sync(load_queues, now)
            queue = config.views.get(interaction.queue_id)  # type: ignore[arg-type]
            if queue is None:
                return QueuePosition(None, None, open=True, agents_logged_in=0)
            staff = await self._staff(db, config, interaction)
            position: int | None = None
            if interaction.state == S.OFFERED:
                position = 1
            elif interaction.state == S.QUEUED:
                rows = await db.exec(
                    select(Interaction.id, Interaction.priority, Interaction.queued_at).where(
                        Interaction.queue_id == interaction.queue_id,
                        Interaction.state == S.QUEUED,
                        Interaction.channel == interaction.channel,
                    )
                )
                items = [
                    WaitingView(i, queue.id, interaction.channel, p, epoch(q, now.timestamp()))
                    for i, p, q in rows.all()
                ]
                order = [item.id for item in ordered(items, config.views)]
                position = order.index(interaction_id) + 1 if interaction_id in order else None
            ewt: int | None = None
            why: str | None = None
            if interaction.state == S.OFFERED:
                ewt = 0  # ringing at an agent now
            elif position is not None:
                handle = await self._recent_handle_seconds(db, queue.id, now)
                ewt = estimated_wait(position, handle, staff.slots, staff.free)
                if ewt is None:
                    why = NO_AGENTS if staff.slots <= 0 else NO_HISTORY
            return QueuePosition(
                position,
                ewt,
                open=queue.open,
                agents_logged_in=staff.logged_in,
                agents_serving=staff.serving,
                unknown_because=why,
            )

    @staticmethod
    async def _staff(db: AsyncSession, config: QueueConfig, interaction: Interaction) -> _Staff:
        """Who can serve this item: logged-in agents qualified for it, those of them taking
        work (READY, BUSY, WRAP_UP) with their slots on its channel, and the slots free now
        (READY or BUSY agents below capacity)."""
        queue = config.views[interaction.queue_id]  # type: ignore[index]
        agents = (await db.exec(select(Agent).where(Agent.presence != PresenceState.OFFLINE))).all()
        skills = await db.run_sync(agent_skills, config.skill_names)
        loads = await db.run_sync(agent_loads, [a.id for a in agents])
        item = WaitingView(
            interaction.id,  # type: ignore[arg-type]
            queue.id,
            interaction.channel,
            interaction.priority,
            0.0,
            dict(interaction.required_skills or {}),
        )
        needs = requirements(item, queue)
        staff = _Staff()
        for agent in agents:
            view = AgentView(agent.id, skills.get(agent.id, {}), dict(agent.capacity or {}))  # type: ignore[arg-type]
            if not qualifies(view, interaction.channel, needs):
                continue
            staff.logged_in += 1
            if agent.presence not in SERVING_PRESENCE:
                continue
            capacity = view.capacity.get(interaction.channel, 0)
            staff.serving += 1
            staff.slots += capacity
            if agent.presence in ROUTABLE_PRESENCE:
                held = loads.get(agent.id, {}).get(interaction.channel, 0)  # type: ignore[arg-type]
                staff.free += max(0, capacity - held)
        return staff

    @staticmethod
    async def _recent_handle_seconds(
        db: AsyncSession, queue_id: int, now: datetime
    ) -> float | None:
        since = now - timedelta(seconds=HANDLE_WINDOW_SECONDS)
        rows = await db.exec(
            select(Interaction.answered_at, Interaction.closed_at)
            .where(
                Interaction.queue_id == queue_id,
                Interaction.state == S.CLOSED,
                col(Interaction.closed_at) >= since,
                col(Interaction.answered_at).is_not(None),
            )
            .order_by(col(Interaction.closed_at).desc())
            .limit(500)
        )
        return average_handle_seconds(
            epoch(closed) - epoch(answered) for answered, closed in rows.all()
        )


@dataclass
class _Staff:
    logged_in: int = 0
    serving: int = 0
    slots: int = 0
    free: int = 0
