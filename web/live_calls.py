"""The supervisor's live calls: parties and duration, listen / whisper / barge (switchable
live), leave, and force release with a confirmation (``hub.supervision``).

The table is read from the database (interactions, legs, open segments), so every hub
process renders the same rows; the verbs run on the process that carries the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Router, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.params import Body, FromPath
from litestar.response import Response
from markupsafe import escape
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import call_records as records
from hub import supervision
from hub.call_controls import ControlError
from models import (
    CallLeg,
    CallLegKind,
    Interaction,
    InteractionSegment,
    InteractionState,
    Role,
    SegmentRole,
    SupervisorQueue,
)
from web import views
from web.call_card import Refused, controls_of
from web.common import role_guard, user_of

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


@dataclass(frozen=True, slots=True)
class LiveCallRow:
    interaction_id: int
    customer: str
    agent: str
    since: datetime | None
    supervisor: str
    mode: str
    supervisor_user_id: int | None
    state: str = "active"


def _number(uri: str) -> str:
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[0]


WATCHED_STATES = ("self_service", "queued", "offered", "active")


def matches(interaction: Interaction, customer: str, watch: str) -> bool:
    """Monitoring by number: the caller's number or the DNIS (digits compared, so
    ``+1 555 0100`` finds ``+15550100``), or a node the call's IVR dialog visited."""
    wanted = records.digits(watch)
    data = interaction.data or {}
    if wanted and wanted in (records.digits(customer), records.digits(str(data.get("dnis", "")))):
        return True
    nodes = (data.get("ivr") or {}).get("nodes") or []
    return watch.strip() in nodes


async def live_calls(db: AsyncSession, user_id: int, watch: str = "") -> list[LiveCallRow]:
    """Calls with an agent now, in the queues this supervisor monitors; with ``watch``,
    every open call (in the IVR, waiting or answered) of that number, DNIS or IVR node."""
    states = WATCHED_STATES if watch else (InteractionState.ACTIVE,)
    query = select(Interaction).where(
        Interaction.channel == "voice", col(Interaction.state).in_(states)
    )
    allowed = (
        await db.exec(select(SupervisorQueue.queue_id).where(SupervisorQueue.user_id == user_id))
    ).all()
    if allowed:
        query = query.where(col(Interaction.queue_id).in_(allowed))
    interactions = (await db.exec(query.order_by(col(Interaction.id)))).all()
    if not interactions:
        return []
    ids = [i.id for i in interactions]
    names = await views.agent_names(db)
    legs = (
        await db.exec(
            select(CallLeg).where(
                col(CallLeg.interaction_id).in_(ids), CallLeg.kind == CallLegKind.CUSTOMER
            )
        )
    ).all()
    customer = {leg.interaction_id: _number(leg.remote_uri) for leg in legs}
    if watch:
        interactions = [i for i in interactions if matches(i, customer.get(i.id, ""), watch)]  # type: ignore[arg-type]
        ids = [i.id for i in interactions]
    segments = (
        await db.exec(
            select(InteractionSegment).where(
                col(InteractionSegment.interaction_id).in_(ids),
                col(InteractionSegment.ended_at).is_(None),
            )
        )
    ).all()
    sup: dict[int, InteractionSegment] = {}
    since: dict[int, datetime] = {}
    for s in segments:
        if s.role == SegmentRole.SUPERVISOR:
            sup[s.interaction_id] = s
        elif s.role == SegmentRole.AGENT:
            since[s.interaction_id] = s.started_at
    from models import Agent

    sup_users = {}
    for s in sup.values():
        agent = await db.get(Agent, s.agent_id)
        sup_users[s.interaction_id] = agent.user_id if agent else None
    return [
        LiveCallRow(
            interaction_id=i.id,  # type: ignore[arg-type]
            customer=customer.get(i.id, ""),  # type: ignore[arg-type]
            agent=names.get(i.agent_id, "") if i.agent_id else "",
            since=since.get(i.id) or i.answered_at,  # type: ignore[arg-type]
            supervisor=names.get(sup[i.id].agent_id, "") if i.id in sup else "",
            mode=(sup[i.id].mode or "") if i.id in sup else "",
            supervisor_user_id=sup_users.get(i.id),  # type: ignore[arg-type]
            state=str(i.state),
        )
        for i in interactions
    ]


def _done(text: str) -> Response:
    return Response(
        content=f'<p class="notice ok" role="status">{escape(text)}</p>', media_type="text/html"
    )


async def _guarded(call: Any) -> Any:
    try:
        return await call
    except ControlError as exc:
        raise Refused(f"Not possible: {exc}.") from exc
    except PermissionError as exc:
        raise PermissionDeniedException(f"Not possible: {exc}.") from exc


@post("/{interaction_id:int}/supervise", status_code=200)
async def supervise(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    """Listen, whisper or barge; the same button on a call you are on switches the mode."""
    user = user_of(request)
    mode = str(data.get("mode", ""))
    text = await _guarded(
        supervision.supervise(controls_of(request), interaction_id, user.id, mode)
    )
    return _done(text)


@post("/{interaction_id:int}/leave", status_code=200)
async def leave(request: Request, interaction_id: FromPath[int]) -> Response:
    user = user_of(request)
    await _guarded(supervision.stop_supervising(controls_of(request), interaction_id, user.id))
    return _done("You left the call.")


@post("/{interaction_id:int}/release", status_code=200)
async def release(request: Request, interaction_id: FromPath[int]) -> Response:
    user = user_of(request)
    await _guarded(supervision.force_release(controls_of(request), interaction_id, user.id))
    return _done(f"Call #{interaction_id} released.")


live_calls_router = Router(
    path="/supervisor/calls",
    guards=[role_guard(Role.SUPERVISOR)],
    route_handlers=[supervise, leave, release],
)
route_handlers: list = [live_calls_router]
