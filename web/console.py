"""The agent console: presence, offers with a countdown, conversations, screen pop, wrap-up.

Pages and partials render from ``web.views`` loaders; the tab's SSE stream (``ConsoleStream``)
re-renders the same partials when the bus says something changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from jinja2 import Environment
from litestar import Request, Router, get, post
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Response, Template
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import AddressKind, ChannelKind
from hub import audit, canned
from hub.auth import CurrentUser
from hub.contacts import (
    AddressError,
    follow_merges,
    merge_contacts,
    normalize_address,
    set_contact_blocked,
)
from hub.events import Event, agent_topic, interaction_topic
from hub.services import Services
from hub.text_collab import PARTICIPANTS_EVENT, joined_as, joined_segments
from models import (
    Agent,
    Contact,
    ContactIdentity,
    Direction,
    Disposition,
    Interaction,
    InteractionState,
    Message,
    PresenceState,
    Queue,
    Recording,
    Role,
    SenderKind,
)
from web import views
from web.common import (
    ClientError,
    UnprocessableError,
    agent_guard,
    form_int,
    opt_int,
    page,
    presence_of,
    routing_of,
    services_of,
    user_of,
)
from web.sse import Message as SSE
from web.sse import TopicMux, event_key, render, shared_renders
from web.voicemail_view import callback_view, voicemail_view

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
MAX_REPLY_CHARS = 10_000
# Channels whose senders deliver an agent's file (a fax takes a PDF, as pages).
ATTACHING_CHANNELS = {ChannelKind.WEBCHAT, ChannelKind.EMAIL, ChannelKind.TELEGRAM, ChannelKind.FAX}


class Conflict(ClientError):
    status_code = 409


T = TypeVar("T")


# ---------------------------------------------------------------- render helpers


async def presence_context(db: AsyncSession, agent_id: int) -> dict[str, Any]:
    agent = await db.get(Agent, agent_id)
    return {"agent": agent, "reasons": await views.not_ready_reasons(db)}


async def conversation_context(
    db: AsyncSession, interaction_id: int, user: CurrentUser
) -> dict[str, Any]:
    conv = await views.conversation(db, interaction_id)
    if conv is None:
        raise NotFoundException(f"Interaction {interaction_id} does not exist.")
    reply_subject = None
    if conv.interaction.channel == ChannelKind.EMAIL:
        from channels.email.compose import reply_subject as email_reply_subject

        reply_subject = email_reply_subject(conv.interaction.subject, conv.interaction.id)
    joined_role = next(
        (str(s.role) for s in conv.joined if s.agent_id == user.agent_id and user.agent_id), None
    )
    return {
        "conv": conv,
        "reply_subject": reply_subject,
        "mine": conv.interaction.agent_id == user.agent_id,
        "joined_role": joined_role,  # consult / conference: on it without holding it
        "dispositions": await views.dispositions(db),
        "reasons": await views.not_ready_reasons(db),
        "targets": await views.transfer_targets(db, conv.interaction),
        "user": user,
        "voicemail": await voicemail_view(db, conv.interaction),
        "callback": await callback_view(db, conv.interaction),
    }


def _can_view(user: CurrentUser, interaction: Interaction) -> bool:
    """Live access: the agent's own conversations, and any for supervisors."""
    return interaction.agent_id == user.agent_id or user.has_role(Role.SUPERVISOR)


async def _may_view(db: AsyncSession, user: CurrentUser, interaction: Interaction) -> bool:
    """Live access, and the text conversations the agent is consulted on or conferenced
    into (``hub.text_collab``)."""
    if _can_view(user, interaction):
        return True
    return await joined_as(db, interaction.id, user.agent_id) is not None  # type: ignore[arg-type]


async def _can_read(db: AsyncSession, user: CurrentUser, interaction: Interaction) -> bool:
    """Read access: the agent's own conversations, any for supervisors, and the customer's
    past interactions while the agent holds one of theirs (the screen pop's history)."""
    if await _may_view(db, user, interaction):
        return True
    if user.agent_id is None:
        return False
    held = await db.exec(
        select(Interaction.id).where(
            Interaction.agent_id == user.agent_id,
            Interaction.contact_id == interaction.contact_id,
            col(Interaction.state).in_(views.WORKING_STATES),
        )
    )
    return held.first() is not None


