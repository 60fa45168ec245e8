"""The supervisor view: queues, agents and open work live; actions on agents and work
(all audited).

Force not-ready goes through ``PresenceService`` (which audits a forced change with the old
value); force logout and messages are audited here. Force logout hands the agent's work
back (``PresenceService.set_presence``); the supervisor can then move any open text
interaction to a queue or an agent (``RoutingService.reassign``, audited there).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from jinja2 import Environment
from litestar import Request, Router, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Response, Template
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.auth import CurrentUser
from hub.events import SUPERVISOR_TOPIC, Event, agent_topic
from hub.services import Services
from hub.stats import (
    AgentStatus,
    ChannelStats,
    OpenWork,
    QueueStats,
    agent_stats,
    channel_stats,
    open_work,
    queue_stats,
)
from models import (
    Agent,
    Interaction,
    PresenceState,
    Role,
    User,
)
from web import views
from web.common import (
    UnprocessableError,
    form_int,
    page,
    presence_of,
    revoke_sessions,
    role_guard,
    routing_of,
    services_of,
    user_of,
)
from web.sse import Message as SSE
from web.sse import TopicMux, event_key, render, shared_renders

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
MAX_SUPERVISOR_MESSAGE = 1000


async def live_stats(
    db: AsyncSession, timezone: str = "UTC"
) -> tuple[list[QueueStats], list[AgentStatus], list[OpenWork]]:
    return (
        list(await queue_stats(db, timezone=timezone)),
        list(await agent_stats(db)),
        list(await open_work(db)),
    )


def by_state(agents: list[AgentStatus]) -> list[tuple[str, int]]:
    """How many agents are in each presence state (the wallboard's agents-by-state tile)."""
    order = [p.value for p in PresenceState]
    counts = {state: 0 for state in order}
    for agent in agents:
        counts[agent.presence] = counts.get(agent.presence, 0) + 1
    return list(counts.items())


def board_partials(
    env: Environment,
    queues: list[QueueStats],
    agents: list[AgentStatus],
    channels: list[ChannelStats],
) -> dict[str, str]:
    """The wallboard's tiles, channel table and alert banner (supervisor page and TV mode)."""
    return {
        "tiles": render(
            env,
            "supervisor/_tiles.html",
            queues=queues,
            states=by_state(agents),
            since_of=_since_of,
        ),
        "channels": render(env, "supervisor/_channels.html", channels=channels),
        "alerts": render(env, "supervisor/_alerts.html", queues=queues),
    }


def _since_of(seconds: Any) -> datetime | None:
    if seconds is None:
        return None
    return datetime.now(UTC) - timedelta(seconds=float(seconds))


class SupervisorStream:
    """The wallboard tab's stream: every queue or agent event re-renders both tables."""

    def __init__(
        self, services: Services, env: Environment, user: CurrentUser, watch: str = ""
    ) -> None:
        self.watch = watch[:64]  # monitoring by number (web/live_calls.py)
        self.services = services
        self.env = env
        self.user = user

    def topics(self) -> list[str]:
        return [SUPERVISOR_TOPIC]

    async def sync(self, _mux: TopicMux) -> list[SSE]:
        return [*await self._tables("sync"), await self._calls()]

    async def _tables(self, key: str) -> list[SSE]:
        async def load() -> tuple[str, str, str, dict[str, str]]:
            zone = self.services.settings.timezone
            async with self.services.sessionmaker() as db:
                queues, agents, work = await live_stats(db, zone)
                channels = await channel_stats(db, timezone=zone)
            return (
                render(self.env, "supervisor/_queues.html", queues=queues, since_of=_since_of),
                render(self.env, "supervisor/_agents.html", agents=agents),
                render(self.env, "supervisor/_work.html", work=work),
                board_partials(self.env, queues, agents, channels),
            )

        queues_html, agents_html, work_html, board = await shared_renders.run(
            ("wallboard", key), load
        )
        return [
            SSE(event="queues", data=queues_html),
            SSE(event="agents", data=agents_html),
            SSE(event="work", data=work_html),
            *(SSE(event=name, data=html) for name, html in board.items()),
        ]

    async def render(self, batch: list[Event], _mux: TopicMux) -> list[SSE]:
        out = await self._tables(event_key(batch, "queue", "agent"))
        return [*out, await self._calls()]

    async def _calls(self) -> SSE:
        """Live calls (web/live_calls.py), per supervisor: their monitored queues."""
        from web.live_calls import live_calls

        async with self.services.sessionmaker() as db:
            calls = await live_calls(db, self.user.id, self.watch)
        html = render(self.env, "supervisor/_calls.html", calls=calls, me=self.user.id)
        return SSE(event="calls", data=html)

    async def tick(self) -> list[SSE]:
        """A quiet spell: figures still move with time (a contact waiting past the target
        becomes a service-level miss without any event), so render again. Every tab in the
        same heartbeat period shares one render."""
        period = self.services.settings.sse_heartbeat_seconds
        return await self._tables(f"tick-{int(time.time() // period)}")


@get("/")
async def supervisor_page(request: Request, watch_calls: FromQuery[str] = "") -> Template:
    from web.live_calls import live_calls

    services = services_of(request)
    user = user_of(request)
    async with services.sessionmaker() as db:
        queues, agents, work = await live_stats(db, services.settings.timezone)
        channels = await channel_stats(db, timezone=services.settings.timezone)
        calls = await live_calls(db, user.id, watch_calls[:64].strip())
    # a supervisor with an agent row listens, whispers and barges on their chosen device
    device: dict = {}
    if user.agent_id is not None:
        from web.softphone import device_context

        device = {"softphone": True, **(await device_context(request))}
    return page(
        "supervisor/page.html",
        request,
        **device,
        queues=queues,
        agents=agents,
        work=work,
        channels=channels,
        states=by_state(agents),
        since_of=_since_of,
        calls=calls,
        me=user.id,
        watch=watch_calls[:64].strip(),
    )


@get("/tv")
async def tv_page(request: Request) -> Template:
    """Full-screen wallboard for a TV: tiles, channels and agents by state, live, no clicks."""
    services = services_of(request)
    async with services.sessionmaker() as db:
        queues, agents, _work = await live_stats(db, services.settings.timezone)
        channels = await channel_stats(db, timezone=services.settings.timezone)
    return page(
        "supervisor/tv.html",
        request,
        queues=queues,
        channels=channels,
        states=by_state(agents),
        since_of=_since_of,
    )


async def _agent_and_user(db: AsyncSession, agent_id: int) -> tuple[Agent, User]:
    agent = await db.get(Agent, agent_id)
    if agent is None:
        raise NotFoundException(f"Agent {agent_id} does not exist.")
    user = await db.get(User, agent.user_id)
    assert user is not None
    return agent, user


@get("/agents/{agent_id:int}/panel")
async def agent_panel(
    request: Request, agent_id: FromPath[int], action: FromQuery[str] = "message"
) -> Template:
    async with services_of(request).sessionmaker() as db:
        agent, user = await _agent_and_user(db, agent_id)
        reasons = await views.not_ready_reasons(db)
    return Template(
        template_name="supervisor/_panel.html",
        context={"agent": agent, "agent_user": user, "reasons": reasons, "action": action},
    )


def _done(text: str) -> Response:
    return Response(
        content=f'<p class="notice ok" role="status">{_escape(text)}</p>', media_type="text/html"
    )


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


@post("/agents/{agent_id:int}/not-ready", status_code=200)
async def force_not_ready(request: Request, agent_id: FromPath[int], data: FormData) -> Response:
    me = user_of(request)
    reason = str(data.get("reason", "")).strip()
    async with services_of(request).sessionmaker() as db:
        _agent, user = await _agent_and_user(db, agent_id)
        if reason not in {r.code for r in await views.not_ready_reasons(db)}:
            raise UnprocessableError("Pick a not-ready reason.")
    try:
        await presence_of(request).set_presence(
            agent_id, PresenceState.NOT_READY, reason, by_user_id=me.id
        )
    except ValueError as exc:
        raise UnprocessableError(str(exc)) from exc
    return _done(f"{user.display_name} is now not ready ({reason}).")


@post("/agents/{agent_id:int}/logout", status_code=200)
async def force_logout(request: Request, agent_id: FromPath[int]) -> Response:
    me = user_of(request)
    services = services_of(request)
    async with services.sessionmaker() as db:
        agent, user = await _agent_and_user(db, agent_id)
        audit.record(
            db,
            user_id=me.id,
            action="force-logout",
            entity="agent",
            entity_id=agent_id,
            before={"presence": agent.presence, "reason": agent.presence_reason},
            after={"presence": PresenceState.OFFLINE.value, "reason": "forced logout"},
        )
        await db.commit()
    await revoke_sessions(request, user.id)  # type: ignore[arg-type]
    await presence_of(request).set_presence(
        agent_id, PresenceState.OFFLINE, "forced logout", by_user_id=me.id
    )
    await services.bus.publish(agent_topic(agent_id), "force-logout", by=me.display_name)
    return _done(
        f"{user.display_name} was logged out. Their chats went back to their queues; "
        "a call in progress stays with them until it ends."
    )


@post("/agents/{agent_id:int}/message", status_code=200)
async def message_agent(request: Request, agent_id: FromPath[int], data: FormData) -> Response:
    me = user_of(request)
    text = str(data.get("text", "")).strip()
    if not text:
        raise UnprocessableError("The message is empty.")
    if len(text) > MAX_SUPERVISOR_MESSAGE:
        raise UnprocessableError(f"The message is too long (at most {MAX_SUPERVISOR_MESSAGE}).")
    services = services_of(request)
    async with services.sessionmaker() as db:
        _agent, user = await _agent_and_user(db, agent_id)
        audit.record(
            db,
            user_id=me.id,
            action="supervisor-message",
            entity="agent",
            entity_id=agent_id,
            before=None,
            after={"text": text},
        )
        await db.commit()
    await services.bus.publish(
        agent_topic(agent_id), "supervisor-message", text=text, **{"from": me.display_name}
    )
    return _done(f"Message sent to {user.display_name}.")


@get("/interactions/{interaction_id:int}/panel")
async def reassign_panel(request: Request, interaction_id: FromPath[int]) -> Template:
    """Where the interaction can go: any active queue, or an agent taking work now."""
    async with services_of(request).sessionmaker() as db:
        interaction = await db.get(Interaction, interaction_id)
        if interaction is None:
            raise NotFoundException(f"Interaction {interaction_id} does not exist.")
        targets = await views.transfer_targets(db, interaction)
    return Template(
        template_name="supervisor/_reassign.html",
        context={"interaction": interaction, **targets},
    )


@post("/interactions/{interaction_id:int}/reassign", status_code=200)
async def reassign(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    """Move an open text interaction to a queue (keeping its place) or offer it to an agent."""
    from hub.routing.service import AgentUnavailable, NotReassignable

    me = user_of(request)
    kind, _, raw_id = str(data.get("target", "")).partition(":")
    target_id = form_int(raw_id, "Target", lo=1)
    if kind not in ("queue", "agent"):
        raise UnprocessableError("Pick a queue or an agent.")
    try:
        await routing_of(request).reassign(
            interaction_id,
            by_user_id=me.id,
            queue_id=target_id if kind == "queue" else None,
            agent_id=target_id if kind == "agent" else None,
        )
    except (NotReassignable, AgentUnavailable, LookupError) as exc:
        raise UnprocessableError(f"Not possible: {exc}.") from exc
    async with services_of(request).sessionmaker() as db:
        interaction = await db.get(Interaction, interaction_id)
        queue_names = await views.queue_names(db)
        names = await views.agent_names(db)
    assert interaction is not None
    if kind == "agent":
        return _done(f"Conversation #{interaction_id} is offered to {names.get(target_id)}.")
    where = queue_names.get(interaction.queue_id or 0, "its queue")
    return _done(f"Conversation #{interaction_id} is waiting in {where}.")


supervisor_router = Router(
    path="/supervisor",
    guards=[role_guard(Role.SUPERVISOR)],
    route_handlers=[
        supervisor_page,
        tv_page,
        agent_panel,
        force_not_ready,
        force_logout,
        message_agent,
        reassign_panel,
        reassign,
    ],
)

route_handlers: list = [supervisor_router]
