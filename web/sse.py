"""One SSE stream per browser tab: bus events in, named events carrying HTML partials out.

Events on the bus carry ids only. Each stream renders them with a fresh DB session (the
request's session is closed once streaming starts) and its own user's permissions. A
comment goes out every ``settings.sse_heartbeat_seconds`` so proxies keep the line open
and a dead client is noticed.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Iterable
from typing import Any, Protocol

from jinja2 import Environment
from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage

from hub.events import Event, EventBus
from hub.services import Services

Message = ServerSentEventMessage


MAX_BACKLOG = 1000  # per tab; a tab that cannot keep up loses its oldest events


class Fanout:
    """One bus subscription per topic per process, shared by every tab that follows it.

    Why: with one bus subscription per tab, each event costs every tab a queue hop, a task
    wake-up and a JSON decode before the tab even starts rendering; 500 tabs of one agent
    (or 500 wallboards) then spend most of the fan-out there.
    """

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._queues: dict[str, set[asyncio.Queue[Event]]] = {}
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._ready: dict[str, asyncio.Event] = {}

    async def attach(self, topic: str, queue: asyncio.Queue[Event]) -> None:
        """Start delivering ``topic`` to ``queue``; returns once the subscription is live."""
        self._queues.setdefault(topic, set()).add(queue)
        if topic not in self._pumps:
            ready = self._ready[topic] = asyncio.Event()
            self._pumps[topic] = asyncio.create_task(self._pump(topic, ready))
        pump, ready = self._pumps[topic], self._ready[topic]
        if not ready.is_set():
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait({pump, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.is_set():
                waiter.cancel()
                pump.result()  # the subscription failed: raise its error

    def detach(self, topic: str, queue: asyncio.Queue[Event]) -> None:
        queues = self._queues.get(topic)
        if queues is None:
            return
        queues.discard(queue)
        if not queues:
            del self._queues[topic]
            self._ready.pop(topic, None)
            pump = self._pumps.pop(topic, None)
            if pump is not None:
                pump.cancel()

    async def _pump(self, topic: str, ready: asyncio.Event) -> None:
        async with self._bus.subscribe([topic]) as events:
            ready.set()
            async for event in events:
                for queue in tuple(self._queues.get(topic, ())):
                    if queue.full():
                        queue.get_nowait()
                    queue.put_nowait(event)


_fanouts: weakref.WeakKeyDictionary[EventBus, Fanout] = weakref.WeakKeyDictionary()


def fanout_for(bus: EventBus) -> Fanout:
    fanout = _fanouts.get(bus)
    if fanout is None:
        fanout = _fanouts[bus] = Fanout(bus)
    return fanout


class TopicMux:
    """One tab's events from several topics; topics can be added while streaming.

    Why: an agent's tab must start following an interaction the moment it is accepted.
    """

    def __init__(self, bus: EventBus) -> None:
        self._fanout = fanout_for(bus)
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=MAX_BACKLOG)
        self.topics: set[str] = set()

    async def add(self, topics: Iterable[str]) -> None:
        for topic in topics:
            if topic not in self.topics:
                self.topics.add(topic)
                await self._fanout.attach(topic, self._queue)

    async def next_batch(self, wait: float) -> list[Event]:
        """Wait up to ``wait`` seconds for an event, then take everything already queued."""
        if self._queue.empty():
            try:
                async with asyncio.timeout(wait):  # no extra task per wait, unlike wait_for
                    first = await self._queue.get()
            except TimeoutError:
                return []
        else:
            first = self._queue.get_nowait()
        batch = [first]
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def aclose(self) -> None:
        for topic in self.topics:
            self._fanout.detach(topic, self._queue)
        self.topics.clear()


class SingleFlight:
    """Tabs that react to the same event share one DB load and render.

    Why: every tab of an agent (or every supervisor wallboard) renders the same partial for
    the same event; without this, N tabs mean N identical DB sessions at once. The key
    holds the triggering event's content, so a later event never reuses an older load, and
    nothing is cached once the load finishes.
    """

    def __init__(self) -> None:
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._memo: dict[Hashable, str] = {}

    async def run(self, key: Hashable, load: Callable[[], Awaitable[Any]]) -> Any:
        shared = self._inflight.get(key)
        if shared is not None:
            try:
                return await asyncio.shield(shared)
            except Exception:  # the leader failed: load on our own
                return await load()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await load()
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
            else:
                future.cancel()
            future.exception() if not future.cancelled() else None  # mark retrieved
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._inflight[key]

    def memo(self, key: Hashable, make: Callable[[], str]) -> str:
        """A pure render (depends on the event only) is done once for every tab."""
        if key not in self._memo:
            if len(self._memo) > 256:
                self._memo.clear()
            self._memo[key] = make()
        return self._memo[key]


shared_renders = SingleFlight()


def event_key(batch: list[Event], *names: str) -> str:
    """The content of the newest event named ``names`` in a batch (the SingleFlight key)."""
    for event in reversed(batch):
        if event.name in names:
            return json.dumps([event.topic, event.name, event.data], sort_keys=True, default=str)
    return "sync"


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
    keepalive: Callable[[], Awaitable[Message | None]] | None = None,
    keepalive_every: float = float("inf"),
) -> AsyncGenerator[Message, None]:
    """The generator behind every tab's stream (tests drive it directly).

    ``keepalive`` runs at connect and then every ``keepalive_every`` seconds, whatever the
    traffic: it says "this tab is still here" (presence), or returns a last message that
    ends the stream (the session is gone).
    """
    mux = TopicMux(services.bus)
    wait = min(heartbeat, keepalive_every)
    try:
        if keepalive is not None and (last := await keepalive()) is not None:
            yield last
            return
        kept_at = time.monotonic()
        await mux.add(view.topics())
        yield Message(comment="connected", retry=3000)
        for message in await view.sync(mux):
            yield message
        while True:
            batch = await mux.next_batch(wait)
            if keepalive is not None and time.monotonic() - kept_at >= keepalive_every:
                kept_at = time.monotonic()
                if (last := await keepalive()) is not None:
                    yield last
                    return
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
async def events(
    request: Request,
    view: FromQuery[str] = "console",
    watch: FromQuery[int | None] = None,
    watch_calls: FromQuery[str] = "",
) -> ServerSentEvent:
    """The tab's stream: ``view=console`` (agents; ``watch`` = a conversation shown without
    being held, e.g. a supervisor looking in) or ``view=supervisor``."""
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
        wallboard = SupervisorStream(services, env, user, watch_calls.strip())
        return ServerSentEvent(
            run_stream(services, wallboard, heartbeat=heartbeat, on_idle=wallboard.tick),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    await agent_guard(request, events)
    console = ConsoleStream(services, env, user, watch=watch)
    return ServerSentEvent(
        run_stream(
            services,
            console,
            heartbeat=heartbeat,
            keepalive=console_keepalive(request, services, user.id, user.agent_id),  # type: ignore[arg-type]
            keepalive_every=services.presence.keepalive_seconds,
        ),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


SESSION_COOKIE = "session"  # ServerSideSessionConfig's default key


def console_keepalive(
    request: Request, services: Services, user_id: int, agent_id: int
) -> Callable[[], Awaitable[Message | None]]:
    """While the tab's session lives, the tab keeps its agent present. An expired or
    revoked session ends the stream, and with it the agent's presence (after the grace
    period, unless another tab still holds it)."""
    from web.common import session_is_revoked

    store = request.app.stores.get("sessions")
    session_id = request.cookies.get(SESSION_COOKIE, "")

    async def keepalive() -> Message | None:
        # ``get`` rather than ``exists``: the file store keeps an expired entry on disk
        # until it is read, and only a read checks the expiry.
        if not session_id or await store.get(session_id) is None:
            return Message(event="session-expired", data="<p>Your session has expired.</p>")
        if await session_is_revoked(request, user_id):
            return Message(event="force-logout", data="<p>Logged out by a supervisor.</p>")
        await services.presence.console_alive(agent_id)
        return None

    return keepalive


route_handlers: list = [events]