class ConsoleStream:
    """The console tab's stream: the agent's topic plus each conversation it holds."""

    def __init__(
        self,
        services: Services,
        env: Environment,
        user: CurrentUser,
        watch: int | None = None,
    ) -> None:
        self.services = services
        self.env = env
        self.user = user
        assert user.agent_id is not None
        self.agent_id: int = user.agent_id
        self.watch = watch  # a conversation this tab shows without holding it (supervisors)
        # (state, agent, joined agents) of each conversation the tab shows
        self._shown: dict[int, tuple[Any, ...]] = {}
        self._joined: set[int] = set()  # consulted on or conferenced into (hub.text_collab)

    def topics(self) -> list[str]:
        return [agent_topic(self.agent_id)]

    async def sync(self, mux: TopicMux) -> list[SSE]:
        async with self.services.sessionmaker() as db:
            held = await views.my_conversations(db, self.agent_id)
            watched = await db.get(Interaction, self.watch) if self.watch else None
        await mux.add(interaction_topic(i.id) for i, _c in held)  # type: ignore[arg-type]
        for interaction in [i for i, _c in held] + ([watched] if watched else []):
            self._shown[interaction.id] = (interaction.state, interaction.agent_id, None)  # type: ignore[index]
        self._joined = {i.id for i, _c in held if i.agent_id != self.agent_id}  # type: ignore[misc]
        if watched is not None and _can_view(self.user, watched):
            await mux.add([interaction_topic(watched.id)])  # type: ignore[arg-type]
        return [
            await self._offers(),
            await self._conversations(),
            await self._presence(),
        ]

    async def _offers(self, key: str = "sync") -> SSE:
        async def load() -> str:
            async with self.services.sessionmaker() as db:
                offers = await views.pending_offers(db, self.agent_id)
            return render(self.env, "console/_offers.html", offers=offers)

        html = await shared_renders.run(("offers", self.agent_id, key), load)
        return SSE(event="offer", data=html)

    async def _conversations(self, key: str = "sync") -> SSE:
        async def load() -> str:
            async with self.services.sessionmaker() as db:
                held = await views.my_conversations(db, self.agent_id)
            return render(self.env, "console/_conversations.html", held=held)

        html = await shared_renders.run(("conversations", self.agent_id, key), load)
        return SSE(event="conversation", data=html)

    async def _presence(self, key: str = "sync") -> SSE:
        async def load() -> str:
            async with self.services.sessionmaker() as db:
                ctx = await presence_context(db, self.agent_id)
            return render(self.env, "console/_presence.html", **ctx)

        html = await shared_renders.run(("presence", self.agent_id, key), load)
        return SSE(event="presence", data=html)

    async def render(self, batch: list[Event], mux: TopicMux) -> list[SSE]:
        out: list[SSE] = []
        want_offers = want_conversations = want_presence = False
        message_ids: list[int] = []
        status_ids: list[int] = []
        state_ids: list[int] = []
        for event in batch:
            if event.name == "force-logout":
                return [SSE(event="force-logout", data="<p>Logged out by a supervisor.</p>")]
            if event.name in ("offer", "offer-cancelled"):
                want_offers = True
            elif event.name == "conversation":
                want_conversations = True
                iid = event.data.get("interaction_id")
                mid = event.data.get("message_id")
                if isinstance(iid, int):
                    await mux.add([interaction_topic(iid)])
                    if not isinstance(mid, int):
                        state_ids.append(iid)  # accepted, transferred, closed…
                        want_offers = True  # taken elsewhere (the agent's phone picked up)
                if isinstance(mid, int):
                    message_ids.append(mid)  # a new message: the state did not change
            elif event.name == "presence":
                want_presence = True
            elif event.name == "supervisor-message":
                html = shared_renders.memo(
                    ("supervisor-message", event_key([event], event.name)),
                    self._popup(event),
                )
                out.append(SSE(event="supervisor-message", data=html))
            elif event.name == "call":  # the call card changed (web/call_card.py)
                iid = _topic_id(event.topic)
                if iid is not None:
                    out.append(SSE(event="call", data=self._call_card(iid, event.data.get("card"))))
            elif event.name == "message" and isinstance(event.data.get("message_id"), int):
                message_ids.append(event.data["message_id"])
            elif event.name == "message-status" and isinstance(event.data.get("message_id"), int):
                status_ids.append(event.data["message_id"])
            elif event.name in ("state", PARTICIPANTS_EVENT):
                iid = _topic_id(event.topic)
                if iid is not None:
                    state_ids.append(iid)
                    want_conversations = True
        if message_ids or status_ids:
            out.extend(await self._messages(message_ids, status_ids))
        for iid in dict.fromkeys(state_ids):
            changed = await self._state(iid)
            if changed is not None:
                out.append(changed)
        if want_offers:
            out.append(await self._offers(event_key(batch, "offer", "offer-cancelled")))
        if want_conversations:
            out.append(await self._conversations(event_key(batch, "conversation", "state")))
        if want_presence:
            out.append(await self._presence(event_key(batch, "presence")))
        return out

    def _call_card(self, iid: int, card: Any) -> str:
        from web.call_card import render_card

        theirs = isinstance(card, dict) and card.get("agent_id") != self.agent_id
        if theirs and not self.user.has_role(Role.SUPERVISOR):
            card = None
        return render_card(self.env, iid, card if isinstance(card, dict) else None, self.agent_id)

    def _popup(self, event: Event) -> Callable[[], str]:
        def load() -> str:
            return render(
                self.env,
                "console/_supervisor_message.html",
                text=str(event.data.get("text", "")),
                sender=str(event.data.get("from", "Supervisor")),
            )

        return load

    async def _messages(self, new_ids: list[int], status_ids: list[int]) -> list[SSE]:
        out = []
        async with self.services.sessionmaker() as db:
            names = await views.agent_names(db)
            for ids, event_name, mode in (
                (new_ids, "message", "append"),
                (status_ids, "message-status", "replace"),
            ):
                for mid in dict.fromkeys(ids):
                    message = await db.get(Message, mid)
                    if message is None:
                        continue
                    interaction = await db.get(Interaction, message.interaction_id)
                    if interaction is None or not await _may_view(db, self.user, interaction):
                        continue
                    html = render(
                        self.env,
                        "console/_message_oob.html",
                        m=message,
                        mode=mode,
                        agent_names=names,
                    )
                    out.append(SSE(event=event_name, data=html))
        return out

    async def _state(self, interaction_id: int) -> SSE | None:
        """Re-render a conversation's header and actions, only when its state really changed:
        the actions hold the reply box, and a re-render would wipe a half-typed reply."""
        async with self.services.sessionmaker() as db:
            interaction = await db.get(Interaction, interaction_id)
            if interaction is None:
                return None
            joined = await joined_segments(db, interaction_id)
            seen = (
                interaction.state,
                interaction.agent_id,
                tuple((j.agent_id, str(j.role)) for j in joined),
            )
            if self._shown.get(interaction_id) == seen:
                return None
            was_joined = interaction_id in self._joined
            if any(a == self.agent_id for a, _role in seen[2]):
                self._joined.add(interaction_id)
            else:
                self._joined.discard(interaction_id)
            self._shown[interaction_id] = seen
            if not await _may_view(db, self.user, interaction) and (
                interaction.agent_id is not None or was_joined
            ):
                why = "The consult or conference has ended." if was_joined else None
                html = render(
                    self.env, "console/_state_oob.html", iid=interaction_id, gone=True, why=why
                )
                return SSE(event="state", data=html)
            ctx = await conversation_context(db, interaction_id, self.user)
        html = render(self.env, "console/_state_oob.html", iid=interaction_id, gone=False, **ctx)
        return SSE(event="state", data=html)


