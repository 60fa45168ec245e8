"""Supervisor verbs on text conversations (web chat, SMS, email, Telegram): the same
whisper and barge as on calls, where they make sense.

- **whisper**: a private note on the conversation that the agent sees live (the customer
  never does);
- **barge**: the supervisor writes to the customer, through the channel's outbox like any
  reply.

Both are audited and kept as ``ControlEvent`` rows, and allowed only on conversations of
queues the supervisor monitors (``SupervisorQueue``).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Body, FromPath
from litestar.response import Response
from markupsafe import escape

from hub import audit
from hub.events import interaction_topic
from hub.supervision import may_monitor
from models import (
    ControlEvent,
    ControlKind,
    Direction,
    Interaction,
    InteractionState,
    Message,
    Role,
    SenderKind,
)
from web.call_card import Refused
from web.common import UnprocessableError, role_guard, services_of, user_of

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
MAX_TEXT = 10_000


async def _checked(
    request: Request, interaction_id: int, data: FormData
) -> tuple[Interaction, str]:
    user = user_of(request)
    text = str(data.get("text", "")).strip()
    if not text:
        raise UnprocessableError("Write something first.")
    if len(text) > MAX_TEXT:
        raise UnprocessableError(f"The text is too long (at most {MAX_TEXT} characters).")
    async with services_of(request).sessionmaker() as db:
        interaction = await db.get(Interaction, interaction_id)
        if interaction is None:
            raise NotFoundException(f"Conversation {interaction_id} does not exist.")
        if not await may_monitor(db, user.id, interaction.queue_id):
            raise PermissionDeniedException("You do not monitor this conversation's queue.")
    if interaction.channel == "voice":
        raise Refused("This is a call: use listen, whisper or barge on the live calls.")
    if interaction.state != InteractionState.ACTIVE or interaction.agent_id is None:
        raise Refused("Only a conversation an agent is working on can be supervised.")
    if user.agent_id is None:
        raise Refused("You need an agent profile to write in conversations.")
    return interaction, text


async def _record(request: Request, interaction: Interaction, mode: str) -> None:
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        db.add(
            ControlEvent(
                interaction_id=interaction.id,  # type: ignore[arg-type]
                kind=ControlKind.SUPERVISOR_JOIN,
                user_id=user.id,
                detail={"mode": mode, "channel": interaction.channel},
            )
        )
        audit.record(
            db,
            user_id=user.id,
            action=f"chat.{mode}",
            entity="interaction",
            entity_id=interaction.id,
            after={"agent_id": interaction.agent_id, "channel": interaction.channel},
        )
        await db.commit()


def _done(text: str) -> Response:
    return Response(
        content=f'<p class="notice ok" role="status">{escape(text)}</p>', media_type="text/html"
    )


@post("/{interaction_id:int}/whisper", status_code=200)
async def whisper(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    """A note only the agent (and supervisors) see, shown in their console at once."""
    interaction, text = await _checked(request, interaction_id, data)
    user = user_of(request)
    services = services_of(request)
    async with services.sessionmaker() as db:
        message = Message(
            interaction_id=interaction_id,
            inbox_id=interaction.inbox_id,
            direction=Direction.OUTBOUND,
            sender_kind=SenderKind.AGENT,
            agent_id=user.agent_id,
            body=f"Whisper from {user.display_name}: {text}",
            private=True,
            delivery_status="received",
        )
        db.add(message)
        await db.commit()
    await _record(request, interaction, "whisper")
    await services.bus.publish(interaction_topic(interaction_id), "message", message_id=message.id)
    return _done("Whispered to the agent.")


@post("/{interaction_id:int}/barge", status_code=200)
async def barge(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    """The supervisor writes to the customer, like a reply (the channel delivers it)."""
    interaction, text = await _checked(request, interaction_id, data)
    user = user_of(request)
    await _record(request, interaction, "barge")
    await services_of(request).outbox.reply(interaction_id, body=text, agent_id=user.agent_id)
    return _done("Sent to the customer.")


text_supervision_router = Router(
    path="/supervisor/interactions",
    guards=[role_guard(Role.SUPERVISOR)],
    route_handlers=[whisper, barge],
)
route_handlers: list = [text_supervision_router]
