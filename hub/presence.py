"""Agent presence: offline, ready, not-ready (admin reason codes), busy and wrap-up.

Every change is stored as a PresenceChange, because occupancy and not-ready reports are
computed from that history. Routing moves agents between READY, BUSY and WRAP_UP as work
starts and ends (``settle``); agents and supervisors set the rest (``PresenceService``).

Presence tells the truth: the console is what makes an agent present, on every channel.
Each open console tab refreshes a mark (``Marks``) while its stream lives and its session
is valid. When no tab has refreshed it for ``presence_grace_seconds`` (all tabs closed, the
session expired, or the process holding them died), the sweeper sets the agent OFFLINE and
hands their work back: ringing offers go to the next agent at once, active text
conversations return to their queue, keeping their place. A call in progress stays with
the agent until hang-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from litestar.stores.base import Store
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.events import ROUTING_TOPIC, SUPERVISOR_TOPIC, agent_topic, interaction_topic
from hub.interactions import change_state
from hub.routing.offers import end_offer
from hub.routing.snapshot import as_utc
from hub.routing.work import (
    AfterCommit,
    agent_work_states,
    lock_agent,
    write_lock,
)
from hub.tasks import cancel_and_wait
from hub.text_collab import end_joined, leave_all
from models import (
    Agent,
    Inbox,
    Interaction,
    InteractionState,
    NotReadyReason,
    Offer,
    OfferOutcome,
    PresenceChange,
    PresenceState,
    utcnow,
)

if TYPE_CHECKING:
    from hub.services import Services

P = PresenceState
S = InteractionState
MISSED_REASON = "missed"
ABSENT_REASON = "console closed"
VOICE = "voice"
log = logging.getLogger(__name__)


class Marks:
    """Who is still there: agents' console tabs and customers' chat pages.

    A live stream refreshes its mark with the time (at least three times per grace period).
    A mark older than the grace period, or none, means nobody refreshed it in any hub process
    for that long. The store is Redis when the hub scales out, so every process sees every
    tab; in memory otherwise (without Redis the hub is one process).
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    @classmethod
    def for_redis(cls, redis_url: str, namespace: str = "contacthub-presence") -> Marks:
        if redis_url:
            from litestar.stores.redis import RedisStore

            return cls(RedisStore.with_client(url=redis_url, namespace=namespace))
        from litestar.stores.memory import MemoryStore

        return cls(MemoryStore())

    async def touch(self, kind: str, key: int, grace: float) -> None:
        await self._store.set(
            f"{kind}:{key}", repr(time.time()), expires_in=max(1, int(grace * 2) + 1)
        )

    async def present(self, kind: str, key: int, grace: float) -> bool:
        """Refreshed within the last ``grace`` seconds."""
        raw = await self._store.get(f"{kind}:{key}")
        if raw is None:
            return False
        try:
            seen = float(raw.decode() if isinstance(raw, bytes) else raw)
        except ValueError:
            return False
        return seen > time.time() - grace

    async def close(self) -> None:
        """Close the store's connection (Redis); a memory store has nothing to close."""
        closer = getattr(self._store, "__aexit__", None)
        if closer is not None:
            with contextlib.suppress(Exception):  # shutting down: a dead server is no matter
                await closer(None, None, None)


CONSOLE = "console"  # Marks kind: an agent's console tab (key: agent id)
CHAT = "chat"  # Marks kind: a customer's chat page (key: interaction id)


class UnknownAgent(LookupError):
    pass


class UnknownReason(ValueError):
    """A not-ready reason code that admins have not defined (or have disabled)."""