def _topic_id(topic: str) -> int | None:
    match = re.fullmatch(r"interaction\.(\d+)", topic)
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------- access helpers


async def guarded(call: Awaitable[T]) -> T:
    """Run a routing call; its refusals (a race lost to another click, a supervisor or a
    timer) become a clear 4xx instead of a 500."""
    try:
        return await call
    except HTTPException:
        raise
    except PermissionError as exc:
        raise PermissionDeniedException(f"Not possible: {exc}.") from exc
    except (ValueError, LookupError) as exc:
        raise Conflict(f"Not possible now: {exc}.") from exc


async def _held(
    db: AsyncSession,
    user: CurrentUser,
    interaction_id: int,
    *states: InteractionState,
    joined: bool = False,
) -> Interaction:
    """The interaction, if this agent holds it (or, with ``joined``, is consulted on or
    conferenced into it) in one of ``states``, else a clear 4xx."""
    interaction = await db.get(Interaction, interaction_id)
    if interaction is None:
        raise NotFoundException(f"Interaction {interaction_id} does not exist.")
    if interaction.agent_id != user.agent_id and not joined:
        raise PermissionDeniedException("This conversation is not assigned to you.")
    if states and interaction.state not in states:
        raise Conflict(
            f"This conversation is {interaction.state.replace('_', ' ')}; "
            "that action is not possible now."
        )
    return interaction


def _render_html(request: Request, name: str, **ctx: Any) -> str:
    env: Environment = request.app.template_engine.engine  # type: ignore[attr-defined]
    return env.get_template(name).render(**ctx)


async def _workspace(request: Request, interaction_id: int, *, extra_oob: str = "") -> Response:
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        ctx = await conversation_context(db, interaction_id, user)
        held = await views.my_conversations(db, user.agent_id or 0)
        offers = await views.pending_offers(db, user.agent_id or 0)
    html = _render_html(request, "console/_workspace.html", **ctx)
    html += _render_html(
        request, "console/_conversations.html", held=held, current=interaction_id, oob=True
    )
    html += _render_html(request, "console/_offers.html", offers=offers, oob=True)
    return Response(content=html + extra_oob, media_type="text/html")


# ---------------------------------------------------------------- pages


@get("/")
async def console_page(request: Request, interaction: FromQuery[int | None] = None) -> Template:
    return await _console_page(request, interaction)


