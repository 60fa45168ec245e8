"""The customer chat at ``/chat``: no login, a signed visitor cookie, live over SSE.

Every customer message goes through ``services.ingest`` with a client-generated
``source_id`` (prefixed with the visitor id, so one visitor can never collide with another),
so a double submit is stored once. The visitor's stream follows its own interaction only.

A customer who leaves before an agent accepts has abandoned the chat, and it is recorded
so (``RoutingService.abandon``, with the time): at once with the "End chat" button, or
when every page of the chat has been gone for ``chat_abandon_grace_seconds`` (a reload
comes back well within it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment
from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie, UploadFile
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath
from litestar.response import ServerSentEvent, Template
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    DeliveryStatus,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    SendResult,
)
from channels.webchat.files import attachment_response, check_upload
from channels.webchat.rate_limit import RateLimiter, make_rate_limiter
from hub.contacts import follow_merges
from hub.events import Event, interaction_topic
from hub.ingest import UnknownInbox
from hub.presence import CHAT
from hub.services import Services
from models import (
    Agent,
    ContactIdentity,
    Inbox,
    Interaction,
    InteractionEvent,
    InteractionState,
    Message,
    SenderKind,
    User,
)
from web.common import SECURITY_HEADERS

log = logging.getLogger(__name__)
VISITOR_COOKIE = "hub_visitor"
# Before an agent accepts: the customer may still end the chat, and leaving abandons it.
WAITING_STATES = (
    InteractionState.NEW,
    InteractionState.SELF_SERVICE,
    InteractionState.QUEUED,
    InteractionState.OFFERED,
)
ENDED_BY_CUSTOMER = "customer ended the chat"
PAGE_GONE = "customer left the chat page"
MAX_BODY_CHARS = 5_000
_SOURCE_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


class TooManyRequests(HTTPException):
    status_code = 429


class BadChatRequest(HTTPException):
    status_code = 400


class ChatUnavailable(HTTPException):
    status_code = 503


# ---------------------------------------------------------------- sender


class WebchatSender:
    """Replies reach the customer through their SSE stream, so handing over is delivery."""

    async def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(DeliveryStatus.DELIVERED)


class LeaveWatch:
    """Abandons a waiting chat whose pages have all been gone for the grace period.

    Each chat stream refreshes the chat's presence mark while it lives (in any hub
    process). The last sign of life of a page (its stream closing, or the customer's
    message, in case the stream never opened) schedules a check one grace period later:
    if no page refreshed the mark since, the customer has left, and a chat that is still
    waiting is abandoned.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._checks: dict[int, asyncio.Task[None]] = {}
        self._stopped = False

    @property
    def grace(self) -> float:
        return self._services.settings.chat_abandon_grace_seconds

    async def alive(self, interaction_id: int) -> None:
        await self._services.presence.marks.touch(CHAT, interaction_id, self.grace)

    def check_later(self, interaction_id: int) -> None:
        """Look again one grace period from now (a later call replaces an earlier one)."""
        if self._stopped:
            return  # the hub is shutting down: its streams close, customers have not left
        earlier = self._checks.pop(interaction_id, None)
        if earlier is not None:
            earlier.cancel()
        task = asyncio.create_task(self._check(interaction_id), name=f"chat-left-{interaction_id}")
        self._checks[interaction_id] = task
        task.add_done_callback(lambda done: self._forget(interaction_id, done))

    def _forget(self, interaction_id: int, task: asyncio.Task[None]) -> None:
        if self._checks.get(interaction_id) is task:
            del self._checks[interaction_id]

    async def _check(self, interaction_id: int) -> None:
        await asyncio.sleep(self.grace + 0.1)  # the last sign of life is older by then
        try:
            if await self._services.presence.marks.present(CHAT, interaction_id, self.grace):
                return  # a page of this chat is open (a reload, a second tab)
            async with self._services.sessionmaker() as db:
                interaction = await db.get(Interaction, interaction_id)
            if interaction is None or interaction.state not in WAITING_STATES:
                return
            await self._services.routing.abandon(interaction_id, PAGE_GONE)
        except Exception:
            log.exception("could not record chat %s as abandoned", interaction_id)

    async def stop_after_checks(self) -> None:
        """Wait for the checks already scheduled (tests), then stop."""
        await asyncio.gather(*self._checks.values())
        await self.stop()

    async def stop(self) -> None:
        self._stopped = True
        tasks, self._checks = list(self._checks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def start(services: Services) -> None:
    if not services.outbox.has_sender(ChannelKind.WEBCHAT):
        services.outbox.register(ChannelKind.WEBCHAT, WebchatSender())
    services.extras["chat_limiter"] = make_rate_limiter(services.settings.redis_url)
    services.extras["chat_leave_watch"] = LeaveWatch(services)


async def stop(services: Services) -> None:
    if "chat_leave_watch" in services.extras:
        await services.extras.pop("chat_leave_watch").stop()
    if "chat_limiter" in services.extras:
        await services.extras.pop("chat_limiter").close()


# ---------------------------------------------------------------- visitor identity


def _secret(request: Request) -> bytes:
    return request.app.state.services.settings.resolved_secret_key().encode()


def _sign(request: Request, visitor: str) -> str:
    mac = hmac.new(_secret(request), f"visitor:{visitor}".encode(), hashlib.sha256).hexdigest()
    return f"{visitor}.{mac[:32]}"


EMBED_HEADER = "x-hub-visitor"  # the embedded widget's visitor token (never a cookie there)
EMBED_QUERY = "vt"  # the same token on URLs the browser opens itself (SSE, files)


def _embedded_inbox(request: Request) -> int | None:
    """The inbox of an embedded widget's request (``/chat/w/{inbox_id}/…``), else None."""
    inbox_id = request.path_params.get("inbox_id")
    return inbox_id if isinstance(inbox_id, int) else None


def verify_token(request: Request, raw: str) -> str | None:
    """The visitor id of a signed token ``visitor.mac``; None when absent or forged."""
    visitor, _, _mac = raw.partition(".")
    if not visitor or not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", visitor):
        return None
    return visitor if hmac.compare_digest(_sign(request, visitor), raw) else None


def visitor_of(request: Request) -> str | None:
    """The visitor id: from the signed cookie on the hub's own chat page; from the token
    header (or, for GETs the browser makes itself, the query) in an embedded widget, which
    must not depend on third-party cookies and is exempt from the CSRF cookie check for
    that reason: a cookie is never read there, so a forged cross-site request has no
    identity."""
    if _embedded_inbox(request) is None:
        return verify_token(request, request.cookies.get(VISITOR_COOKIE, ""))
    raw = request.headers.get(EMBED_HEADER, "")
    if not raw and request.method == "GET":
        raw = request.query_params.get(EMBED_QUERY, "")
    return verify_token(request, raw)


def chat_urls(request: Request) -> dict[str, str]:
    """Where the chat's own links point: the hub's page, or the embedded widget's paths with
    the visitor token on URLs that cannot carry a header."""
    inbox_id = _embedded_inbox(request)
    if inbox_id is None:
        return {"chat_base": "/chat", "vt_query": ""}
    raw = request.headers.get(EMBED_HEADER, "") or request.query_params.get(EMBED_QUERY, "")
    return {"chat_base": f"/chat/w/{inbox_id}", "vt_query": "?" + urlencode({EMBED_QUERY: raw})}


def _visitor_cookie(request: Request, visitor: str) -> Cookie:
    return Cookie(
        key=VISITOR_COOKIE,
        value=_sign(request, visitor),
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        path="/chat",
        secure=request.url.scheme == "https",
    )


# ---------------------------------------------------------------- rate limit


def _limiter(request: Request) -> RateLimiter:
    return request.app.state.services.extras["chat_limiter"]


async def _check_rate(request: Request, visitor: str) -> None:
    per_minute = request.app.state.services.settings.chat_rate_per_minute
    limiter = _limiter(request)
    client = request.client.host if request.client else "unknown"
    for key, limit in ((f"v:{visitor}", per_minute), (f"ip:{client}", per_minute * 4)):
        wait = await limiter.allow(key, limit)
        if wait is not None:
            raise TooManyRequests(
                f"You are sending messages too fast (at most {limit} a minute). "
                f"Try again in {int(wait) + 1} s.",
                headers={"Retry-After": str(int(wait) + 1)},
            )


# ---------------------------------------------------------------- reads


async def webchat_inbox(db: AsyncSession, inbox_id: int | None = None) -> Inbox:
    """The chat's inbox: the embedded widget's own, or the hub's first web chat inbox."""
    query = select(Inbox).where(
        Inbox.kind == ChannelKind.WEBCHAT.value, col(Inbox.active).is_(True)
    )
    if inbox_id is not None:
        query = query.where(Inbox.id == inbox_id)
    inbox = (await db.exec(query.order_by(col(Inbox.id)))).first()
    if inbox is None:
        raise ChatUnavailable("Web chat is not set up on this hub.")
    return inbox


async def current_interaction(db: AsyncSession, visitor: str, inbox_id: int) -> Interaction | None:
    """The visitor's latest chat on this inbox (open or not: the transcript stays)."""
    identity = (
        await db.exec(
            select(ContactIdentity).where(
                ContactIdentity.kind == AddressKind.WEBCHAT.value,
                ContactIdentity.address == visitor,
            )
        )
    ).first()
    if identity is None:
        return None
    contact = await follow_merges(db, identity.contact_id)
    return (
        await db.exec(
            select(Interaction)
            .where(Interaction.contact_id == contact.id, Interaction.inbox_id == inbox_id)
            .order_by(col(Interaction.id).desc())
        )
    ).first()


async def _owned(db: AsyncSession, visitor: str, interaction_id: int) -> Interaction:
    """The interaction if it belongs to this visitor's contact, else 404 (no probing)."""
    interaction = await db.get(Interaction, interaction_id)
    identity = (
        await db.exec(
            select(ContactIdentity).where(
                ContactIdentity.kind == AddressKind.WEBCHAT.value,
                ContactIdentity.address == visitor,
            )
        )
    ).first()
    if interaction is None or identity is None:
        raise NotFoundException("No such conversation.")
    contact = await follow_merges(db, identity.contact_id)
    if interaction.contact_id != contact.id:
        raise NotFoundException("No such conversation.")
    return interaction


async def transcript(db: AsyncSession, interaction: Interaction) -> list[dict[str, Any]]:
    """Customer-visible lines: messages (never private notes) and join/leave notices."""
    messages = (
        await db.exec(
            select(Message)
            .where(Message.interaction_id == interaction.id, col(Message.private).is_(False))
            .order_by(col(Message.created_at), col(Message.id))
        )
    ).all()
    events = (
        await db.exec(
            select(InteractionEvent)
            .where(InteractionEvent.interaction_id == interaction.id)
            .order_by(col(InteractionEvent.at), col(InteractionEvent.id))
        )
    ).all()
    names = await _agent_first_names(db)
    lines: list[dict[str, Any]] = [
        {"at": m.created_at, "kind": "message", "m": m, "who": _who(m, names)} for m in messages
    ]
    for e in events:
        notice = _notice(e.to_state, names.get(e.agent_id or 0))
        if notice:
            lines.append({"at": e.at, "kind": "notice", "text": notice, "id": f"e-{e.id}"})
    lines.sort(key=lambda line: line["at"])
    return lines


def _notice(state: str, agent_name: str | None) -> str | None:
    if state == InteractionState.ACTIVE:
        return f"{agent_name or 'An agent'} has joined the chat."
    if state == InteractionState.CLOSED:
        return "The conversation has ended."
    if state == InteractionState.VOICEMAIL:
        return "Your message has been left for our team."
    if state == InteractionState.ABANDONED:
        return "You ended the chat before an agent joined."
    return None


def _who(message: Message, names: dict[int, str]) -> str:
    """Who wrote a line the customer reads: the agent's first name, or the inbox's dialog."""
    if message.sender_kind == SenderKind.BOT:
        return "Assistant"
    return names.get(message.agent_id or 0, "Agent")


async def _agent_first_names(db: AsyncSession) -> dict[int, str]:
    rows = (await db.exec(select(Agent.id, User.display_name).join(User))).all()
    return {aid: (name.split() or ["Agent"])[0] for aid, name in rows if aid is not None}


async def status_context(request: Request, interaction: Interaction | None) -> dict[str, Any]:
    """What the status bar says: position and wait, or the leave-a-message path."""
    ctx: dict[str, Any] = {"interaction": interaction, "position": None, "agent_name": None}
    if interaction is None:
        return ctx
    if interaction.state in (InteractionState.QUEUED, InteractionState.OFFERED):
        routing = getattr(request.app.state.services, "routing", None)
        if routing is not None:
            try:
                ctx["position"] = await routing.queue_position(interaction.id)
            except LookupError:
                ctx["position"] = None
    if interaction.agent_id is not None:
        async with request.app.state.services.sessionmaker() as db:
            ctx["agent_name"] = (await _agent_first_names(db)).get(interaction.agent_id)
    return ctx


def _env(request: Request) -> Environment:
    return request.app.template_engine.engine  # type: ignore[attr-defined]


# ---------------------------------------------------------------- handlers


@get("/chat")
async def chat_page(request: Request) -> Template:
    visitor = visitor_of(request)
    new_visitor = visitor is None
    if visitor is None:
        visitor = secrets.token_urlsafe(18)
    services: Services = request.app.state.services
    async with services.sessionmaker() as db:
        inbox = await webchat_inbox(db, _embedded_inbox(request))
        interaction = None if new_visitor else await current_interaction(db, visitor, inbox.id)  # type: ignore[arg-type]
        lines = await transcript(db, interaction) if interaction else []
    status = await status_context(request, interaction)
    response = Template(
        template_name="chat/page.html",
        context={"lines": lines, **status, **chat_urls(request)},
    )
    if new_visitor:
        response.cookies.append(_visitor_cookie(request, visitor))
    response.headers["Cache-Control"] = "no-store"
    return response


async def _form(request: Request) -> dict[str, Any]:
    try:
        form = await request.form()
    except HTTPException:
        raise
    except Exception as exc:  # a malformed body must be the customer's 400, not our 500
        raise BadChatRequest("The message could not be read (malformed form data).") from exc
    return dict(form.items())


@post(["/chat/messages", "/chat/w/{inbox_id:int}/messages"], status_code=200)
async def send_message(request: Request, inbox_id: int | None = None) -> Response:
    visitor = visitor_of(request)
    if visitor is None:
        raise BadChatRequest("Your chat session is missing: reload the page and try again.")
    await _check_rate(request, visitor)
    services: Services = request.app.state.services
    form = await _form(request)
    body = str(form.get("body", "") or "").strip()
    if len(body) > MAX_BODY_CHARS:
        raise BadChatRequest(f"The message is too long (at most {MAX_BODY_CHARS} characters).")
    source_id = str(form.get("source_id", "") or "")
    if not _SOURCE_ID.fullmatch(source_id):
        raise BadChatRequest("The message id is missing or malformed: reload the page.")
    name = str(form.get("name", "") or "").strip()[:200]
    email = str(form.get("email", "") or "").strip()[:320]
    if email and not _EMAIL.fullmatch(email):
        raise BadChatRequest("That email address does not look right.")
    attachments: tuple[InboundAttachment, ...] = ()
    upload = form.get("file")
    if isinstance(upload, UploadFile) and (upload.filename or ""):
        limit = services.settings.chat_max_attachment_bytes
        data = await upload.read(limit + 1)
        filename, kind = check_upload(upload.filename or "file", data, limit)
        attachments = (InboundAttachment(filename, kind, data),)
    if not body and not attachments:
        raise BadChatRequest("Write a message or attach a file.")
    async with services.sessionmaker() as db:
        inbox = await webchat_inbox(db, _embedded_inbox(request))
        before = await current_interaction(db, visitor, inbox.id)  # type: ignore[arg-type]
    meta = {k: v for k, v in (("name", name), ("email", email)) if v}
    try:
        result = await services.ingest.ingest(
            InboundMessage(
                inbox_id=inbox.id,  # type: ignore[arg-type]
                channel=ChannelKind.WEBCHAT,
                sender=Address(AddressKind.WEBCHAT, visitor, display_name=name or None),
                body=body,
                source_id=f"{visitor}:{source_id}",
                content_type="image" if attachments and not body else "text",
                attachments=attachments,
                meta=meta,
            )
        )
    except UnknownInbox as exc:
        raise ChatUnavailable("Web chat is switched off right now.") from exc
    if email or name:
        await _remember_details(services, result.interaction_id, name, email)
    watch: LeaveWatch | None = services.extras.get("chat_leave_watch")
    if watch is not None:  # the page is alive now; its stream keeps it so from here
        await watch.alive(result.interaction_id)
        watch.check_later(result.interaction_id)
    if (
        before is not None
        and before.id == result.interaction_id
        and before.state
        not in (
            InteractionState.CLOSED,
            InteractionState.ABANDONED,
        )
    ):
        return Response(content="", media_type="text/html")
    # A new conversation: swap in the whole chat panel, which opens its own stream.
    return await _panel_response(request, result.interaction_id)


async def _remember_details(services: Services, interaction_id: int, name: str, email: str) -> None:
    """What the customer told us at the start, shown in the agent's screen pop."""
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, interaction_id)
        if interaction is None:
            return
        data = dict(interaction.data or {})
        if name and "name given" not in data:
            data["name given"] = name
        if email and "email given" not in data:
            data["email given"] = email
        if data != interaction.data:
            interaction.data = data
            db.add(interaction)
            await db.commit()


