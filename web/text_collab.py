"""The agent's consult and conference on a text conversation (``hub/text_collab.py``).

Refusals (``CollabRefused``, a ``ValueError``) become a 409 naming the reason (``guarded``).

Each verb answers with a short status line for the agent who clicked; both consoles then
change through their SSE streams (the conversation list, the actions and the notes).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Response
from markupsafe import escape
from sqlmodel import col, select

from hub.text_collab import TextCollab
from models import Agent, Interaction, User
from web import views
from web.common import UnprocessableError, agent_guard, form_int, services_of, user_of
from web.console import guarded

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
MAX_NOTE = 500


def _done(text: str) -> Response:
    return Response(
        content=f'<p class="notice ok" role="status">{escape(text)}</p>', media_type="text/html"
    )


def _collab(request: Request) -> TextCollab:
    return TextCollab(services_of(request))


def _target(data: dict[str, Any]) -> int:
    raw = str(data.get("agent_id", "")).strip()
    if not raw:
        raise UnprocessableError("Pick an agent.")
    return form_int(raw, "Agent", lo=1)


@get("/interactions/{interaction_id:int}/collab/agents")
async def candidates(
    request: Request, interaction_id: FromPath[int], kind: FromQuery[str] = "consult"
) -> Response:
    """The agents to pick from, as ``<option>``s, read when the picker opens (who is online
    changes while a conversation runs): anyone online for a consult; for a conference, an
    agent taking work with a free slot on the channel."""
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        interaction = await db.get(Interaction, interaction_id)
        if interaction is None:
            raise NotFoundException(f"Interaction {interaction_id} does not exist.")
        if kind == "conference":
            rows = (await views.transfer_targets(db, interaction))["agents"]
        else:
            rows = (
                await db.exec(
                    select(Agent, User)
                    .join(User)
                    .where(col(User.active).is_(True), Agent.presence != "offline")
                    .order_by(User.display_name)
                )
            ).all()
    label = "Add an agent…" if kind == "conference" else "Consult an agent…"
    options = [f'<option value="">{escape(label)}</option>']
    options += [
        f'<option value="{a.id}">{escape(u.display_name)}</option>'
        for a, u in rows
        if a.id != user.agent_id and a.id != interaction.agent_id
    ]
    return Response(content="".join(options), media_type="text/html")


@post("/interactions/{interaction_id:int}/consult", status_code=200)
async def consult(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    """Ask another agent about this conversation: they see it, with its history, and the
    two of you write private notes on it."""
    user = user_of(request)
    note = str(data.get("note", "")).strip()
    if len(note) > MAX_NOTE:
        raise UnprocessableError(f"The note is too long (at most {MAX_NOTE} characters).")
    name = await guarded(
        _collab(request).consult(
            interaction_id,
            by_agent_id=user.agent_id,  # type: ignore[arg-type]
            user_id=user.id,
            target_id=_target(data),
            note=note,
        )
    )
    return _done(f"Consulting {name}: your notes here are private.")


@post("/interactions/{interaction_id:int}/conference", status_code=200)
async def conference(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    """Add another agent to the conversation: both of you write to the customer."""
    user = user_of(request)
    name = await guarded(
        _collab(request).conference(
            interaction_id,
            by_agent_id=user.agent_id,  # type: ignore[arg-type]
            user_id=user.id,
            target_id=_target(data),
        )
    )
    return _done(f"{name} joined the conversation.")


@post("/interactions/{interaction_id:int}/collab/end", status_code=200)
async def end_collab(request: Request, interaction_id: FromPath[int]) -> Response:
    """Close the consult, leave the conference, or remove the other agent from it."""
    user = user_of(request)
    await guarded(
        _collab(request).end(
            interaction_id,
            agent_id=user.agent_id,  # type: ignore[arg-type]
            user_id=user.id,
        )
    )
    return _done("Done.")


@post("/interactions/{interaction_id:int}/collab/hand-over", status_code=200)
async def hand_over(request: Request, interaction_id: FromPath[int]) -> Response:
    """Give the conversation to the consulted or conferenced agent, and leave it."""
    user = user_of(request)
    name = await guarded(
        _collab(request).hand_over(
            interaction_id,
            agent_id=user.agent_id,  # type: ignore[arg-type]
            user_id=user.id,
        )
    )
    return _done(f"{name} has the conversation now.")


text_collab_router = Router(
    path="/console",
    guards=[agent_guard],
    route_handlers=[candidates, consult, conference, end_collab, hand_over],
)
route_handlers: list = [text_collab_router]
