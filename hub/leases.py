"""Leases in the database: with several hub processes, exactly one holds each connection
that the far end allows only once (an SMPP bind, an IMAP poller, Telegram's getUpdates).

A lease is a row (key, holder, expires_at). Taking it is one conditional UPDATE (it is
ours already, or it lapsed) or, for a new key, one INSERT; both are atomic on SQLite and
PostgreSQL, so two processes can never both succeed. The holder renews it every
``renew_seconds``; a holder that dies stops renewing, and once ``expires_at`` passes the
next process to ask takes it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Lease, utcnow

log = logging.getLogger(__name__)

Sessionmaker = async_sessionmaker[AsyncSession]


async def acquire(sessionmaker: Sessionmaker, key: str, holder: str, ttl: float) -> bool:
    """Take or renew ``key`` for ``holder`` for ``ttl`` seconds; False if another holds it."""
    now = utcnow()
    until = now + timedelta(seconds=ttl)
    async with sessionmaker() as db:
        result = await db.exec(  # type: ignore[call-overload]
            update(Lease)
            .where(
                col(Lease.key) == key,
                or_(col(Lease.holder) == holder, col(Lease.expires_at) < now),
            )
            .values(holder=holder, expires_at=until)
        )
        if result.rowcount == 1:
            await db.commit()
            return True
        await db.rollback()
    async with sessionmaker() as db:
        db.add(Lease(key=key, holder=holder, expires_at=until))
        try:
            await db.commit()
        except IntegrityError:  # the row exists and someone else holds it
            await db.rollback()
            return False
    return True


async def release(sessionmaker: Sessionmaker, key: str, holder: str) -> None:
    """Give the lease up at once (a clean stop), so another process need not wait it out."""
    async with sessionmaker() as db:
        await db.exec(  # type: ignore[call-overload]
            delete(Lease).where(col(Lease.key) == key, col(Lease.holder) == holder)
        )
        await db.commit()


class LeasedTask:
    """Run an adapter only while this node holds the lease ``key``.

    Every ``renew_seconds`` it takes or renews the lease: when it gains it, ``start`` runs;
    when it loses it (another process took it after our renewals failed), ``stop`` runs.
    ``close`` stops the adapter and releases the lease.
    """

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        key: str,
        holder: str,
        *,
        ttl: float,
        renew_seconds: float,
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
    ) -> None:
        self.sessionmaker = sessionmaker
        self.key = key
        self.holder = holder
        self.ttl = ttl
        self.renew_seconds = renew_seconds
        self._start = start
        self._stop = stop
        self.running = False
        self._held_until = 0.0  # monotonic time our lease surely lasts until
        self._task: asyncio.Task[None] | None = None

    def begin(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"lease-{self.key}")

    async def step(self) -> bool:
        """One round: take/renew the lease and start or stop the adapter to match."""
        try:
            asked = time.monotonic()
            held = await acquire(self.sessionmaker, self.key, self.holder, self.ttl)
            if held:
                self._held_until = asked + self.ttl
        except Exception:
            # a busy database (SQLite's lock) is not a lost lease: keep the adapter while
            # our last renewal is still good, give it up once it may have lapsed
            held = time.monotonic() < self._held_until
            log.warning("lease %s: the database did not answer (holding: %s)", self.key, held)
        if held and not self.running:
            log.info("lease %s taken by %s; starting", self.key, self.holder)
            await self._start()
            self.running = True
        elif not held and self.running:
            log.warning("lease %s lost by %s; stopping", self.key, self.holder)
            self.running = False
            await self._stop()
        return held

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:
                log.exception("lease %s: starting or stopping the adapter failed", self.key)
            await asyncio.sleep(self.renew_seconds)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.running:
            self.running = False
            await self._stop()
        with contextlib.suppress(Exception):
            await release(self.sessionmaker, self.key, self.holder)


class LeaseKeeper:
    """This process's leases (``services.extras["leases"]``): adapters ask it to run
    under a key, and get back the callable that stops them and gives the lease up."""

    def __init__(self, sessionmaker: Sessionmaker, node: str, ttl: float, renew: float) -> None:
        self.sessionmaker = sessionmaker
        self.node = node
        self.ttl = ttl
        self.renew = renew
        self.tasks: dict[str, LeasedTask] = {}

    async def hold(
        self,
        key: str,
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
    ) -> Callable[[], Awaitable[None]]:
        task = LeasedTask(
            self.sessionmaker,
            key,
            self.node,
            ttl=self.ttl,
            renew_seconds=self.renew,
            start=start,
            stop=stop,
        )
        old = self.tasks.pop(key, None)
        if old is not None:
            await old.close()
        self.tasks[key] = task
        try:
            await task.step()  # the first try at once: a lone hub starts its adapters now
        except Exception:
            log.exception("lease %s: starting the adapter failed", key)
        task.begin()

        async def close() -> None:
            if self.tasks.get(key) is task:
                del self.tasks[key]
            await task.close()

        return close
