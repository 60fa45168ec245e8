"""Leases on SQLite and PostgreSQL: two holders with their own engines (as two hub
processes would have) never hold one key at once; a holder that stops renewing loses it
to the other once it lapses; a clean stop hands it over at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hub.db import make_engine, make_sessionmaker
from hub.leases import LeasedTask, acquire
from tests.hub.conftest import database_url  # noqa: F401

TTL = 1.5  # long enough for a loaded machine between two steps


@pytest.fixture
async def two_sessionmakers(database_url: str) -> AsyncIterator[list]:  # noqa: F811
    engines = [make_engine(database_url), make_engine(database_url)]
    try:
        yield [make_sessionmaker(engine) for engine in engines]
    finally:
        for engine in engines:
            await engine.dispose()


class Adapter:
    """Counts starts and stops, like an SMPP bind would be opened and closed."""

    def __init__(self) -> None:
        self.starts = 0
        self.stops = 0

    async def start(self) -> None:
        self.starts += 1

    async def stop(self) -> None:
        self.stops += 1


def leased(sessionmaker, node: str, adapter: Adapter) -> LeasedTask:
    return LeasedTask(
        sessionmaker,
        "smpp:1",
        node,
        ttl=TTL,
        renew_seconds=60,  # driven by hand through step()
        start=adapter.start,
        stop=adapter.stop,
    )


async def test_one_holder_then_takeover_when_it_stops_renewing(two_sessionmakers: list) -> None:
    a_adapter, b_adapter = Adapter(), Adapter()
    a = leased(two_sessionmakers[0], "node-a", a_adapter)
    b = leased(two_sessionmakers[1], "node-b", b_adapter)
    for i, sessionmaker in enumerate(two_sessionmakers):  # both engines connected first
        await acquire(sessionmaker, f"warm-up:{i}", "node", 1)
    assert await a.step() is True
    assert await b.step() is False
    assert await a.step() is True  # renewed
    assert (a_adapter.starts, b_adapter.starts) == (1, 0)

    await asyncio.sleep(TTL + 0.3)  # node-a "died": no renewal for longer than the lease
    assert await b.step() is True
    assert b_adapter.starts == 1
    assert await a.step() is False  # node-a comes back: it finds the lease gone and stops
    assert (a.running, a_adapter.stops, b.running) == (False, 1, True)

    await b.close()  # a clean stop releases at once
    assert b_adapter.stops == 1
    assert await a.step() is True
    assert a_adapter.starts == 2
    await a.close()


async def test_concurrent_takers_never_both_win(two_sessionmakers: list) -> None:
    for round_ in range(5):
        key = f"imap:{round_}"
        wins = await asyncio.gather(
            *(acquire(two_sessionmakers[i % 2], key, f"node-{i}", 30) for i in range(6))
        )
        assert sum(wins) == 1, wins
