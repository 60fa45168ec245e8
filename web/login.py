"""Login and logout: argon2 check, a fresh server-side session, then the user's home page."""

from __future__ import annotations

import contextlib
import time
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template
from sqlmodel import select

from hub.auth import CurrentUser, verify_password
from models import Agent, Role, User
from web.common import page, services_of

HOME_BY_ROLE = {
    Role.AGENT: "/console",
    Role.SUPERVISOR: "/supervisor",
    Role.ADMIN: "/admin",
    Role.QA: "/",
}


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: an open redirect would let a link send users elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@get("/login", sync_to_thread=False)
def login_form(
    request: Request, next: FromQuery[str | None] = None, reason: FromQuery[str | None] = None
) -> Template:
    return page("login.html", request, next=_safe_next(next) or "", error=None, reason=reason)


@post("/login", status_code=200)
async def login(
    request: Request,
    data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template | Redirect:
    username = str(data.get("username", "")).strip()[:64]
    password = str(data.get("password", ""))[:512]
    target = _safe_next(str(data.get("next", "")))
    async with services_of(request).sessionmaker() as db:
        user = (await db.exec(select(User).where(User.username == username))).first()
        ok = user is not None and user.active and verify_password(user.password_hash, password)
        has_agent = False
        if ok and user is not None:
            has_agent = (
                await db.exec(select(Agent).where(Agent.user_id == user.id))
            ).first() is not None
    if not ok or user is None:
        template = page(
            "login.html", request, next=target or "", error="Wrong username or password."
        )
        template.status_code = 401
        return template
    request.clear_session()
    request.set_session({"user_id": user.id, "login_at": time.time()})
    role = Role(user.role)
    home = HOME_BY_ROLE[role]
    if role is Role.SUPERVISOR and not has_agent:
        home = "/supervisor"
    return Redirect(target or home, status_code=303)


@post("/logout", status_code=303)
async def logout(request: Request) -> Redirect:
    await _offline_on_logout(request)
    request.clear_session()
    return Redirect("/login", status_code=303)


async def _offline_on_logout(request: Request) -> None:
    """An agent who logs out stops receiving offers (best effort: presence may be absent)."""
    user = request.user if "user" in request.scope else None
    presence = getattr(services_of(request), "presence", None)
    if isinstance(user, CurrentUser) and user.agent_id is not None and presence is not None:
        from models import PresenceState

        with contextlib.suppress(Exception):  # logout must always succeed
            await presence.set_presence(user.agent_id, PresenceState.OFFLINE, "logout")


@get("/", sync_to_thread=False)
def home(request: Request) -> Redirect | Template:
    user = request.user if "user" in request.scope else None
    if not isinstance(user, CurrentUser):
        return Redirect("/login")
    if user.role is Role.QA:
        return page("home.html", request)
    return Redirect(HOME_BY_ROLE[user.role])


route_handlers: list = [login_form, login, logout, home]
