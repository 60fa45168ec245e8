"""The web chat widget that customers embed in their own site.

The host page loads ``/static/widget.js`` (one ``<script>`` tag an admin copies from the
admin pages). Its chat runs in an iframe of the hub. Why not a cookie: browsers block
third-party cookies, so the visitor's identity lives in the host page's ``localStorage``
as a token the hub signed, handed to the iframe with ``postMessage`` and sent back on every
request as a header. The inbox lists the origins allowed to embed it; they are the
iframe's ``frame-ancestors`` and the origins whose session requests get a CORS answer,
and nothing else may start a session. A host whose backend knows the logged-in user signs
``user_id`` and ``email`` with the inbox's secret (HMAC-SHA256); the chat then joins that
user's contact, on every device.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from litestar import Request, Response, Router, get, post
from litestar.datastructures import ResponseHeader
from litestar.exceptions import PermissionDeniedException
from litestar.response import Template
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import AddressKind
from channels.webchat.routes import (
    BadChatRequest,
    _form,
    _sign,
    chat_urls,
    current_interaction,
    status_context,
    transcript,
    verify_token,
    visitor_of,
    webchat_inbox,
)
from hub.contacts import follow_merges
from models import Contact, ContactIdentity, Inbox, utcnow
from web.common import SECURITY_HEADERS

ORIGINS_KEY = "allowed_origins"  # Inbox.config: the sites that may embed this inbox's chat
SECRET_KEY = "identity_secret"  # noqa: S105 (Inbox.config key: signs logged-in users)


def allowed_origins(inbox: Inbox) -> list[str]:
    origins = (inbox.config or {}).get(ORIGINS_KEY) or []
    return [str(o) for o in origins if isinstance(o, str)]


def identity_signature(secret: str, user_id: str, email: str = "") -> str:
    """What the customer's backend computes for a logged-in user (documented in the admin
    page): hex HMAC-SHA256 of ``user_id`` and ``email`` joined by a newline."""
    return hmac.new(secret.encode(), f"{user_id}\n{email}".encode(), hashlib.sha256).hexdigest()


def _user_visitor(inbox_id: int, user_id: str) -> str:
    """One visitor id per logged-in user and inbox, the same on every device."""
    digest = hashlib.sha256(f"{inbox_id}:{user_id}".encode()).hexdigest()
    return f"u_{digest[:40]}"


def _embed_headers(inbox: Inbox) -> list[ResponseHeader]:
    ancestors = " ".join(allowed_origins(inbox)) or "'none'"
    headers = []
    for header in SECURITY_HEADERS:
        if header.name == "Content-Security-Policy":
            value = (header.value or "").replace(
                "frame-ancestors 'none'", f"frame-ancestors {ancestors}"
            )
            header = ResponseHeader(name=header.name, value=value)
        headers.append(header)
    return headers


async def _inbox(request: Request, inbox_id: int) -> Inbox:
    async with request.app.state.services.sessionmaker() as db:
        return await webchat_inbox(db, inbox_id)


@get("/chat/w/{inbox_id:int}", include_in_schema=False)
async def embed_page(request: Request, inbox_id: int) -> Template:
    """The iframe's page: it waits for the host page's token, then loads the panel."""
    inbox = await _inbox(request, inbox_id)
    origins = allowed_origins(inbox)
    response = Template(
        template_name="chat/embed.html",
        context={"origins_json": json.dumps(origins), **chat_urls(request)},
    )
    for header in _embed_headers(inbox):
        response.headers[header.name] = header.value or ""
    response.headers["Cache-Control"] = "no-store"
    return response


@get("/chat/w/{inbox_id:int}/panel", include_in_schema=False)
async def embed_panel(request: Request, inbox_id: int) -> Response:
    visitor = visitor_of(request)
    if visitor is None:
        raise BadChatRequest("Your chat session is missing: reload the page and try again.")
    services = request.app.state.services
    async with services.sessionmaker() as db:
        inbox = await webchat_inbox(db, inbox_id)
        interaction = await current_interaction(db, visitor, inbox.id)  # type: ignore[arg-type]
        lines = await transcript(db, interaction) if interaction else []
    ctx = await status_context(request, interaction)
    env = request.app.template_engine.engine  # type: ignore[attr-defined]
    html = env.get_template("chat/_panel.html").render(lines=lines, **ctx, **chat_urls(request))
    return Response(content=html, media_type="text/html", headers={"Cache-Control": "no-store"})


def _identity(contact: Contact, kind: AddressKind, address: str) -> ContactIdentity:
    return ContactIdentity(contact_id=contact.id, kind=kind.value, address=address)  # type: ignore[arg-type]


async def _join_user_contact(db: AsyncSession, visitor: str, email: str, name: str) -> None:
    """A signed user's visitor id joins the contact that owns their email address (or a new
    contact holding both), so their chats meet their mail and their other devices."""
    owned = (
        await db.exec(
            select(ContactIdentity).where(
                ContactIdentity.kind == AddressKind.WEBCHAT.value,
                ContactIdentity.address == visitor,
            )
        )
    ).first()
    if owned is not None or not email:
        return
    by_email = (
        await db.exec(
            select(ContactIdentity).where(
                ContactIdentity.kind == AddressKind.EMAIL.value,
                ContactIdentity.address == email.lower(),
            )
        )
    ).first()
    if by_email is not None:
        contact = await follow_merges(db, by_email.contact_id)
    else:
        contact = Contact(name=name[:200], created_at=utcnow())
        db.add(contact)
        await db.flush()
        db.add(
            ContactIdentity(
                contact_id=contact.id, kind=AddressKind.EMAIL.value, address=email.lower()
            )
        )  # type: ignore[arg-type]
    db.add(ContactIdentity(contact_id=contact.id, kind=AddressKind.WEBCHAT.value, address=visitor))  # type: ignore[arg-type]
    await db.commit()


@post("/chat/w/{inbox_id:int}/session", status_code=200, include_in_schema=False)
async def embed_session(request: Request, inbox_id: int) -> Response:
    """The host page asks for its visitor token (a simple cross-origin POST, so no
    preflight): the same token back when it is valid, a new one otherwise."""
    inbox = await _inbox(request, inbox_id)
    origin = request.headers.get("origin", "")
    if origin not in allowed_origins(inbox):
        raise PermissionDeniedException(
            f"The site {origin or '(unknown)'} may not embed this chat: "
            "an admin adds its origin to the inbox's allowed origins."
        )
    cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    form = await _form(request)
    user_id = str(form.get("user_id", "") or "").strip()[:200]
    email = str(form.get("email", "") or "").strip()[:320]
    if user_id:
        secret = str((inbox.config or {}).get(SECRET_KEY) or "")
        signature = str(form.get("signature", "") or "")
        if not secret or not hmac.compare_digest(
            identity_signature(secret, user_id, email), signature
        ):
            detail = (
                "The signed identity does not verify: check the inbox's identity secret "
                "and that user_id and email are signed as documented."
            )
            return Response(content={"detail": detail}, status_code=403, headers=cors)
        visitor = _user_visitor(inbox_id, user_id)
        async with request.app.state.services.sessionmaker() as db:
            await _join_user_contact(db, visitor, email, str(form.get("name", "") or ""))
    else:
        token = str(form.get("token", "") or "")
        visitor = verify_token(request, token) or secrets.token_urlsafe(18)
    return Response(
        content={"token": _sign(request, visitor)},
        headers=cors,
    )


route_handlers: list = [
    Router(path="/", route_handlers=[embed_page]),  # its own CSP: frame-ancestors per inbox
    Router(
        path="/", response_headers=SECURITY_HEADERS, route_handlers=[embed_panel, embed_session]
    ),
]