async def _panel_response(request: Request, interaction_id: int) -> Response:
    services: Services = request.app.state.services
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, interaction_id)
        assert interaction is not None
        lines = await transcript(db, interaction)
    ctx = await status_context(request, interaction)
    html = (
        _env(request)
        .get_template("chat/_panel.html")
        .render(lines=lines, **ctx, **chat_urls(request))
    )
    return Response(
        content=html,
        media_type="text/html",
        headers={"HX-Retarget": "#chat", "HX-Reswap": "outerHTML"},
    )


async def _visitors_chat(request: Request, none_yet: str) -> Interaction:
    """The visitor's current chat, or a 400 that says what is missing."""
    visitor = visitor_of(request)
    if visitor is None:
        raise BadChatRequest("Your chat session is missing: reload the page and try again.")
    async with request.app.state.services.sessionmaker() as db:
        inbox = await webchat_inbox(db, _embedded_inbox(request))
        interaction = await current_interaction(db, visitor, inbox.id)  # type: ignore[arg-type]
    if interaction is None:
        raise BadChatRequest(none_yet)
    return interaction


@post(["/chat/leave-message", "/chat/w/{inbox_id:int}/leave-message"], status_code=200)
async def leave_message(request: Request, inbox_id: int | None = None) -> Response:
    services: Services = request.app.state.services
    interaction = await _visitors_chat(request, "Write your message first, then leave it for us.")
    if interaction.state not in (InteractionState.QUEUED, InteractionState.OFFERED):
        return await _panel_response(request, interaction.id)  # type: ignore[arg-type]
    routing = getattr(services, "routing", None)
    if routing is None:
        raise ChatUnavailable("Messages cannot be left right now; your message is kept anyway.")
    await routing.leave_message(interaction.id)
    return await _panel_response(request, interaction.id)  # type: ignore[arg-type]


