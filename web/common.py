"""Helpers shared by the web controllers: services, templates, clear 4xx errors, revocation.

Why a revocation mark: sessions are server-side and keyed by an opaque id the supervisor
does not know, so "force logout" stores a per-user timestamp; every web guard compares it
with the session's login time and ends older sessions.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import ResponseHeader
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Template
from litestar.stores.base import Store

from hub.auth import CurrentUser
from hub.services import Services
from models import Role

# Defence in depth: even if some customer text escaped escaping, no inline script would run.
SECURITY_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value=(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
            "frame-ancestors 'none'; form-action 'self'"
        ),
    ),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
]


class ClientError(HTTPException):
    """A 4xx whose ``detail`` is shown to the user as is (keep it short and clear)."""

    status_code = 400


class UnprocessableError(ClientError):
    status_code = 422


class ServiceUnavailable(HTTPException):
    status_code = 503


def services_of(connection: ASGIConnection) -> Services:
    return connection.app.state.services


def user_of(connection: ASGIConnection) -> CurrentUser:
    user = connection.user if "user" in connection.scope else None
    if not isinstance(user, CurrentUser):
        raise NotAuthorizedException("Please log in.")
    return user


def routing_of(connection: ASGIConnection) -> Any:
    """The routing service; a clear 503 until the routing engine runs in this process."""
    routing = getattr(services_of(connection), "routing", None)
    if routing is None:
        raise ServiceUnavailable("Routing is not running in this hub process.")
    return routing


def presence_of(connection: ASGIConnection) -> Any:
    presence = getattr(services_of(connection), "presence", None)
    if presence is None:
        raise ServiceUnavailable("Presence is not running in this hub process.")
    return presence


def _store(connection: ASGIConnection) -> Store:
    return connection.app.stores.get("sessions")


def _revocation_key(user_id: int) -> str:
    return f"revoked-user-{user_id}"


async def revoke_sessions(connection: ASGIConnection, user_id: int) -> None:
    """End every session of ``user_id`` that started before now (force logout)."""
    await _store(connection).set(_revocation_key(user_id), str(time.time()), expires_in=13 * 3600)


async def session_is_revoked(connection: ASGIConnection, user_id: int) -> bool:
    raw = await _store(connection).get(_revocation_key(user_id))
    if raw is None:
        return False
    login_at = connection.session.get("login_at", 0) if "session" in connection.scope else 0
    return float(raw) >= float(login_at or 0)


def role_guard(*roles: Role):
    """Guard: logged in, session not revoked, and holding one of ``roles`` (admin passes)."""

    async def guard(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
        user = user_of(connection)
        if await session_is_revoked(connection, user.id):
            connection.clear_session()
            raise NotAuthorizedException("Your session was ended by a supervisor.")
        if roles and not user.has_role(*roles):
            wanted = " or ".join(r.value for r in roles)
            raise PermissionDeniedException(f"This page is for the {wanted} role.")

    return guard


async def agent_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Guard: a live session of a user with an agent profile."""
    await role_guard()(connection, handler)
    if user_of(connection).agent_id is None:
        raise PermissionDeniedException("This page is for agents; your user has no agent profile.")


def page(name: str, request: Request, **context: Any) -> Template:
    """Render a template with the current user and the common context."""
    user = request.user if "user" in request.scope else None
    return Template(
        template_name=name,
        context={"user": user if isinstance(user, CurrentUser) else None, **context},
    )


def form_int(value: Any, field: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """Parse a form integer or raise a 422 naming the field."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise UnprocessableError(f"{field} must be a whole number.") from None
    if lo is not None and number < lo:
        raise UnprocessableError(f"{field} must be at least {lo}.")
    if hi is not None and number > hi:
        raise UnprocessableError(f"{field} must be at most {hi}.")
    return number


def opt_int(value: Any, field: str, *, lo: int | None = None, hi: int | None = None) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    return form_int(value, field, lo=lo, hi=hi)
