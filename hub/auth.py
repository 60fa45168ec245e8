"""Login with argon2 hashes and server-side sessions; role guards for every route.

Only the customer chat and channel webhooks are reachable without a login. CSRF protects
every state-changing form (HTMX sends the token in ``hx-headers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from sqlmodel import select

from models import Agent, Role, User

_hasher = PasswordHasher()

# Paths a customer or a provider reaches without a login.
PUBLIC_PATHS = [
    "/login",
    "/static",
    "/assets",
    "/chat",
    "/webhooks",
    "/health",
    "/schema",
    "/demo/accounts",  # hub.demo_api: demo seed only, loopback only
]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """What a request knows about who is logged in (kept small: it is in every request)."""

    id: int
    username: str
    display_name: str
    role: Role
    agent_id: int | None

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles or self.role == Role.ADMIN


async def retrieve_user(session: dict[str, Any], connection: ASGIConnection) -> CurrentUser | None:
    """Load the session's user from the database, so a deactivated user is out at once."""
    user_id = session.get("user_id")
    if not isinstance(user_id, int):
        return None
    maker = connection.app.state.sessionmaker
    async with maker() as db:
        user = await db.get(User, user_id)
        if user is None or not user.active:
            return None
        agent = (await db.exec(select(Agent).where(Agent.user_id == user.id))).first()
        return CurrentUser(
            id=user.id,  # type: ignore[arg-type]
            username=user.username,
            display_name=user.display_name,
            role=Role(user.role),
            agent_id=agent.id if agent else None,
        )


def require_role(*roles: Role):
    """Guard: the user must hold one of ``roles`` (admins pass every guard)."""

    def guard(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
        user = connection.user if "user" in connection.scope else None
        if not isinstance(user, CurrentUser):
            raise NotAuthorizedException("Please log in.")
        if not user.has_role(*roles):
            wanted = " or ".join(r.value for r in roles)
            raise PermissionDeniedException(f"This page is for the {wanted} role.")

    return guard


def require_agent(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    """Guard: the user has an agent profile (supervisors may have one too)."""
    user = connection.user if "user" in connection.scope else None
    if not isinstance(user, CurrentUser):
        raise NotAuthorizedException("Please log in.")
    if user.agent_id is None:
        raise PermissionDeniedException("This page is for agents; your user has no agent profile.")