@post(["/chat/end", "/chat/w/{inbox_id:int}/end"], status_code=200)
async def end_chat(request: Request, inbox_id: int | None = None) -> Response:
    """The customer ends the chat before an agent has accepted it: ABANDONED, with the time.
    Once an agent has joined, the chat is the agent's to close; the panel then says so."""
    services: Services = request.app.state.services
    interaction = await _visitors_chat(request, "There is no chat to end.")
    if interaction.state in WAITING_STATES:
        routing = getattr(services, "routing", None)
        if routing is None:
            raise ChatUnavailable("The chat cannot be ended right now.")
        await routing.abandon(interaction.id, ENDED_BY_CUSTOMER)
    return await _panel_response(request, interaction.id)  # type: ignore[arg-type]


@get(
    [
        "/chat/attachments/{message_id:int}/{index:int}",
        "/chat/w/{inbox_id:int}/attachments/{message_id:int}/{index:int}",
    ]
)
async def chat_attachment(
    request: Request,
    message_id: FromPath[int],
    index: FromPath[int],
    inbox_id: int | None = None,
) -> Response:
    visitor = visitor_of(request)
    if visitor is None:
        raise NotFoundException("No such file.")
    services: Services = request.app.state.services
    async with services.sessionmaker() as db:
        message = await db.get(Message, message_id)
        if message is None or message.private or index >= len(message.attachments):
            raise NotFoundException("No such file.")
        await _owned(db, visitor, message.interaction_id)
    return attachment_response(services, message.attachments[index])


