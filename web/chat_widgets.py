"""Admin page for embedding the web chat in customers' own sites (``/admin/widgets``).

Per web chat inbox: the origins allowed to embed it (they become the iframe's
``frame-ancestors`` and the only origins that can start a session), the identity secret
for signed logged-in users (write-only: shown once when made, never again), and the
snippet to copy. The embed routes read the inbox on every request, so a change takes
effect at once in every hub process.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import ChannelKind
from channels.webchat.embed import ORIGINS_KEY, SECRET_KEY, allowed_origins
from hub import audit
from models import Inbox, Role
from web.admin import SECTIONS
from web.common import UnprocessableError, role_guard, services_of, user_of

MAX_ORIGINS = 50


def parse_origins(raw: str) -> list[str]:
    """One origin per line (``https://shop.example``, or with a port); a clear 422 naming
    the first line that is not an origin (a path, a wildcard, a missing scheme)."""
    origins: list[str] = []
    for line in raw.replace(",", "\n").splitlines():
        value = line.strip().rstrip("/")
        if not value:
            continue
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or parts.username
            or "*" in value
        ):
            raise UnprocessableError(
                f"Allowed origins: {value!r} is not an origin. Write scheme, host and "
                "optional port only, e.g. https://shop.example or http://localhost:8080."
            )
        try:
            parts.port  # noqa: B018 (raises on a malformed port)
        except ValueError as exc:
            raise UnprocessableError(f"Allowed origins: {value!r} has a bad port.") from exc
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise UnprocessableError(f"Allowed origins: at most {MAX_ORIGINS}.")
    return origins


async def _inboxes(db: AsyncSession) -> list[Inbox]:
    return list(
        (
            await db.exec(
                select(Inbox).where(Inbox.kind == ChannelKind.WEBCHAT.value).order_by(col(Inbox.id))
            )
        ).all()
    )


def _context(request: Request, inboxes: list[Inbox], **extra: Any) -> dict[str, Any]:
    hub = f"{request.url.scheme}://{request.url.netloc}"
    rows = [
        {
            "inbox": inbox,
            "origins": "\n".join(allowed_origins(inbox)),
            "has_secret": bool((inbox.config or {}).get(SECRET_KEY)),
            "snippet": (
                f'<script src="{hub}/static/widget.js" data-inbox="{inbox.id}" async></script>'
            ),
        }
        for inbox in inboxes
    ]
    return {"sections": SECTIONS, "section": None, "widgets": rows, "hub": hub, **extra}


@get("/")
async def widgets_page(request: Request) -> Template:
    async with services_of(request).sessionmaker() as db:
        inboxes = await _inboxes(db)
    return Template(template_name="admin/widgets.html", context=_context(request, inboxes))


@post("/{inbox_id:int}", status_code=200)
async def save_widget(request: Request, inbox_id: FromPath[int]) -> Template:
    me = user_of(request)
    form = await request.form()
    origins = parse_origins(str(form.get("origins", "") or ""))
    new_secret = None
    async with services_of(request).sessionmaker() as db:
        inbox = await db.get(Inbox, inbox_id)
        if inbox is None or inbox.kind != ChannelKind.WEBCHAT.value:
            raise NotFoundException(f"There is no web chat inbox #{inbox_id}.")
        config = dict(inbox.config or {})
        before = {
            ORIGINS_KEY: allowed_origins(inbox),
            "identity_secret": bool(config.get(SECRET_KEY)),
        }
        config[ORIGINS_KEY] = origins
        if form.get("new_secret"):
            new_secret = secrets.token_urlsafe(32)
            config[SECRET_KEY] = new_secret
        elif form.get("remove_secret"):
            config.pop(SECRET_KEY, None)
        inbox.config = config
        db.add(inbox)
        audit.record(
            db,
            user_id=me.id,
            action="update",
            entity="widget",
            entity_id=inbox.id,
            before=before,  # whether a secret exists, never the secret
            after={ORIGINS_KEY: origins, "identity_secret": bool(config.get(SECRET_KEY))},
        )
        await db.commit()
        inboxes = await _inboxes(db)
    saved = f"Saved the widget of {inbox.name}."
    return Template(
        template_name="admin/widgets.html",
        context=_context(request, inboxes, saved=saved, new_secret=new_secret, secret_for=inbox_id),
    )


route_handlers: list = [
    Router(
        path="/admin/widgets",
        guards=[role_guard(Role.ADMIN)],
        route_handlers=[widgets_page, save_widget],
    )
]
