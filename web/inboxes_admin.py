"""Admin pages for inboxes (``/admin/inboxes``): every channel's entry points.

List, create, edit, deactivate; per inbox its channel settings (secrets write-only), its
dialog, default queue and hours; and "Test connection", which talks to the real service.
Saving publishes ``config``/``inbox`` on the bus, so every hub process reloads it.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlmodel import col, select

from channels.base import ChannelKind
from hub.inbox_config import CLEAR_PREFIX, SET, InboxConfigError, fields_for, form_values
from hub.inbox_probe import check_inbox
from hub.inboxes import KINDS, InboxLinks, announce, list_inboxes, save_inbox, set_active
from models import BusinessHours, Dialog, Inbox, Queue, Role
from web.admin import SECTIONS
from web.common import UnprocessableError, opt_int, page, role_guard, services_of, user_of

KIND_TITLES = {
    ChannelKind.VOICE.value: "Voice (DIDs)",
    ChannelKind.EMAIL.value: "Mailbox (SMTP, IMAP)",
    ChannelKind.SMS.value: "SMS (SMPP or HTTP)",
    ChannelKind.TELEGRAM.value: "Telegram bot",
    ChannelKind.FAX.value: "Fax numbers",
    ChannelKind.WEBCHAT.value: "Web chat",
}


def summary(inbox: Inbox) -> str:
    """One line of what the inbox is, with no secret in it."""
    c = inbox.config or {}
    if inbox.kind == ChannelKind.VOICE.value:
        return ", ".join([*([c["did"]] if c.get("did") else []), *(c.get("dids") or [])])
    if inbox.kind == ChannelKind.EMAIL.value:
        return ", ".join(c.get("email_addresses") or []) or str(c.get("relay_host") or "")
    if inbox.kind == ChannelKind.SMS.value:
        if c.get("provider") == "http":
            return f"HTTP {c.get('twilio_base_url', '')}"
        return f"SMPP {c['smpp_host']}:{c.get('smpp_port', 2775)}" if c.get("smpp_host") else ""
    if inbox.kind == ChannelKind.TELEGRAM.value:
        return str(c.get("api_base_url") or "")
    if inbox.kind == ChannelKind.FAX.value:
        return ", ".join(c.get("fax_numbers") or [])
    return ", ".join(c.get("allowed_origins") or [])


async def _choices(request: Request) -> dict[str, Any]:
    async with services_of(request).sessionmaker() as db:
        return {
            "queues": (await db.exec(select(Queue).order_by(col(Queue.name)))).all(),
            "hours": (await db.exec(select(BusinessHours).order_by(col(BusinessHours.name)))).all(),
            "dialogs": (await db.exec(select(Dialog).order_by(col(Dialog.name)))).all(),
        }


def _base(**extra: Any) -> dict[str, Any]:
    return {"sections": SECTIONS, "section": None, "inboxes_page": True, **extra}


@get("/")
async def inboxes_page(request: Request, saved: str = "") -> Template:
    async with services_of(request).sessionmaker() as db:
        inboxes = await list_inboxes(db)
        names = {
            "queue": {q.id: q.name for q in (await db.exec(select(Queue))).all()},
            "dialog": {d.id: d.name for d in (await db.exec(select(Dialog))).all()},
        }
    rows = [{"inbox": i, "summary": summary(i)} for i in inboxes]
    return page(
        "admin/inboxes.html",
        request,
        **_base(rows=rows, names=names, kinds=KIND_TITLES, saved=saved),
    )


async def _form_page(
    request: Request,
    *,
    kind: str,
    inbox: Inbox | None,
    values: dict[str, str],
    links: dict[str, Any],
    error: str = "",
    status_code: int = 200,
) -> Template:
    template = page(
        "admin/inbox_form.html",
        request,
        **_base(
            kind=kind,
            kind_title=KIND_TITLES[kind],
            inbox=inbox,
            fields=fields_for(kind),
            values=values,
            links=links,
            error=error,
            SET=SET,
            clear_prefix=CLEAR_PREFIX,
            **(await _choices(request)),
        ),
    )
    template.status_code = status_code
    return template


@get("/new")
async def new_inbox(request: Request, kind: str = "") -> Template:
    if kind not in KINDS:
        raise UnprocessableError(f"Choose a channel kind: {', '.join(KINDS)}.")
    links = {"name": "", "default_queue_id": None, "hours_id": None, "dialog_id": None}
    return await _form_page(
        request, kind=kind, inbox=None, values={}, links={**links, "active": True}
    )


@get("/{inbox_id:int}")
async def edit_inbox(request: Request, inbox_id: FromPath[int]) -> Template:
    async with services_of(request).sessionmaker() as db:
        inbox = await db.get(Inbox, inbox_id)
    if inbox is None:
        raise NotFoundException(f"There is no inbox #{inbox_id}.")
    return await _form_page(
        request,
        kind=inbox.kind,
        inbox=inbox,
        values=form_values(inbox.kind, inbox.config or {}),
        links={
            "name": inbox.name,
            "default_queue_id": inbox.default_queue_id,
            "hours_id": inbox.hours_id,
            "dialog_id": inbox.dialog_id,
            "active": inbox.active,
        },
    )


def _links(form: Any) -> InboxLinks:
    return InboxLinks(
        name=str(form.get("name") or ""),
        default_queue_id=opt_int(form.get("default_queue_id"), "Default queue"),
        hours_id=opt_int(form.get("hours_id"), "Business hours"),
        dialog_id=opt_int(form.get("dialog_id"), "Dialog"),
        active=str(form.get("active") or "") in ("on", "1", "true"),
    )


async def _save(request: Request, inbox_id: int | None) -> Template | Redirect:
    form = await request.form()
    kind = str(form.get("kind") or "")
    links = _links(form)
    services = services_of(request)
    async with services.sessionmaker() as db:
        existing = await db.get(Inbox, inbox_id) if inbox_id is not None else None
        if inbox_id is not None and existing is None:
            raise NotFoundException(f"There is no inbox #{inbox_id}.")
        if existing is not None:
            kind = existing.kind
        try:
            inbox = await save_inbox(
                db,
                user_id=user_of(request).id,
                inbox_id=inbox_id,
                kind=kind,
                links=links,
                form=form,
            )
        except InboxConfigError as exc:
            if kind not in KINDS:
                raise UnprocessableError(str(exc)) from exc
            # show what was typed (never a secret) beside the message
            values = {f.key: str(form.get(f.key) or "") for f in fields_for(kind) if not f.secret}
            if existing is not None:
                old = form_values(kind, existing.config or {})
                values |= {k: v for k, v in old.items() if v == SET}
            return await _form_page(
                request,
                kind=kind,
                inbox=existing,
                values=values,
                links=_links_dict(links),
                error=str(exc),
                status_code=422,
            )
    await announce(services.bus, inbox)
    return Redirect(f"/admin/inboxes?saved={inbox.name}", status_code=303)


def _links_dict(links: InboxLinks) -> dict[str, Any]:
    return {
        "name": links.name,
        "default_queue_id": links.default_queue_id,
        "hours_id": links.hours_id,
        "dialog_id": links.dialog_id,
        "active": links.active,
    }


@post("/", status_code=303)
async def create_inbox(request: Request) -> Template | Redirect:
    return await _save(request, None)


@post("/{inbox_id:int}", status_code=303)
async def update_inbox(request: Request, inbox_id: FromPath[int]) -> Template | Redirect:
    return await _save(request, inbox_id)


@post("/{inbox_id:int}/active", status_code=303)
async def toggle_active(request: Request, inbox_id: FromPath[int]) -> Redirect:
    form = await request.form()
    services = services_of(request)
    async with services.sessionmaker() as db:
        try:
            inbox = await set_active(
                db,
                user_id=user_of(request).id,
                inbox_id=inbox_id,
                active=str(form.get("active") or "") == "1",
            )
        except LookupError as exc:
            raise NotFoundException(str(exc)) from exc
    await announce(services.bus, inbox)
    return Redirect(f"/admin/inboxes?saved={inbox.name}", status_code=303)


@post("/{inbox_id:int}/test", status_code=200)
async def test_connection(request: Request, inbox_id: FromPath[int]) -> Template:
    """Probe the saved settings (with the environment under them) of one inbox."""
    services = services_of(request)
    async with services.sessionmaker() as db:
        inbox = await db.get(Inbox, inbox_id)
    if inbox is None:
        raise NotFoundException(f"There is no inbox #{inbox_id}.")
    results = await check_inbox(
        inbox.kind, inbox.config or {}, services.settings.inbox_test_timeout_seconds
    )
    return Template(template_name="admin/_inbox_test.html", context={"results": results})


route_handlers: list = [
    Router(
        path="/admin/inboxes",
        guards=[role_guard(Role.ADMIN)],
        route_handlers=[
            inboxes_page,
            new_inbox,
            edit_inbox,
            create_inbox,
            update_inbox,
            toggle_active,
            test_connection,
        ],
    )
]
