"""Queued callbacks: the hub calls back a caller who kept their place in the queue.

A ``CallbackRequest`` (made by ``hub.nobody_answers`` while the caller waited, or by the
dialog) leaves its interaction QUEUED with the same ``queued_at`` and priority, so routing
offers it like the call it replaced. Once an agent accepts it (ACTIVE), ``CallbackRunner``
claims the request and calls the agent's phone, then the customer through the trunk
(``OutboundDialer.call_back``, the click-to-dial path). Each try is a ``CallbackAttempt``
with its outcome. A customer who is busy or does not answer is tried again: the
interaction closes for now and a ``callback.retry`` job reopens it in the queue after the
queue's ``callback_retry_seconds``, until ``callback_max_tries``; then the request fails.

Accepted requests are looked for every ``HUB_CALLBACK_POLL_SECONDS`` and whenever routing
announces a change; claiming is one conditional UPDATE, so two hub processes never call
the same customer twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col, select

from hub.events import SUPERVISOR_TOPIC
from hub.interactions import change_state
from hub.jobs import enqueue
from hub.presence import settle
from hub.routing.work import AfterCommit, lock_agent, lock_interaction, write_lock
from models import (
    CallbackAttempt,
    CallbackRequest,
    CallbackState,
    Inbox,
    Interaction,
    InteractionState,
    Queue,
    utcnow,
)

if TYPE_CHECKING:
    from hub.jobs import ClaimedJob, JobRunner
    from hub.outbound_calls import OutboundDialer
    from hub.services import Services

S = InteractionState
log = logging.getLogger(__name__)
RETRY_JOB = "callback.retry"  # payload: {"request_id": int}
RETRYABLE = ("no answer", "busy", "declined")
AGENT_SIDE = ("your phone", "the agent", "no SIP trunk")  # not the customer's doing


class CallbackRunner:
    def __init__(self, services: Services, dialer: OutboundDialer) -> None:
        self.services = services
        self.dialer = dialer
        self._task: asyncio.Task[None] | None = None

    def register(self, runner: JobRunner) -> None:
        runner.register(RETRY_JOB, self.run_retry)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="callbacks")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        poll = self.services.settings.callback_poll_seconds
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("looking for accepted callbacks failed")
            await asyncio.sleep(poll)

    async def run_due(self) -> int:
        """Start calling every request whose interaction an agent has accepted."""
        async with self.services.sessionmaker() as db:
            rows = (
                await db.exec(
                    select(CallbackRequest.id)
                    .join(Interaction, col(Interaction.id) == CallbackRequest.interaction_id)
                    .where(
                        CallbackRequest.state == CallbackState.WAITING,
                        Interaction.state == S.ACTIVE,
                        col(Interaction.agent_id).is_not(None),
                    )
                )
            ).all()
        started = 0
        for request_id in rows:
            if await self._claim_and_call(request_id):
                started += 1
        return started

    async def _claim_and_call(self, request_id: int) -> bool:
        async with self.services.sessionmaker() as db:
            await write_lock(db)
            claimed = await db.execute(
                sa.update(CallbackRequest)
                .where(
                    col(CallbackRequest.id) == request_id,
                    col(CallbackRequest.state) == CallbackState.WAITING,
                )
                .values(state=CallbackState.DIALING, tries=CallbackRequest.tries + 1)
            )
            if claimed.rowcount != 1:
                await db.rollback()
                return False
            request = await db.get(CallbackRequest, request_id)
            assert request is not None
            await db.refresh(request)
            interaction = await db.get(Interaction, request.interaction_id)
            assert interaction is not None
            inbox = await db.get(Inbox, interaction.inbox_id)
            attempt = CallbackAttempt(
                request_id=request_id,
                interaction_id=request.interaction_id,
                agent_id=interaction.agent_id,
                attempt=request.tries,
            )
            db.add(attempt)
            await db.commit()
            attempt_id, agent_id = attempt.id, interaction.agent_id
            number, interaction_id = request.number, request.interaction_id
        assert attempt_id is not None and agent_id is not None and inbox is not None
        log.info("callback %s: try %s to %s", request_id, attempt.attempt, number)

        async def failed(outcome: str) -> None:
            await self._failed(request_id, attempt_id, agent_id, outcome)

        async def connected() -> None:
            await self._connected(request_id, attempt_id)

        await self.dialer.call_back(
            interaction_id, agent_id, number, inbox, on_failed=failed, on_connected=connected
        )
        return True

    async def _connected(self, request_id: int, attempt_id: int) -> None:
        async with self.services.sessionmaker() as db:
            now = utcnow()
            attempt = await db.get(CallbackAttempt, attempt_id)
            request = await db.get(CallbackRequest, request_id)
            if attempt is not None:
                attempt.outcome, attempt.ended_at = "connected", now
                db.add(attempt)
            if request is not None:
                request.state, request.finished_at = CallbackState.CONNECTED, now
                db.add(request)
            await db.commit()

    async def _failed(self, request_id: int, attempt_id: int, agent_id: int, outcome: str) -> None:
        """The try failed: the agent is freed, and the request waits for its next try
        (a ``callback.retry`` job) or fails for good."""
        after = AfterCommit()
        async with self.services.sessionmaker() as db:
            await write_lock(db)
            now = utcnow()
            request = await db.get(CallbackRequest, request_id)
            attempt = await db.get(CallbackAttempt, attempt_id)
            assert request is not None and attempt is not None
            interaction = await lock_interaction(db, request.interaction_id)
            queue = await db.get(Queue, request.queue_id) if request.queue_id else None
            attempt.outcome, attempt.ended_at = outcome[:64], now
            db.add(attempt)
            again = request.tries < request.max_tries and outcome.startswith(RETRYABLE)
            if outcome.startswith(AGENT_SIDE) and interaction is not None:
                # the agent's phone or set-up failed, not the customer: back in the queue
                # at once, at its place, and the try does not count against the customer
                request.state = CallbackState.WAITING
                request.tries -= 1
                db.add(request)
                if interaction.state == S.ACTIVE:
                    first_queued = interaction.queued_at
                    change_state(db, interaction, S.QUEUED, agent_id=agent_id, reason=outcome)
                    interaction.queued_at = first_queued or interaction.queued_at
                    interaction.agent_id = None
                    agent = await lock_agent(db, agent_id)
                    if agent is not None:
                        await settle(db, agent, after)
                from hub.routing.service import RoutingService

                RoutingService._announce_work(after, interaction, agent_id)
                db.add(interaction)
                await db.commit()
                await after.publish(self.services.bus)
                self.services.routing.wake()
                return
            if again:
                request.state = CallbackState.WAITING
                delay = float(queue.callback_retry_seconds if queue else 300)
                enqueue(db, RETRY_JOB, {"request_id": request_id}, now + timedelta(seconds=delay))
            else:
                request.state, request.finished_at = CallbackState.FAILED, now
            db.add(request)
            if interaction is not None:
                interaction.data = {
                    **interaction.data,
                    "call_outcome": outcome,
                    "callback_tries": request.tries,
                }
                if interaction.state == S.ACTIVE:
                    reason = f"callback try {request.tries}: {outcome}"
                    change_state(db, interaction, S.CLOSED, agent_id=agent_id, reason=reason[:200])
                    agent = await lock_agent(db, agent_id)
                    if agent is not None:
                        await settle(db, agent, after)
                from hub.routing.service import RoutingService

                RoutingService._announce_work(after, interaction, agent_id)
                db.add(interaction)
            await db.commit()
        await after.publish(self.services.bus)

    async def run_retry(self, job: ClaimedJob) -> None:
        """The next try: the interaction is back in its queue, at its old place."""
        request_id = int(job.payload["request_id"])
        after = AfterCommit()
        async with self.services.sessionmaker() as db:
            await write_lock(db)
            request = await db.get(CallbackRequest, request_id)
            if request is None or request.state != CallbackState.WAITING:
                return
            interaction = await lock_interaction(db, request.interaction_id)
            if interaction is None or interaction.state != S.CLOSED:
                return  # already back (a retry that ran twice)
            first_queued = interaction.queued_at
            change_state(db, interaction, S.QUEUED, reason=f"callback try {request.tries + 1}")
            if first_queued is not None:
                interaction.queued_at = first_queued  # the place it had
            interaction.closed_at = None
            interaction.agent_id = None
            from hub.routing.service import RoutingService

            RoutingService._announce_work(after, interaction, None)
            after.add(SUPERVISOR_TOPIC, "queue", queue_id=interaction.queue_id)
            await db.commit()
        await after.publish(self.services.bus)
        self.services.routing.wake()