# ---------------------------------------------------------------- the visitor's stream


class ChatStream:
    """The customer's stream: its own interaction topic only, customer-visible content only.

    The stream subscribes, then sends the whole transcript (``sync``), so a message or state
    change committed in between arrives twice: in the transcript and as its event. Each line
    is sent once: ``shown`` holds the ids of the lines sent (``c-<message>``, ``e-<event>``),
    and a state event's notice is the oldest matching ``InteractionEvent`` not yet shown."""

    def __init__(self, request: Request, interaction_id: int) -> None:
        self.request = request
        self.services: Services = request.app.state.services
        self.env = _env(request)
        self.interaction_id = interaction_id
        self.urls = chat_urls(request)
        self.shown: set[str] = set()

    def _line(self, line: dict[str, Any]) -> str:
        return self.env.get_template("chat/_line_oob.html").render(line=line, **self.urls)

    def topics(self) -> list[str]:
        return [interaction_topic(self.interaction_id)]

    async def sync(self, _mux: Any) -> list[Any]:
        from web.sse import Message as SSE

        async with self.services.sessionmaker() as db:
            interaction = await db.get(Interaction, self.interaction_id)
            assert interaction is not None
            lines = await transcript(db, interaction)
        self.shown = {line["id"] if "id" in line else f"c-{line['m'].id}" for line in lines}
        html = self.env.get_template("chat/_lines.html").render(lines=lines, **self.urls)
        return [SSE(event="transcript", data=html), await self._status()]

    async def _unshown_change(self, db: AsyncSession, state: str) -> InteractionEvent | None:
        """The oldest change of the interaction to ``state`` that the customer has not been
        shown yet (None: the transcript already holds it); marked as shown."""
        changes = await db.exec(
            select(InteractionEvent)
            .where(
                InteractionEvent.interaction_id == self.interaction_id,
                InteractionEvent.to_state == state,
            )
            .order_by(col(InteractionEvent.id))
        )
        for change in changes.all():
            if f"e-{change.id}" not in self.shown:
                self.shown.add(f"e-{change.id}")
                return change
        return None

    async def _status(self) -> Any:
        from web.sse import Message as SSE

        async with self.services.sessionmaker() as db:
            interaction = await db.get(Interaction, self.interaction_id)
        ctx = await status_context(self.request, interaction)
        return SSE(
            event="status",
            data=self.env.get_template("chat/_status.html").render(**ctx, **self.urls),
        )

    async def idle(self) -> list[Any]:
        """Refresh the queue position while waiting (it moves without any event of ours)."""
        async with self.services.sessionmaker() as db:
            interaction = await db.get(Interaction, self.interaction_id)
        if interaction is not None and interaction.state in (
            InteractionState.QUEUED,
            InteractionState.OFFERED,
        ):
            return [await self._status()]
        return []

    async def render(self, batch: list[Event], _mux: Any) -> list[Any]:
        from web.sse import Message as SSE

        out = []
        want_status = False
        async with self.services.sessionmaker() as db:
            names = await _agent_first_names(db)
            for event in batch:
                if event.name == "message" and isinstance(event.data.get("message_id"), int):
                    message = await db.get(Message, event.data["message_id"])
                    if (
                        message is None
                        or message.private
                        or message.interaction_id != self.interaction_id
                        or f"c-{message.id}" in self.shown
                    ):
                        continue
                    self.shown.add(f"c-{message.id}")
                    line = {
                        "kind": "message",
                        "m": message,
                        "who": _who(message, names),
                    }
                    out.append(SSE(event="message", data=self._line(line)))
                elif event.name == "state":
                    want_status = True
                    change = await self._unshown_change(db, str(event.data.get("state", "")))
                    notice = change and _notice(change.to_state, names.get(change.agent_id or 0))
                    if change is not None and notice:
                        line = {"kind": "notice", "text": notice, "id": f"e-{change.id}"}
                        out.append(SSE(event="message", data=self._line(line)))
        if want_status:
            out.append(await self._status())
        return out