async def _console_page(request: Request, interaction: int | None) -> Template:
    from web.softphone import device_context

    user = user_of(request)
    agent_id = user.agent_id or 0
    async with services_of(request).sessionmaker() as db:
        held = await views.my_conversations(db, agent_id)
        current = interaction or (held[0][0].id if held else None)
        ctx: dict[str, Any] = {}
        if current is not None:
            found = await db.get(Interaction, current)
            if found is not None and await _may_view(db, user, found):
                ctx = await conversation_context(db, current, user)
            else:
                current = None
        context = {
            **(await presence_context(db, agent_id)),
            **ctx,  # both hold the not-ready reasons; either copy will do
            "held": held,
            "current": current,
            "offers": await views.pending_offers(db, agent_id),
            "left": await views.left_messages(db),
            **(await device_context(request)),  # the phone panel (web/softphone.py)
        }
        return page("console/page.html", request, **context)


@get("/interactions/{interaction_id:int}")
async def show_interaction(request: Request, interaction_id: FromPath[int]) -> Response | Template:
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        interaction = await db.get(Interaction, interaction_id)
        if interaction is None:
            raise NotFoundException(f"Interaction {interaction_id} does not exist.")
        if not await _may_view(db, user, interaction):
            raise PermissionDeniedException("This conversation is not assigned to you.")
    if not request.headers.get("hx-request"):
        return await _console_page(request, interaction_id)
    return await _workspace(request, interaction_id)


@get("/left-messages")
async def left_messages(request: Request) -> Template:
    async with services_of(request).sessionmaker() as db:
        left = await views.left_messages(db)
    return Template(template_name="console/_left.html", context={"left": left})


@post("/interactions/{interaction_id:int}/pick-up", status_code=200)
async def pick_up(request: Request, interaction_id: FromPath[int]) -> Response:
    """Take a message a customer left (or a waiting item) straight into this console."""
    user = user_of(request)
    routing = routing_of(request)
    from hub.routing.service import OfferGone

    try:
        await guarded(routing.pick_up(interaction_id, user.agent_id))
    except OfferGone as exc:
        raise Conflict(f"Someone else has it already ({exc}).") from exc
    return await _workspace(request, interaction_id)


@post("/presence", status_code=200)
async def set_presence(request: Request, data: FormData) -> Template:
    user = user_of(request)
    state_raw = str(data.get("state", ""))
    reason: str | None = None
    if state_raw.startswith("not_ready:"):
        state, reason = PresenceState.NOT_READY, state_raw.split(":", 1)[1][:64] or None
    elif state_raw in (PresenceState.READY, PresenceState.OFFLINE, PresenceState.NOT_READY):
        state = PresenceState(state_raw)
    else:
        raise UnprocessableError("Pick Ready, a not-ready reason, or Offline.")
    async with services_of(request).sessionmaker() as db:
        if reason is not None:
            codes = {r.code for r in await views.not_ready_reasons(db)}
            if reason not in codes:
                raise UnprocessableError(f"Unknown not-ready reason: {reason}.")
    presence = presence_of(request)
    try:
        await presence.set_presence(user.agent_id, state, reason, by_user_id=user.id)
    except ValueError as exc:
        raise Conflict(str(exc)) from exc
    async with services_of(request).sessionmaker() as db:
        ctx = await presence_context(db, user.agent_id or 0)
    return Template(template_name="console/_presence.html", context=ctx)


@post("/offers/{offer_id:int}/accept", status_code=200)
async def accept_offer(request: Request, offer_id: FromPath[int]) -> Response:
    user = user_of(request)
    routing = routing_of(request)
    from hub.routing.service import OfferGone

    try:
        interaction = await guarded(routing.accept_offer(offer_id, user.agent_id))
    except OfferGone as exc:
        raise Conflict(f"This offer is no longer available ({exc or 'taken or expired'}).") from exc
    return await _workspace(request, interaction.id)


@post("/offers/{offer_id:int}/reject", status_code=200)
async def reject_offer(request: Request, offer_id: FromPath[int]) -> Template:
    user = user_of(request)
    routing = routing_of(request)
    from hub.routing.service import OfferGone

    with contextlib.suppress(OfferGone):  # already gone: the refreshed list shows that
        await routing.reject_offer(offer_id, user.agent_id)
    async with services_of(request).sessionmaker() as db:
        offers = await views.pending_offers(db, user.agent_id or 0)
    return Template(template_name="console/_offers.html", context={"offers": offers})


def _text(data: dict[str, Any], field: str, *, required: bool = True) -> str:
    value = str(data.get(field, "")).strip()
    if required and not value:
        raise UnprocessableError(f"The {field} is empty.")
    if len(value) > MAX_REPLY_CHARS:
        raise UnprocessableError(f"The {field} is too long (at most {MAX_REPLY_CHARS} characters).")
    return value


