"""The event bus: small JSON events over Litestar Channels (memory or Redis).

Services publish *after commit*, never from ORM hooks, so a subscriber that reacts by
reading the database sees the change. Events carry ids, not HTML: each SSE stream renders
its own partials with its own user's permissions.

Topics:
- ``agent.<id>``: offers, conversation updates, presence, supervisor messages, force-logout;
- ``interaction.<id>``: messages and state for anyone viewing that interaction (customer too);
- ``supervisor``: queue and agent changes for the live wallboards;
- ``routing``: wake-ups for the dispatchers of every hub process.

Background work is not an event: it is a job row (``hub.jobs``), written with the change.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from litestar.channels import ChannelsPlugin
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    name: str
    data: dict[str, Any] = field(default_factory=dict)


def agent_topic(agent_id: int) -> str:
    return f"agent.{agent_id}"


def interaction_topic(interaction_id: int) -> str:
    return f"interaction.{interaction_id}"


SUPERVISOR_TOPIC = "supervisor"
ROUTING_TOPIC = "routing"


def make_backend(redis_url: str, key_prefix: str = "contacthub") -> ChannelsBackend:
    if not redis_url:
        return MemoryChannelsBackend(history=0)
    from litestar.channels.backends.redis import RedisChannelsPubSubBackend
    from redis.asyncio import Redis

    return RedisChannelsPubSubBackend(redis=Redis.from_url(redis_url), key_prefix=key_prefix)


def make_channels_plugin(backend: ChannelsBackend) -> ChannelsPlugin:
    return ChannelsPlugin(
        backend=backend,
        arbitrary_channels_allowed=True,
        subscriber_max_backlog=1000,
        subscriber_backlog_strategy="dropleft",
    )


class EventBus:
    def __init__(self, channels: ChannelsPlugin) -> None:
        self._channels = channels

    async def publish(self, topic: str, name: str, **data: Any) -> None:
        payload = json.dumps({"topic": topic, "event": name, "data": data}, default=str)
        self._channels.publish(payload, channels=[topic])

    @asynccontextmanager
    async def subscribe(self, topics: Iterable[str]) -> AsyncIterator[AsyncIterator[Event]]:
        """Yield an iterator of events on ``topics`` until the context exits."""
        topic_list = list(topics)
        async with self._channels.start_subscription(topic_list) as subscriber:

            async def events() -> AsyncIterator[Event]:
                async for raw in subscriber.iter_events():
                    decoded = json.loads(raw)
                    yield Event(
                        topic=decoded.get("topic", ""),
                        name=decoded["event"],
                        data=decoded.get("data", {}),
                    )

            yield events()