@get(["/chat/events", "/chat/w/{inbox_id:int}/events"])
async def chat_events(request: Request, inbox_id: int | None = None) -> ServerSentEvent:
    from web.sse import run_stream

    visitor = visitor_of(request)
    if visitor is None:
        raise NotFoundException("No chat session.")
    services: Services = request.app.state.services
    async with services.sessionmaker() as db:
        inbox = await webchat_inbox(db, _embedded_inbox(request))
        interaction = await current_interaction(db, visitor, inbox.id)  # type: ignore[arg-type]
    if interaction is None:
        raise NotFoundException("No conversation yet.")
    stream = ChatStream(request, interaction.id)  # type: ignore[arg-type]
    heartbeat = min(services.settings.sse_heartbeat_seconds, 5.0)
    watch: LeaveWatch = services.extras["chat_leave_watch"]
    interaction_id: int = interaction.id  # type: ignore[assignment]

    async def keepalive() -> None:
        await watch.alive(interaction_id)

    async def watched() -> AsyncGenerator[Any, None]:
        try:
            async for message in run_stream(
                services,
                stream,
                heartbeat=heartbeat,
                on_idle=stream.idle,
                keepalive=keepalive,
                keepalive_every=max(0.2, watch.grace / 3),
            ):
                yield message
        finally:
            watch.check_later(interaction_id)

    return ServerSentEvent(
        watched(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


route_handlers: list = [
    Router(
        path="/",
        response_headers=SECURITY_HEADERS,
        route_handlers=[
            chat_page,
            send_message,
            leave_message,
            end_chat,
            chat_attachment,
            chat_events,
        ],
    )
]