@post("/interactions/{interaction_id:int}/reply", status_code=200)
async def reply(request: Request, interaction_id: FromPath[int]) -> Response:
    """Send a reply, with a file when the channel carries one (a multipart form); the file
    goes through the same content checks as a customer's upload."""
    user = user_of(request)
    form = await _form(request)
    body = _text(form, "reply", required=False)
    subject = _text(form, "subject", required=False)[:300] or None  # email only
    services = services_of(request)
    async with services.sessionmaker() as db:
        if await joined_as(db, interaction_id, user.agent_id) == "conference":
            interaction = await _held(
                db, user, interaction_id, InteractionState.ACTIVE, joined=True
            )
        else:
            interaction = await _held(
                db, user, interaction_id, InteractionState.ACTIVE, InteractionState.WRAP_UP
            )
    upload = await _upload(request, interaction, form)
    if not body and upload is None:
        raise UnprocessableError("The reply is empty.")
    attachments = None
    if upload is not None:  # stored (written and fsynced) before the message that names it
        attachments = [await asyncio.to_thread(services.attachments.describe, *upload)]
    await services.outbox.reply(
        interaction_id,
        body=body,
        agent_id=user.agent_id,
        subject=subject,
        attachments=attachments,
    )
    return Response(content="", media_type="text/html")


async def _form(request: Request) -> FormMultiDict:
    """The posted form, URL-encoded or multipart; a malformed body is a 400, not a 500."""
    try:
        return await request.form()
    except HTTPException:
        raise
    except Exception as exc:
        raise ClientError("The form could not be read (malformed form data).") from exc


async def _upload(
    request: Request, interaction: Interaction, form: FormMultiDict, *, render_check: bool = True
) -> tuple[str, str, bytes] | None:
    """The reply's file as (safe name, sniffed type, bytes), or None; refused with 413/415
    (or 422 on a channel that carries no files) and a reason the agent can act on."""
    from channels.webchat.files import UnsupportedFile, check_upload

    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    channel = ChannelKind(interaction.channel)
    if channel not in ATTACHING_CHANNELS:
        what = "An SMS" if channel == ChannelKind.SMS else f"A {channel.value} reply"
        raise UnprocessableError(
            f"{what} cannot carry files: remove the attachment and send the text alone, "
            "or send the file by email."
        )
    limit = services_of(request).settings.chat_max_attachment_bytes
    data = await upload.read(limit + 1)
    filename, kind = check_upload(upload.filename, data, limit)
    if channel == ChannelKind.FAX:
        if kind != "application/pdf":
            raise UnsupportedFile("A fax reply can attach a PDF only; this file is an image.")
        if render_check:  # refused here, not later in the spool
            from channels.fax.render import pdf_pages

            await _fax_work(request, pdf_pages, data, _fax_limits(request))
    return filename, kind, data


async def _fax_work(request: Request, func: Callable[..., T], *args: Any) -> T:
    """Render fax pages on the fax channel's bounded pool (a thread when it is not running);
    a PDF over the fax limits, or unreadable, is the agent's 413/415 with the reason."""
    from channels.fax.tiff import DocumentRefused
    from channels.webchat.files import FileTooLarge, UnsupportedFile

    fax = services_of(request).extras.get("fax")
    try:
        if fax is not None:
            return await fax.intake.ocr.run(func, *args)
        return await asyncio.to_thread(func, *args)
    except DocumentRefused as exc:
        error = FileTooLarge if exc.too_large else UnsupportedFile
        raise error(f"This PDF cannot be faxed: {exc.reason}.") from exc


def _fax_limits(request: Request) -> Any:
    from channels.fax.settings import FaxSettings

    fax = services_of(request).extras.get("fax")
    return fax.settings.limits if fax is not None else FaxSettings().limits


