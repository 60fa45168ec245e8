"""The agent's call card: hold, mute, recording pause, dial pad and hang-up
(``hub.call_controls``).

Each verb answers 204-like (an empty 200): the card itself changes through the tab's SSE
stream (a ``call`` event), so every tab of the agent, and a watching supervisor, shows the
same card. A verb the call's state does not allow is a 409 whose text the console shows.
"""

from __future__ import annotations

from typing import Annotated, Any

from jinja2 import Environment
from litestar import Request, Router, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Response

from hub.call_controls import CallControls, ControlError
from web.common import ClientError, agent_guard, services_of, user_of

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


class Refused(ClientError):
    status_code = 409


def controls_of(request: Request) -> CallControls:
    runtime = services_of(request).extras.get("voice")
    if runtime is None:
        raise Refused("Voice is turned off on this hub (HUB_VOICE_ENABLED).")
    return runtime.calls.controls


def render_card(env: Environment, iid: int, card: dict[str, Any] | None, me: int | None) -> str:
    return env.get_template("console/_call_card.html").render(iid=iid, card=card, me=me, oob=True)


def _done() -> Response:
    return Response(content="", media_type="text/html")


async def _run(call: Any) -> Response:
    try:
        await call
    except ControlError as exc:
        raise Refused(f"Not possible: {exc}.") from exc
    return _done()


@get("/{interaction_id:int}/card")
async def card(request: Request, interaction_id: FromPath[int]) -> Response:
    """The card as it is now (the workspace loads it; then SSE keeps it current)."""
    user = user_of(request)
    runtime = services_of(request).extras.get("voice")
    snapshot = runtime.calls.controls.card(interaction_id) if runtime is not None else None
    if snapshot is not None and snapshot.get("agent_id") != user.agent_id:
        from models import Role

        if not user.has_role(Role.SUPERVISOR):
            snapshot = None
    env: Environment = request.app.template_engine.engine  # type: ignore[attr-defined]
    html = env.get_template("console/_call_card.html").render(
        iid=interaction_id, card=snapshot, me=user.agent_id, oob=False
    )
    return Response(content=html, media_type="text/html")


@post("/{interaction_id:int}/hold", status_code=200)
async def hold(request: Request, interaction_id: FromPath[int]) -> Response:
    user = user_of(request)
    return await _run(controls_of(request).hold(interaction_id, user.agent_id, user.id))


@post("/{interaction_id:int}/resume", status_code=200)
async def resume(request: Request, interaction_id: FromPath[int]) -> Response:
    user = user_of(request)
    return await _run(controls_of(request).resume(interaction_id, user.agent_id, user.id))


@post("/{interaction_id:int}/mute", status_code=200)
async def mute(request: Request, interaction_id: FromPath[int]) -> Response:
    user = user_of(request)
    return await _run(controls_of(request).mute(interaction_id, user.agent_id, user.id, True))


@post("/{interaction_id:int}/unmute", status_code=200)
async def unmute(request: Request, interaction_id: FromPath[int]) -> Response:
    user = user_of(request)
    return await _run(controls_of(request).mute(interaction_id, user.agent_id, user.id, False))


@post("/{interaction_id:int}/recording/pause", status_code=200)
async def pause_recording(request: Request, interaction_id: FromPath[int]) -> Response:
    user = user_of(request)
    controls = controls_of(request)
    return await _run(controls.recording(interaction_id, user.agent_id, user.id, True))


@post("/{interaction_id:int}/recording/resume", status_code=200)
async def resume_recording(request: Request, interaction_id: FromPath[int]) -> Response:
    user = user_of(request)
    controls = controls_of(request)
    return await _run(controls.recording(interaction_id, user.agent_id, user.id, False))


