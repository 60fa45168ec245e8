"""Click to dial from the console: the screen pop's "Call" beside a phone number, and the
number field in the sidebar (``hub.outbound_calls``).

A call that cannot start is refused with a 4xx whose text the console shows: 409 when the
hub has no trunk, the agent's phone is not registered or the agent is on a call already,
422 for a number that is not a valid phone number.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from hub.outbound_calls import DialRefused, OutboundDialer
from web.common import ClientError, agent_guard, opt_int, services_of, user_of

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


class Refused(ClientError):
    """A 4xx carrying the status ``DialRefused`` chose."""

    def __init__(self, refused: DialRefused) -> None:
        super().__init__(detail=refused.reason, status_code=refused.status)


def dialer_of(request: Request) -> OutboundDialer:
    runtime = services_of(request).extras.get("voice")
    if runtime is None:
        raise Refused(DialRefused(409, "Voice is turned off on this hub (HUB_VOICE_ENABLED)."))
    return runtime.dialer


@post("/dial", status_code=200)
async def dial(request: Request, data: FormData) -> Any:
    """Call the number: the agent's phone first, then the customer through the trunk.
    The console then shows the new outbound call's card."""
    from web.console import _workspace

    user = user_of(request)
    if user.agent_id is None:
        raise Refused(DialRefused(403, "Only agents can place calls."))
    dialer = dialer_of(request)
    try:
        interaction_id = await dialer.dial(
            user.agent_id,
            str(data.get("number", ""))[:64],
            inbox_id=opt_int(data.get("inbox"), "inbox", lo=1),
        )
    except DialRefused as refused:
        raise Refused(refused) from refused
    return await _workspace(request, interaction_id)


dial_router = Router(path="/console", guards=[agent_guard], route_handlers=[dial])
route_handlers: list = [dial_router]