def apply_presence(
    db: AsyncSession,
    agent: Agent,
    state: PresenceState,
    after: AfterCommit,
    *,
    reason: str | None = None,
    by_user_id: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Set presence in the caller's transaction and store the change; False if unchanged."""
    if agent.presence == state and agent.presence_reason == reason:
        return False
    now = now or utcnow()
    if state is P.READY and agent.presence != P.READY:
        agent.idle_since = now  # free from now on: longest-idle routing reads this
    agent.presence = state
    agent.presence_reason = reason
    agent.presence_since = now
    db.add(agent)
    db.add(
        PresenceChange(
            agent_id=agent.id,  # type: ignore[arg-type]
            state=state,
            reason=reason,
            at=now,
            by_user_id=by_user_id,
        )
    )
    after.add(agent_topic(agent.id), "presence", state=state.value, reason=reason)  # type: ignore[arg-type]
    after.add(SUPERVISOR_TOPIC, "agent", agent_id=agent.id)
    after.add(ROUTING_TOPIC, "agent", agent_id=agent.id)  # may take work now, or no longer
    return True


async def settle(
    db: AsyncSession,
    agent: Agent,
    after: AfterCommit,
    *,
    next_presence: PresenceState | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> None:
    """Presence after the agent's work changed: BUSY while something is ACTIVE, WRAP_UP
    while only wrap-ups remain, then ``next_presence`` (READY by default).

    An agent who is NOT_READY or OFFLINE stays so unless ``next_presence`` says otherwise;
    asking for NOT_READY/OFFLINE applies at once (remaining work is finished, nothing new).
    """
    if next_presence in (P.NOT_READY, P.OFFLINE):
        apply_presence(db, agent, next_presence, after, reason=reason, now=now)
        return
    if next_presence is None and agent.presence in (P.NOT_READY, P.OFFLINE):
        return
    states = set(await agent_work_states(db, agent.id))  # type: ignore[arg-type]
    if InteractionState.ACTIVE in states:
        target = P.BUSY
    elif InteractionState.WRAP_UP in states and next_presence is None:
        target = P.WRAP_UP
    else:
        target = next_presence or P.READY
    apply_presence(
        db, agent, target, after, reason=None if target is not P.NOT_READY else reason, now=now
    )


async def lock_agent_offers(
    db: AsyncSession, agent_ids: list[int], *, skip_locked: bool = False
) -> list[tuple[Offer, Interaction]]:
    """The agents' pending offers with their interactions locked (in interaction order).

    Lock only: changes come after the agents themselves are locked, because inserting a row
    that references an agent takes a share lock on it, and two transactions upgrading a
    share lock on one agent deadlock each other.
    """
    if not agent_ids:
        return []
    offers = (
        await db.exec(
            select(Offer)
            .where(col(Offer.agent_id).in_(agent_ids), Offer.outcome == OfferOutcome.PENDING)
            .order_by(Offer.interaction_id)  # one lock order for everyone
        )
    ).all()
    locked = []
    for offer in offers:
        statement = (
            select(Interaction)
            .where(Interaction.id == offer.interaction_id)
            .with_for_update(skip_locked=skip_locked)
            .execution_options(populate_existing=True)
        )
        interaction = (await db.exec(statement)).first()
        if interaction is None:
            continue
        await db.refresh(offer)  # current now that its interaction is locked
        if offer.outcome == OfferOutcome.PENDING:
            locked.append((offer, interaction))
    return locked


def cancel_offers(
    db: AsyncSession,
    offers: list[tuple[Offer, Interaction]],
    after: AfterCommit,
    *,
    now: datetime,
    reason: str,
) -> None:
    for offer, interaction in offers:
        end_offer(db, offer, interaction, OfferOutcome.CANCELLED, after, now=now, reason=reason)


async def lock_agent_work(
    db: AsyncSession, agent_id: int
) -> tuple[list[tuple[Offer, Interaction]], list[Interaction]]:
    """The agent's ringing offers and active text conversations, their interactions locked
    in one id order (the order every lock taker uses). Calls are left alone: a call in
    progress stays on the agent's device until hang-up."""
    offers = {
        offer.interaction_id: offer
        for offer in (
            await db.exec(
                select(Offer).where(
                    Offer.agent_id == agent_id, Offer.outcome == OfferOutcome.PENDING
                )
            )
        ).all()
    }
    active_ids = (
        await db.exec(
            select(Interaction.id).where(
                Interaction.agent_id == agent_id,
                Interaction.state == S.ACTIVE,
                Interaction.channel != VOICE,
            )
        )
    ).all()
    ringing: list[tuple[Offer, Interaction]] = []
    active: list[Interaction] = []
    for interaction_id in sorted(set(offers) | {i for i in active_ids if i is not None}):
        interaction = (
            await db.exec(
                select(Interaction)
                .where(Interaction.id == interaction_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).first()
        if interaction is None:
            continue
        offer = offers.get(interaction_id)
        if offer is not None:
            await db.refresh(offer)
            if offer.outcome == OfferOutcome.PENDING:
                ringing.append((offer, interaction))
        elif (
            interaction.agent_id == agent_id
            and interaction.state == S.ACTIVE
            and interaction.channel != VOICE
        ):
            active.append(interaction)
    return ringing, active


async def requeue_keeping_place(
    db: AsyncSession,
    interaction: Interaction,
    after: AfterCommit,
    *,
    now: datetime,
    reason: str,
    by_agent_id: int | None = None,
    by_user_id: int | None = None,
    queue_id: int | None = None,
) -> None:
    """Back to a queue (its own, or ``queue_id``) at the head: it keeps its original
    ``queued_at``, so it goes before everyone who came after it, rather than to the back as
    a new arrival would. The customer has been waiting since then; nobody is serving them."""
    waited_since = interaction.queued_at
    agent_id = interaction.agent_id
    if queue_id is not None:
        interaction.queue_id = queue_id
        interaction.overflowed = False
    if interaction.queue_id is None:
        inbox = await db.get(Inbox, interaction.inbox_id)
        interaction.queue_id = inbox.default_queue_id if inbox else None
    change_state(
        db, interaction, S.QUEUED, at=now, agent_id=by_agent_id, user_id=by_user_id, reason=reason
    )
    interaction.queued_at = waited_since or now
    interaction.agent_id = None
    await end_joined(db, interaction, after, why=reason, now=now)
    after.add(interaction_topic(interaction.id), "state", state="queued", agent_id=None)  # type: ignore[arg-type]
    after.add(ROUTING_TOPIC, "interaction", interaction_id=interaction.id)
    after.add(SUPERVISOR_TOPIC, "queue", queue_id=interaction.queue_id)
    if agent_id is not None:
        after.add(agent_topic(agent_id), "conversation", interaction_id=interaction.id)
        after.add(SUPERVISOR_TOPIC, "agent", agent_id=agent_id)
        after.add(ROUTING_TOPIC, "agent", agent_id=agent_id)


async def check_reason(db: AsyncSession, state: PresenceState, reason: str | None) -> None:
    """A not-ready reason must be one of the admin-defined, active codes."""
    if state is not P.NOT_READY or reason is None:
        return
    known = (
        await db.exec(
            select(NotReadyReason).where(
                NotReadyReason.code == reason,
                NotReadyReason.active == True,  # noqa: E712
            )
        )
    ).first()
    if known is None:
        raise UnknownReason(f"not-ready reason {reason!r} is not defined")


class PresenceService:
    def __init__(self, services: Services) -> None:
        self._services = services
        self.marks = Marks.for_redis(services.settings.redis_url)
        self._task: asyncio.Task[None] | None = None

    @property
    def grace(self) -> float:
        return self._services.settings.presence_grace_seconds

    @property
    def keepalive_seconds(self) -> float:
        """How often a live console tab refreshes its mark: three times per grace period."""
        return max(0.2, self.grace / 3)

    async def console_alive(self, agent_id: int) -> None:
        """A console tab of this agent is open (called by its stream on a timer)."""
        await self.marks.touch(CONSOLE, agent_id, self.grace)

    # -- the sweeper --------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._sweep_loop(), name="presence-sweep")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        await self.marks.close()

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_seconds)
            try:
                await self.sweep_absent()
            except asyncio.CancelledError:
                raise
            except Exception:  # a lost connection must not stop the sweeper
                log.exception("presence sweep failed; retrying on the next tick")

    async def sweep_absent(self) -> list[int]:
        """Set OFFLINE every agent (not offline yet) whose console has been gone for the
        grace period, handing their work back. Returns their ids.

        An agent whose presence changed within the grace period is left alone: the tab
        that changed it may not have opened its stream yet.
        """
        grace = self.grace
        cutoff = utcnow() - timedelta(seconds=grace)
        async with self._services.sessionmaker() as db:
            rows = (
                await db.exec(
                    select(Agent.id, Agent.presence_since).where(Agent.presence != P.OFFLINE)
                )
            ).all()
        gone = []
        for agent_id, since in rows:
            since_utc = as_utc(since)
            if since_utc is not None and since_utc > cutoff:
                continue
            if await self.marks.present(CONSOLE, agent_id, grace):  # type: ignore[arg-type]
                continue
            if await self._go_absent(agent_id, cutoff):  # type: ignore[arg-type]
                gone.append(agent_id)
        return gone  # type: ignore[return-value]

    async def _go_absent(self, agent_id: int, cutoff: datetime) -> bool:
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            await write_lock(db)
            ringing, active = await lock_agent_work(db, agent_id)
            agent = await lock_agent(db, agent_id)
            since = as_utc(agent.presence_since) if agent is not None else None
            if (
                agent is None
                or agent.presence == P.OFFLINE
                or (since is not None and since > cutoff)
            ):
                return False  # changed meanwhile (the agent came back)
            now = utcnow()
            await self._hand_back(db, ringing, active, after, now=now, why="agent went offline")
            await leave_all(db, agent_id, after, why="agent went offline", now=now)
            apply_presence(db, agent, P.OFFLINE, after, reason=ABSENT_REASON, now=now)
            await db.commit()
        await after.publish(self._services.bus)
        self._services.routing.wake()
        return True

    @staticmethod
    async def _hand_back(
        db: AsyncSession,
        ringing: list[tuple[Offer, Interaction]],
        active: list[Interaction],
        after: AfterCommit,
        *,
        now: datetime,
        why: str,
    ) -> None:
        cancel_offers(db, ringing, after, now=now, reason=why)
        for interaction in active:
            await requeue_keeping_place(
                db,
                interaction,
                after,
                now=now,
                reason=f"handed back: {why}",
                by_agent_id=interaction.agent_id,
            )

    async def set_presence(
        self,
        agent_id: int,
        state: PresenceState,
        reason: str | None = None,
        *,
        by_user_id: int | None = None,
    ) -> Agent:
        """Set an agent's presence; a supervisor forcing it (``by_user_id`` is not the agent)
        is audited. READY while still working becomes BUSY. Leaving routable states
        withdraws pending offers, which go to the next agent. Going OFFLINE also hands the
        active text conversations back to their queues (at the head); a call in progress
        stays with the agent until hang-up."""
        state = PresenceState(state)
        after = AfterCommit()
        async with self._services.sessionmaker() as db:
            await write_lock(db)
            await check_reason(db, state, reason)
            now = utcnow()
            # Lock order everywhere: interactions first, then agents (no deadlocks).
            ringing: list[tuple[Offer, Interaction]] = []
            active: list[Interaction] = []
            if state is P.OFFLINE:
                ringing, active = await lock_agent_work(db, agent_id)
            elif state is P.NOT_READY:
                ringing = await lock_agent_offers(db, [agent_id])
            agent = await lock_agent(db, agent_id)
            if agent is None:
                raise UnknownAgent(f"agent {agent_id} does not exist")
            await self._hand_back(db, ringing, active, after, now=now, why=f"agent {state}")
            if state is P.OFFLINE:
                await leave_all(db, agent_id, after, why="agent went offline", now=now)
            before = audit.snapshot(agent)
            if state is P.READY:
                states = set(await agent_work_states(db, agent_id))
                if InteractionState.ACTIVE in states:
                    state = P.BUSY
            stored_reason = reason if state in (P.NOT_READY, P.OFFLINE) else None  # "logout"
            changed = apply_presence(
                db, agent, state, after, reason=stored_reason, by_user_id=by_user_id, now=now
            )
            if changed and by_user_id is not None and by_user_id != agent.user_id:
                audit.record(
                    db,
                    user_id=by_user_id,
                    action="force-presence",
                    entity="agent",
                    entity_id=agent_id,
                    before=before,
                    after=audit.snapshot(agent),
                )
            await db.commit()
        await after.publish(self._services.bus)
        if active or ringing:
            self._services.routing.wake()
        return agent