@post("/{interaction_id:int}/dtmf", status_code=200)
async def dtmf(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    user = user_of(request)
    digits = str(data.get("digits", "")).strip()[:64]
    controls = controls_of(request)
    return await _run(controls.send_dtmf(interaction_id, user.agent_id, user.id, digits))


@post("/{interaction_id:int}/transfer-external", status_code=200)
async def transfer_external(
    request: Request, interaction_id: FromPath[int], data: FormData
) -> Response:
    """Blind transfer through the trunk; the agent goes to wrap-up at once."""
    from hub.call_transfers import transfer_external as start

    user = user_of(request)
    raw = str(data.get("number", ""))[:64]
    return await _run(start(controls_of(request), interaction_id, user.agent_id, user.id, raw))


@post("/{interaction_id:int}/consult-external", status_code=200)
async def consult_external(
    request: Request, interaction_id: FromPath[int], data: FormData
) -> Response:
    """Call a number through the trunk while the caller waits on hold."""
    from hub import call_consult

    user = user_of(request)
    raw = str(data.get("number", ""))[:64]
    controls = controls_of(request)
    return await _run(
        call_consult.consult_external(controls, interaction_id, user.agent_id, user.id, raw)
    )


@post("/{interaction_id:int}/consult", status_code=200)
async def consult(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    """Call another agent, or whoever a queue would route the call to (``queue:<id>``),
    while the caller waits on hold (``hub.call_consult``)."""
    from hub import call_consult
    from web.common import form_int

    user = user_of(request)
    raw = str(data.get("agent_id", ""))
    note = str(data.get("note", "")).strip()[:500]
    controls = controls_of(request)
    if raw.startswith("queue:"):
        queue_id = form_int(raw.removeprefix("queue:"), "Queue to consult", lo=1)
        return await _run(
            call_consult.consult_queue(
                controls, interaction_id, user.agent_id, user.id, queue_id, note
            )
        )
    target = form_int(raw, "Agent to consult", lo=1)
    return await _run(
        call_consult.consult(controls, interaction_id, user.agent_id, user.id, target, note)
    )


@post("/{interaction_id:int}/consult/{step:str}", status_code=200)
async def consult_step(
    request: Request, interaction_id: FromPath[int], step: FromPath[str]
) -> Response:
    """conference (caller joins), drop (the other agent leaves; cancels a consult),
    complete (the other agent keeps the caller)."""
    from hub import call_consult

    verbs = {
        "conference": call_consult.conference,
        "drop": call_consult.drop,
        "complete": call_consult.complete,
    }
    verb = verbs.get(step)
    if verb is None:
        raise Refused(f"Unknown step {step!r}: conference, drop or complete.")
    user = user_of(request)
    return await _run(verb(controls_of(request), interaction_id, user.agent_id, user.id))


@get("/{interaction_id:int}/self-service/options")
async def self_service_options(request: Request, interaction_id: FromPath[int]) -> Response:
    """The dialog steps admins offered to agents (``Dialog.agent_nodes``), as a select."""
    from hub.call_self_service import offered_entries

    async with services_of(request).sessionmaker() as db:
        entries = await offered_entries(db)
    env: Environment = request.app.template_engine.engine  # type: ignore[attr-defined]
    html = env.get_template("console/_self_service_options.html").render(entries=entries)
    return Response(content=html, media_type="text/html")


@post("/{interaction_id:int}/self-service", status_code=200)
async def self_service(request: Request, interaction_id: FromPath[int], data: FormData) -> Response:
    """Send the caller to a dialog step; the result comes back to this agent
    (``hub.call_self_service``)."""
    raw = str(data.get("entry", "")).strip()
    dialog, _, node = raw.partition(":")
    if not dialog.isdigit() or not node:
        raise Refused("Pick a self-service step.")
    user = user_of(request)
    runtime = services_of(request).extras.get("voice")
    if runtime is None:
        raise Refused("Voice is turned off on this hub (HUB_VOICE_ENABLED).")
    dialogs = runtime.calls.dialogs
    return await _run(dialogs.send(interaction_id, user.agent_id, user.id, int(dialog), node[:64]))


@post("/{interaction_id:int}/hangup", status_code=200)
async def hangup(request: Request, interaction_id: FromPath[int]) -> Response:
    user = user_of(request)
    return await _run(controls_of(request).hangup(interaction_id, user.agent_id))


call_card_router = Router(
    path="/console/calls",
    guards=[agent_guard],
    route_handlers=[
        card,
        hold,
        resume,
        mute,
        unmute,
        pause_recording,
        resume_recording,
        dtmf,
        transfer_external,
        consult_external,
        consult,
        consult_step,
        self_service_options,
        self_service,
        hangup,
    ],
)
route_handlers: list = [call_card_router]
