"""One SSE stream per browser tab: bus events in, named events carrying HTML partials out.

Events on the bus carry ids only. Each stream renders them with a fresh DB session (the
request's session is closed once streaming starts) and its own user's permissions. A
comment goes out every ``settings.sse_heartbeat_seconds`` so proxies keep the line open
and a dead client is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from typing import Any, Protocol

from jinja2 import Environment
from litestar import Request, get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from hub.events import Event, EventBus
from hub.services import Services

Message = ServerSentEventMessage


class TopicMux:
    """Several bus subscriptions merged into one queue; topics can be added while streaming.

    Why: the bus subscribes to a fixed topic list, but an agent's tab must start following
    an interaction the moment it is accepted.
    """

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._stack = AsyncExitStack()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.topics: set[str] = set()

    async def add(self, topics: Iterable[str]) -> None:
        new = [t for t in topics if t not in self.topics]
        if not new:
            return
        self.topics.update(new)
        events = await self._stack.enter_async_context(self._bus.subscribe(new))
        self._tasks.append(asyncio.create_task(self._pump(events)))

    async def _pump(self, events: AsyncIterator[Event]) -> None:
        async for event in events:
            self._queue.put_nowait(event)

    async def next_batch(self, wait: float) -> list[Event]:
        """Wait up to ``wait`` seconds for an event, then take everything already queued."""
        try:
            first = await asyncio.wait_for(self._queue.get(), wait)
        except TimeoutError:
            return []
        batch = [first]
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._stack.aclose()


class StreamView(Protocol):
    """What a page contributes to its tab's stream."""

    def topics(self) -> list[str]: ...

    async def sync(self, mux: TopicMux) -> list[Message]: ...

    async def render(self, batch: list[Event], mux: TopicMux) -> list[Message]: ...


def template_env(request: Request) -> Environment:
    return request.app.template_engine.engine  # type: ignore[attr-defined]


def render(env: Environment, name: str, **context: Any) -> str:
    return env.get_template(name).render(**context)


async def run_stream(
    services: Services,
    view: StreamView,
    *,
    heartbeat: float,
    on_idle: Callable[[], Awaitable[list[Message]]] | None = None,
) -> AsyncGenerator[Message, None]:
    """The generator behind every tab's stream (tests drive it directly)."""
    mux = TopicMux(services.bus)
    try:
        await mux.add(view.topics())
        yield Message(comment="connected", retry=3000)
        for message in await view.sync(mux):
            yield message
        while True:
            batch = await mux.next_batch(heartbeat)
            if not batch:
                extra = await on_idle() if on_idle else []
                for message in extra:
                    yield message
                yield Message(comment="heartbeat")
                continue
            for message in await view.render(batch, mux):
                yield message
                if message.event in ("force-logout", "end"):
                    return
    finally:
        await mux.aclose()


@get("/events")
async def events(request: Request, view: str = "console") -> ServerSentEvent:
    """The tab's stream: ``view=console`` (agents) or ``view=supervisor``."""
    from models import Role
    from web.common import agent_guard, role_guard, services_of, user_of
    from web.console import ConsoleStream
    from web.supervisor import SupervisorStream

    services = services_of(request)
    user = user_of(request)
    env = template_env(request)
    heartbeat = services.settings.sse_heartbeat_seconds
    if view == "supervisor":
        await role_guard(Role.SUPERVISOR)(request, events)
        stream_view: StreamView = SupervisorStream(services, env, user)
        return ServerSentEvent(
            run_stream(services, stream_view, heartbeat=heartbeat),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    await agent_guard(request, events)
    console = ConsoleStream(services, env, user)
    return ServerSentEvent(
        run_stream(services, console, heartbeat=heartbeat),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


route_handlers: list = [events]
