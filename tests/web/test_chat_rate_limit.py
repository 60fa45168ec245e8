"""The chat rate limit: a sliding minute per visitor, shared by every hub on one Redis."""

from __future__ import annotations

import logging

import pytest
from redis.asyncio import Redis

from channels.webchat.rate_limit import LocalRateLimiter, RedisRateLimiter


async def test_the_window_slides_a_minute_behind_each_message():
    now = [1000.0]
    limiter = LocalRateLimiter(clock=lambda: now[0])
    for _ in range(3):
        assert await limiter.allow("v:a", 3) is None
        now[0] += 10
    assert await limiter.allow("v:a", 3) == pytest.approx(30.0)  # the first frees at 1060
    assert await limiter.allow("v:b", 3) is None  # keys count apart
    now[0] = 1060.0
    assert await limiter.allow("v:a", 3) is None
    assert await limiter.allow("v:a", 3) == pytest.approx(10.0)  # the second frees at 1070


@pytest.mark.redis
async def test_hubs_sharing_redis_share_one_limit(redis_url: tuple[str, str]):
    """Two hub processes (two clients): a visitor whose messages the load balancer spreads
    over both still gets the limit once, not once per process."""
    url, prefix = redis_url
    first = RedisRateLimiter(Redis.from_url(url), prefix=prefix)
    second = RedisRateLimiter(Redis.from_url(url), prefix=prefix)
    inspect = Redis.from_url(url)
    try:
        allowed = [
            await limiter.allow("v:jane", 5) for limiter in (first, second, first, second, first)
        ]
        assert allowed == [None] * 5
        for limiter in (first, second):
            wait = await limiter.allow("v:jane", 5)
            assert wait is not None and 0 < wait <= 60
        assert await second.allow("v:john", 5) is None
        ttl = await inspect.ttl(f"{prefix}v:jane")
        assert 0 < ttl <= 60  # idle visitors' windows expire on their own
    finally:
        await first.close()
        await second.close()
        await inspect.aclose()


async def test_an_unreachable_redis_lets_the_customer_write(caplog: pytest.LogCaptureFixture):
    limiter = RedisRateLimiter(Redis(host="127.0.0.1", port=1, socket_connect_timeout=1))
    try:
        with caplog.at_level(logging.WARNING, logger="channels.webchat.rate_limit"):
            assert await limiter.allow("v:jane", 1) is None
        assert "rate limit not checked" in caplog.text
    finally:
        await limiter.close()
