"""How fast a chat visitor may write: a sliding one-minute window per key.

One hub process counts in memory. Hubs scaled out behind a load balancer (``HUB_REDIS_URL``)
count together in Redis, or a visitor spread over N processes would get N times the limit.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60.0


class RateLimiter(Protocol):
    async def allow(self, key: str, per_minute: int) -> float | None:
        """None if allowed (and counted), else seconds until the next slot frees."""
        ...

    async def close(self) -> None: ...


class LocalRateLimiter:
    """The window in this process's memory, bounded by forgetting idle keys."""

    def __init__(self, max_keys: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._max_keys = max_keys
        self._clock = clock

    async def allow(self, key: str, per_minute: int) -> float | None:
        now = self._clock()
        hits = self._hits[key]
        while hits and now - hits[0] >= WINDOW_SECONDS:
            hits.popleft()
        if len(hits) >= per_minute:
            return WINDOW_SECONDS - (now - hits[0])
        hits.append(now)
        if len(self._hits) > self._max_keys:
            idle = [k for k, v in self._hits.items() if not v or now - v[-1] >= WINDOW_SECONDS]
            for stale in idle:
                del self._hits[stale]
        return None

    async def close(self) -> None:
        self._hits.clear()


# One round trip, atomic: trim the window, count, then add or say how long to wait. The
# clock is Redis's own (TIME), so hubs whose clocks differ still share one window.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(window - (now - tonumber(oldest[2])))
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(window))
return false
"""


class RedisRateLimiter:
    """The window as a sorted set per key, shared by every hub on one Redis.

    When Redis cannot be reached the message is allowed (and the failure logged): a
    customer must not lose the chat because a limiter is down.
    """

    def __init__(self, redis: Redis, prefix: str = "contacthub:chat-rate:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def allow(self, key: str, per_minute: int) -> float | None:
        member = secrets.token_hex(8)  # two hits in one microsecond are still two
        try:
            wait = await self._script(
                keys=[self._prefix + key], args=[WINDOW_SECONDS, per_minute, member]
            )
        except (RedisError, OSError) as exc:
            log.warning("chat rate limit not checked (Redis: %s); message allowed", exc)
            return None
        return None if wait is None else max(0.0, float(wait))

    async def close(self) -> None:
        await self._redis.aclose()


def make_rate_limiter(redis_url: str) -> RateLimiter:
    if not redis_url:
        return LocalRateLimiter()
    return RedisRateLimiter(Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2))
