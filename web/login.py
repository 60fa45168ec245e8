"""Login and logout: argon2 check, a fresh server-side session, then the user's home page."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template
from sqlmodel import select

from hub import audit
from hub.auth import CurrentUser, verify_password
from hub.login_throttle import account_wait, client_address, lock_for_failure
from hub.routing.snapshot import as_utc
from models import Agent, Role, User
from models.base import utcnow
from web.common import page, services_of

HOME_BY_ROLE = {
    Role.AGENT: "/console",
    Role.SUPERVISOR: "/supervisor",
    Role.ADMIN: "/admin",
    Role.QA: "/qa",
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
    services = services_of(request)
    settings = services.settings
    address = client_address(
        request.client.host if request.client else "",
        request.headers.get("x-forwarded-for", ""),
        settings.trusted_proxies,
    )
    slow_down = services.login_addresses.delay(address)
    if slow_down:
        await asyncio.sleep(slow_down)

    def refused(error: str, status: int) -> Template:
        template = page("login.html", request, next=target or "", error=error)
        template.status_code = status
        return template

    async with services.sessionmaker() as db:
        user = (await db.exec(select(User).where(User.username == username))).first()
        now = utcnow()
        if user is not None and as_utc(user.locked_until) and as_utc(user.locked_until) <= now:
            user.locked_until, user.failed_logins = None, 0  # the lock ran out: start afresh
        if user is not None:
            wait = account_wait(
                user.failed_logins,
                as_utc(user.last_failed_login_at),
                as_utc(user.locked_until),
                now,
                settings.login_policy,
            )
            if wait > 0:
                # No password is checked while waiting: a guesser learns nothing.
                what = "is locked" if user.locked_until else "must wait"
                return refused(
                    f"Too many wrong passwords: this account {what} for {_duration(wait)}. "
                    "An administrator can unlock it.",
                    429,
                )
        ok = user is not None and user.active and verify_password(user.password_hash, password)
        if not ok or user is None:
            services.login_addresses.failed(address)
            if user is not None:
                user.failed_logins += 1
                user.last_failed_login_at = now
                lock = lock_for_failure(user.failed_logins, now, settings.login_policy)
                if lock is not None:
                    user.locked_until = lock
                    audit.record(
                        db,
                        user_id=None,
                        action="lock",
                        entity="agents",
                        entity_id=user.id,
                        after={
                            "locked_until": lock.isoformat(),
                            "failed_logins": user.failed_logins,
                            "client": address,
                        },
                    )
                db.add(user)
                await db.commit()
            return refused("Wrong username or password.", 401)
        if user.failed_logins or user.locked_until:
            user.failed_logins, user.locked_until = 0, None
            db.add(user)
            await db.commit()
        has_agent = (await db.exec(select(Agent).where(Agent.user_id == user.id))).first()
    request.clear_session()
    request.set_session({"user_id": user.id, "login_at": time.time()})
    role = Role(user.role)
    home = HOME_BY_ROLE[role]
    if role is Role.SUPERVISOR and has_agent is None:
        home = "/supervisor"
    return Redirect(target or home, status_code=303)


def _duration(seconds: float) -> str:
    if seconds >= 90:
        return f"{round(seconds / 60)} minutes"
    return f"{max(1, round(seconds))} seconds"


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
    return Redirect(HOME_BY_ROLE[user.role])


route_handlers: list = [login_form, login, logout, home]