@post("/interactions/{interaction_id:int}/note", status_code=200)
async def note(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    """A private note: a message the customer never sees (no channel sender is involved)."""
    user = user_of(request)
    body = _text(data, "note")
    services = services_of(request)
    async with services.sessionmaker() as db:
        joined = await joined_as(db, interaction_id, user.agent_id) is not None
        interaction = await _held(db, user, interaction_id, joined=joined)
        message = Message(
            interaction_id=interaction_id,
            inbox_id=interaction.inbox_id,
            direction=Direction.OUTBOUND,
            sender_kind=SenderKind.AGENT,
            agent_id=user.agent_id,
            body=body,
            private=True,
            delivery_status="received",
        )
        db.add(message)
        await db.commit()
    await services.bus.publish(interaction_topic(interaction_id), "message", message_id=message.id)
    return Response(content="", media_type="text/html")


@post("/interactions/{interaction_id:int}/transfer", status_code=200)
async def transfer(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    user = user_of(request)
    target = str(data.get("target", ""))
    note_text = _text(data, "note", required=False) or None
    routing = routing_of(request)
    async with services_of(request).sessionmaker() as db:
        await _held(db, user, interaction_id, InteractionState.ACTIVE)
    kind, _, raw_id = target.partition(":")
    target_id = form_int(raw_id, "Transfer target", lo=1)
    if kind == "queue":
        await guarded(
            routing.transfer_to_queue(
                interaction_id, target_id, by_agent_id=user.agent_id, note=note_text
            )
        )
    elif kind == "agent":
        await guarded(
            routing.transfer_to_agent(
                interaction_id, target_id, by_agent_id=user.agent_id, note=note_text
            )
        )
    else:
        raise UnprocessableError("Pick a queue or an agent to transfer to.")
    return await _gone_workspace(request, "Transferred. The conversation left your console.")


async def _gone_workspace(request: Request, text: str) -> Response:
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        held = await views.my_conversations(db, user.agent_id or 0)
    html = _render_html(request, "console/_empty.html", text=text)
    html += _render_html(request, "console/_conversations.html", held=held, oob=True)
    return Response(content=html, media_type="text/html")


@post("/interactions/{interaction_id:int}/end", status_code=200)
async def end(request: Request, interaction_id: FromPath[int]) -> Response:
    user = user_of(request)
    routing = routing_of(request)
    async with services_of(request).sessionmaker() as db:
        await _held(db, user, interaction_id, InteractionState.ACTIVE)
    await guarded(routing.wrap_up(interaction_id, agent_id=user.agent_id))
    return await _workspace(request, interaction_id)


@post("/interactions/{interaction_id:int}/close", status_code=200)
async def close(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    user = user_of(request)
    routing = routing_of(request)
    notes = _text(data, "notes", required=False)
    disposition_id = opt_int(data.get("disposition_id"), "Disposition", lo=1)
    next_raw = str(data.get("next", "ready"))
    reason: str | None = None
    if next_raw.startswith("not_ready:"):
        next_state, reason = PresenceState.NOT_READY, next_raw.split(":", 1)[1] or None
    elif next_raw in (PresenceState.READY, PresenceState.OFFLINE):
        next_state = PresenceState(next_raw)
    else:
        raise UnprocessableError("Pick what you do next: Ready or a not-ready reason.")
    async with services_of(request).sessionmaker() as db:
        await _held(db, user, interaction_id, InteractionState.ACTIVE, InteractionState.WRAP_UP)
        codes = {d.id: d for d in await views.dispositions(db)}
        if disposition_id is None or disposition_id not in codes:
            raise UnprocessableError("Pick a disposition code.")
        if reason is not None and reason not in {r.code for r in await views.not_ready_reasons(db)}:
            raise UnprocessableError(f"Unknown not-ready reason: {reason}.")
    await guarded(
        routing.close(
            interaction_id,
            agent_id=user.agent_id,
            disposition_id=disposition_id,
            notes=notes,
            next_presence=next_state,
            reason=reason,
        )
    )
    return await _gone_workspace(request, "Closed. Pick a conversation or wait for the next offer.")


# ---------------------------------------------------------------- contacts (screen pop)


@post("/interactions/{interaction_id:int}/contact", status_code=200)
async def create_contact(
    request: Request, interaction_id: FromPath[int], data: FormData
) -> Response:
    """Make the unknown contact a known one, adding the addresses the agent learnt."""
    user = user_of(request)
    name = str(data.get("name", "")).strip()[:200]
    if not name:
        raise UnprocessableError("The contact needs a name.")
    vip = form_int(data.get("vip_level") or 0, "VIP level", lo=0, hi=5)
    async with services_of(request).sessionmaker() as db:
        interaction = await _held(db, user, interaction_id)
        contact = await follow_merges(db, interaction.contact_id)
        before = audit.snapshot(contact)
        for kind in (AddressKind.EMAIL, AddressKind.PHONE):
            raw = str(data.get(kind.value, "")).strip()
            if not raw:
                continue
            try:
                address = normalize_address(kind, raw)
            except AddressError as exc:
                raise UnprocessableError(str(exc)) from exc
            owner = (
                await db.exec(
                    select(ContactIdentity).where(
                        ContactIdentity.kind == kind.value, ContactIdentity.address == address
                    )
                )
            ).first()
            if owner is not None and owner.contact_id != contact.id:
                raise Conflict(
                    f"{address} already belongs to contact #{owner.contact_id}: "
                    "use “Link to an existing contact” instead."
                )
            if owner is None:
                db.add(ContactIdentity(contact_id=contact.id, kind=kind.value, address=address))  # type: ignore[arg-type]
        contact.name = name
        contact.vip_level = vip
        contact.known = True
        db.add(contact)
        audit.record(
            db,
            user_id=user.id,
            action="contact.create",
            entity="contact",
            entity_id=contact.id,
            before=before,
            after=audit.snapshot(contact),
        )
        try:
            await db.commit()
        except IntegrityError as exc:
            raise Conflict("That address was just added to another contact.") from exc
    return await _workspace(request, interaction_id)


@post("/interactions/{interaction_id:int}/block", status_code=200)
async def block_contact(
    request: Request, interaction_id: FromPath[int], data: FormData
) -> Response:
    """Block the customer of a conversation the agent holds, with a reason (audited). New
    contacts from them are still stored, closed at once, and listed for supervisors."""
    reason = str(data.get("reason", "")).strip()[:200]
    if not reason:
        raise UnprocessableError("Say why the customer is blocked: supervisors will see it.")
    await _set_blocked(request, interaction_id, reason)
    return await _workspace(request, interaction_id)


@post("/interactions/{interaction_id:int}/unblock", status_code=200)
async def unblock_contact(request: Request, interaction_id: FromPath[int]) -> Response:
    await _set_blocked(request, interaction_id, None)
    return await _workspace(request, interaction_id)


async def _set_blocked(request: Request, interaction_id: int, reason: str | None) -> None:
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        interaction = await _held(db, user, interaction_id)
        contact = await follow_merges(db, interaction.contact_id)
        await set_contact_blocked(db, contact, reason, user.id)
        await db.commit()


@get("/contacts/search")
async def search_contacts(
    request: Request, q: FromQuery[str] = "", interaction: FromQuery[int] = 0
) -> Template:
    query = q.strip()[:100]
    found: list[tuple[Contact, list[ContactIdentity]]] = []
    if len(query) >= 2:
        pattern = f"%{query.lower()}%"
        async with services_of(request).sessionmaker() as db:
            by_address = select(ContactIdentity.contact_id).where(
                col(ContactIdentity.address).ilike(pattern)
            )
            rows = (
                await db.exec(
                    select(Contact)
                    .where(
                        col(Contact.merged_into_id).is_(None),
                        or_(col(Contact.name).ilike(pattern), col(Contact.id).in_(by_address)),
                    )
                    .order_by(col(Contact.id))
                    .limit(10)
                )
            ).all()
            for contact in rows:
                ids = (
                    await db.exec(
                        select(ContactIdentity).where(ContactIdentity.contact_id == contact.id)
                    )
                ).all()
                found.append((contact, list(ids)))
    return Template(
        template_name="console/_search.html",
        context={"found": found, "iid": interaction, "q": query},
    )


@post("/interactions/{interaction_id:int}/link", status_code=200)
async def link_contact(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    """Link = merge this interaction's unknown contact into the chosen existing one."""
    user = user_of(request)
    keep_id = form_int(data.get("contact_id"), "Contact", lo=1)
    async with services_of(request).sessionmaker() as db:
        interaction = await _held(db, user, interaction_id)
        current = await follow_merges(db, interaction.contact_id)
        keep = await db.get(Contact, keep_id)
        if keep is None:
            raise NotFoundException(f"Contact {keep_id} does not exist.")
        before = {"keep": audit.snapshot(keep), "merged": audit.snapshot(current)}
        try:
            kept = await merge_contacts(db, keep_id, current.id)  # type: ignore[arg-type]
        except (ValueError, LookupError) as exc:
            raise Conflict(str(exc)) from exc
        audit.record(
            db,
            user_id=user.id,
            action="contact.merge",
            entity="contact",
            entity_id=kept.id,
            before=before,
            after={"keep": audit.snapshot(kept), "merged_id": current.id},
        )
        await db.commit()
    return await _workspace(request, interaction_id)


@get("/history/{interaction_id:int}")
async def past_interaction(request: Request, interaction_id: FromPath[int]) -> Template:
    """A past interaction of the customer, whole and read-only: messages, notes, the
    disposition and the wrap-up notes."""
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        conv = await views.conversation(db, interaction_id)
        if conv is None:
            raise NotFoundException(f"Interaction {interaction_id} does not exist.")
        if not await _can_read(db, user, conv.interaction):
            raise PermissionDeniedException(
                "You can open a customer's past interactions while you hold one of theirs."
            )
        disposition = (
            await db.get(Disposition, conv.interaction.disposition_id)
            if conv.interaction.disposition_id
            else None
        )
    return Template(
        template_name="console/_past.html", context={"conv": conv, "disposition": disposition}
    )


@get("/transcripts/{recording_id:int}")
async def transcript_status(request: Request, recording_id: FromPath[int]) -> Template:
    """A recording's transcript: its status while queued or running (the partial polls
    itself until it is done or failed), then the redacted segments per speaker."""
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        recording = await db.get(Recording, recording_id)
        interaction = (
            await db.get(Interaction, recording.interaction_id) if recording is not None else None
        )
        if recording is None or interaction is None:
            raise NotFoundException(f"Recording {recording_id} does not exist.")
        if not await _can_read(db, user, interaction):
            raise PermissionDeniedException("You may only read transcripts of your own calls.")
        tv = await views.transcript_view(db, recording_id)
    if tv is None:
        raise NotFoundException(f"Recording {recording_id} has no transcript.")
    return Template(template_name="console/_transcript.html", context={"tv": tv})


@get("/attachments/{message_id:int}/{index:int}")
async def attachment(request: Request, message_id: FromPath[int], index: FromPath[int]) -> Response:
    user = user_of(request)
    services = services_of(request)
    async with services.sessionmaker() as db:
        message = await db.get(Message, message_id)
        if message is None or index >= len(message.attachments):
            raise NotFoundException("No such attachment.")
        interaction = await db.get(Interaction, message.interaction_id)
        if interaction is None or not await _can_read(db, user, interaction):
            raise PermissionDeniedException("This conversation is not assigned to you.")
    from channels.webchat.files import attachment_response

    return attachment_response(services, message.attachments[index])


@get("/messages/{message_id:int}/fax-pages/{index:int}")
async def fax_page(
    request: Request, message_id: FromPath[int], index: FromPath[int], full: FromQuery[bool] = False
) -> Response:
    """A received fax page as PNG: the thumbnail, or the full page (``?full=true``)."""
    user = user_of(request)
    services = services_of(request)
    async with services.sessionmaker() as db:
        message = await db.get(Message, message_id)
        interaction = await db.get(Interaction, message.interaction_id) if message else None
        if message is None or interaction is None:
            raise NotFoundException("No such message.")
        if not await _can_read(db, user, interaction):
            raise PermissionDeniedException("This conversation is not assigned to you.")
    pages = (message.meta.get("fax") or {}).get("pages") or []
    if not 0 <= index < len(pages):
        raise NotFoundException("No such fax page.")
    digest = pages[index]["image" if full else "thumbnail"]
    return Response(
        content=services.attachments.get(digest),
        media_type="image/png",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=86400"},
    )


@post("/interactions/{interaction_id:int}/fax-preview", status_code=200)
async def fax_preview(request: Request, interaction_id: FromPath[int]) -> Response:
    """The pages a fax reply will be sent as (cover, text, attached PDF), before sending."""
    import base64
    from datetime import UTC, datetime

    from channels.fax.render import CoverPage, preview_pngs

    user = user_of(request)
    form = await _form(request)
    body = _text(form, "reply", required=False)
    services = services_of(request)
    async with services.sessionmaker() as db:
        interaction = await _held(
            db, user, interaction_id, InteractionState.ACTIVE, InteractionState.WRAP_UP
        )
        contact = await follow_merges(db, interaction.contact_id)
        number = (
            await db.exec(
                select(ContactIdentity.address).where(
                    ContactIdentity.contact_id == contact.id, ContactIdentity.kind == "phone"
                )
            )
        ).first()
    upload = await _upload(request, interaction, form, render_check=False)  # rendered below
    if not body and upload is None:
        raise UnprocessableError("The reply is empty: write the text or attach a PDF.")
    cover = CoverPage(
        to_number=f"{contact.name} {number or ''}".strip(),
        from_name=user.display_name,
        from_number="",
        subject=interaction.subject or "Your fax",
        reference=f"[#{interaction_id}]",
        sent_at=datetime.now(UTC),
    )
    pdfs = (upload[2],) if upload else ()
    render = functools.partial(preview_pngs, width=300, pdfs=pdfs, limits=_fax_limits(request))
    pngs = await _fax_work(request, render, body, cover)
    images = [base64.b64encode(png).decode("ascii") for png in pngs]
    html = _render_html(request, "console/_fax_preview.html", images=images)
    return Response(content=html, media_type="text/html")


@get("/interactions/{interaction_id:int}/canned")
async def canned_suggestions(
    request: Request, interaction_id: FromPath[int], canned_q: FromQuery[str] = ""
) -> Template:
    """The composer's suggestion list for ``/word``: this queue's responses and the global
    ones, with the conversation's variables filled in (as text: the template escapes it)."""
    user = user_of(request)
    word = canned_q.strip().lstrip("/")[:32]
    async with services_of(request).sessionmaker() as db:
        interaction = await _held(db, user, interaction_id)
        contact = await follow_merges(db, interaction.contact_id)
        queue = await db.get(Queue, interaction.queue_id) if interaction.queue_id else None
        values = canned.values_for(
            customer=contact.name,
            agent=user.display_name,
            queue=queue.name if queue else None,
            interaction_id=interaction_id,
        )
        found = await canned.suggestions(
            db, queue_id=interaction.queue_id, word=word, values=values
        )
    return Template(
        template_name="console/_canned.html",
        context={"found": found, "iid": interaction_id, "word": word},
    )


@get("/session", sync_to_thread=False)
def session_alive(request: Request) -> dict[str, Any]:
    """Answers while the session lives (401 once it has expired or was ended): the console
    asks when its live stream drops, to tell a lost session from a lost network."""
    user = user_of(request)
    return {"user": user.username, "agent_id": user.agent_id}


console_router = Router(
    path="/console",
    guards=[agent_guard],
    route_handlers=[
        console_page,
        show_interaction,
        left_messages,
        pick_up,
        set_presence,
        accept_offer,
        reject_offer,
        reply,
        fax_page,
        fax_preview,
        note,
        transfer,
        end,
        close,
        create_contact,
        block_contact,
        unblock_contact,
        search_contacts,
        past_interaction,
        transcript_status,
        link_contact,
        attachment,
        canned_suggestions,
        session_alive,
    ],
)

route_handlers: list = [console_router]
