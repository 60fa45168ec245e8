"""The browser softphone's HTTP side (``hub.softphone``): signalling over the console's
own HTTP, the agent's device choice, and the page's event stream.

- ``POST /softphone/legs/{token}/offer`` (JSON ``{"sdp"}``) → ``{"sdp"}``: non-trickle
  offer/answer (aiortc gathers before answering);
- ``POST /softphone/legs/{token}/lost``: the page lost its connection (the customer is
  held while it negotiates a new one); ``…/hangup``;
- ``GET /softphone/events``: ``softphone`` events for the user's agent (ring, connect,
  stop, lost, reconnected, gave-up, ended), JSON in each SSE message;
- ``POST /softphone/device``: browser, SIP phone, or an external number.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import phonenumbers
from litestar import Request, Router, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Response, ServerSentEvent, Template

from hub.events import Event, agent_topic
from hub.softphone.service import DEVICES, EVENT, Softphone, SoftphoneError
from models import Agent
from web.common import ClientError, agent_guard, services_of, user_of
from web.sse import Message, TopicMux, run_stream

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
MAX_SDP = 20_000


class SoftphoneRefused(ClientError):
    status_code = 409


def _softphone(request: Request) -> Softphone:
    runtime = services_of(request).extras.get("voice")
    if runtime is None or not runtime.softphone.enabled:
        raise SoftphoneRefused(
            "The browser softphone is turned off on this hub (HUB_VOICE_ENABLED, "
            "HUB_SOFTPHONE_ENABLED)."
        )
    return runtime.softphone


def _agent_id(request: Request) -> int:
    agent_id = user_of(request).agent_id
    assert agent_id is not None  # agent_guard
    return agent_id


async def _guarded(call: Any) -> Any:
    try:
        return await call
    except SoftphoneError as exc:
        error = ClientError(str(exc))
        error.status_code = exc.status
        raise error from exc


@post("/legs/{token:str}/offer", status_code=200)
async def offer(request: Request, token: FromPath[str]) -> Response:
    raw = await request.body()
    if len(raw) > MAX_SDP:
        raise ClientError("The SDP offer is too large.")
    try:
        sdp = json.loads(raw)["sdp"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ClientError('Send JSON {"sdp": "<the offer>"}.') from exc
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise ClientError("The SDP offer must start with v=0.")
    answer = await _guarded(_softphone(request).answer(token, _agent_id(request), sdp))
    return Response(content={"sdp": answer, "type": "answer"}, media_type="application/json")


@post("/legs/{token:str}/lost", status_code=200)
async def lost(request: Request, token: FromPath[str]) -> Response:
    await _guarded(_softphone(request).lost(token, _agent_id(request)))
    return Response(content="", media_type="text/plain")


@post("/legs/{token:str}/hangup", status_code=200)
async def hangup(request: Request, token: FromPath[str]) -> Response:
    await _guarded(_softphone(request).hangup(token, _agent_id(request)))
    return Response(content="", media_type="text/plain")


async def device_context(request: Request) -> dict[str, Any]:
    """The device panel's data (console and supervisor pages)."""
    async with services_of(request).sessionmaker() as db:
        agent = await db.get(Agent, _agent_id(request))
    runtime = services_of(request).extras.get("voice")
    softphone = runtime.softphone if runtime is not None else None
    return {
        "device": agent.device if agent else "sip",
        "device_number": (agent.device_number if agent else None) or "",
        "extension": (agent.extension if agent else None) or "",
        "ice_servers": json.dumps(softphone.ice_servers() if softphone else []),
        "softphone_on": bool(softphone and softphone.enabled),
    }


@post("/device", status_code=200)
async def set_device(request: Request, data: FormData) -> Template:
    device = str(data.get("device", ""))
    if device not in DEVICES:
        raise ClientError("Pick the browser, your SIP phone, or an external number.")
    number: str | None = None
    if device == "external":
        raw = str(data.get("number", "")).strip()
        if not raw:
            raise ClientError("Enter the external number the hub should call.")
        region = services_of(request).settings.default_region
        try:
            parsed = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException as exc:
            raise ClientError(f"Not a phone number: {exc}.") from exc
        if not phonenumbers.is_valid_number(parsed):
            raise ClientError("That number is not valid; give it with its country code.")
        number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if device == "browser" and services_of(request).extras.get("voice") is None:
        raise SoftphoneRefused("Voice is turned off on this hub.")
    async with services_of(request).sessionmaker() as db:
        agent = await db.get(Agent, _agent_id(request))
        assert agent is not None
        agent.device = device
        agent.device_number = number if device == "external" else agent.device_number
        db.add(agent)
        await db.commit()
    return Template(template_name="softphone/_device.html", context=await device_context(request))


class SoftphoneStream:
    """Only the agent topic's ``softphone`` events, as JSON."""

    def __init__(self, softphone: Softphone | None, agent_id: int) -> None:
        self.softphone = softphone
        self.agent_id = agent_id

    def topics(self) -> list[str]:
        return [agent_topic(self.agent_id)]

    async def sync(self, mux: TopicMux) -> list[Message]:
        if self.softphone is None:
            return []
        self.softphone.warm()  # a browser agent is here: its worker should be ready
        return [
            Message(event=EVENT, data=json.dumps(item))
            for item in self.softphone.active_tokens(self.agent_id)
        ]

    async def render(self, batch: list[Event], mux: TopicMux) -> list[Message]:
        return [Message(event=EVENT, data=json.dumps(e.data)) for e in batch if e.name == EVENT]


@get("/events")
async def events(request: Request) -> ServerSentEvent:
    services = services_of(request)
    runtime = services.extras.get("voice")
    stream = SoftphoneStream(runtime.softphone if runtime else None, _agent_id(request))
    return ServerSentEvent(
        run_stream(services, stream, heartbeat=services.settings.sse_heartbeat_seconds),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


router = Router(
    path="/softphone",
    guards=[agent_guard],
    route_handlers=[offer, lost, hangup, set_device, events],
)
route_handlers = [router]
