"""Blind transfer of a call to an external number through the trunk.

The agent's leg is released at once and the interaction goes to their wrap-up (one
interaction: the external party is a leg of it, ``CallLeg`` kind external). The caller
hears music on hold while the number rings, then is bridged to it; the call service keeps
following the call until either side hangs up, and the recording goes on. A number that
is busy or does not answer ends the call, with the reason on the control's row.
Transfers to a queue or a named agent go through routing (``RoutingService``), and the
call service moves the caller (``CallService._release_agent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from channels.voice.call import Call, CallState
from channels.voice.sip_endpoint import CallFailed
from hub.call_controls import ControlError, ControlState
from hub.call_limits import CallOutRefused, check_call_out
from hub.outbound_calls import DialRefused, caller_id, dialable_number
from models import CallLegKind, ControlKind

if TYPE_CHECKING:
    from hub.call_controls import CallControls
    from hub.calls import LiveCall

log = logging.getLogger(__name__)


async def checked_number(
    controls: CallControls,
    interaction_id: int,
    agent_id: int | None,
    user_id: int,
    raw: str,
    kind: str,
) -> tuple[LiveCall, str]:
    """The agent's live call and the number in E.164, allowed by the trunk's prefixes and
    daily caps (stored and counted as a call out of ``kind``, a refusal audited)."""
    try:
        number = dialable_number(raw, controls.services.settings.default_region)
    except DialRefused as refused:
        raise ControlError(refused.reason.rstrip(".")) from None
    settings = controls.calls.endpoint.settings
    if not settings.trunk_host:
        raise ControlError("no SIP trunk is set up (HUB_VOICE_TRUNK_HOST)")
    live = controls.live_for_agent(interaction_id, agent_id)
    assert agent_id is not None
    try:  # the trunk's allowed prefixes and daily caps (stored, a refusal audited)
        number = await check_call_out(
            controls.services,
            kind=kind,
            number=number,
            inbox_id=live.inbox.id,
            agent_id=agent_id,
            interaction_id=interaction_id,
            user_id=user_id,
        )
    except CallOutRefused as refused:
        raise ControlError(refused.reason.rstrip(".")) from None
    return live, number


async def dial_trunk(
    controls: CallControls, live: LiveCall, number: str, created: list[Call]
) -> Call:
    """Call ``number`` through the trunk, as the inbox's caller id (raises ``CallFailed``;
    the call object, once made, is appended to ``created`` for its leg row)."""
    endpoint = controls.calls.endpoint
    s = endpoint.settings
    domain = s.trunk_domain or s.trunk_host
    identity = f"sip:{caller_id(live.inbox)}@{domain}"
    return await endpoint.dial(
        f"sip:{number}@{domain}",
        (s.trunk_host, s.trunk_port),  # type: ignore[arg-type]
        from_uri=identity,
        auth=endpoint._trunk_auth(),
        timeout=controls.services.settings.dial_timeout_seconds,
        headers={"P-Asserted-Identity": f"<{identity}>"},
        on_created=created.append,
    )


async def transfer_external(
    controls: CallControls, interaction_id: int, agent_id: int | None, user_id: int, raw: str
) -> str:
    """Start the transfer; returns the E.164 number being called."""
    live, number = await checked_number(
        controls, interaction_id, agent_id, user_id, raw, "transfer"
    )
    assert agent_id is not None
    await hand_off(controls, live, agent_id, user_id, number)
    return number


async def hand_off(
    controls: CallControls,
    live: LiveCall,
    agent_id: int,
    user_id: int,
    number: str,
    by: dict[str, str] | None = None,
) -> None:
    """Release the agent and call ``number`` (already checked) for the caller; ``by`` adds
    to the control row (who asked, when not the console)."""
    interaction_id = live.interaction_id
    st = controls.state.setdefault(interaction_id, ControlState())
    st.handed_off = True  # from now on the call outlives the agent's wrap-up
    detail = {"to": "external", "number": number, **(by or {})}
    await controls.record(live, ControlKind.TRANSFER, user_id, detail)
    # wrap-up first: a call without an agent leg that is still ACTIVE would ring them again
    with contextlib.suppress(LookupError, ValueError, PermissionError):
        await controls.services.routing.wrap_up(interaction_id, agent_id=agent_id)
    await controls.calls._release_agent(live, "transferred to an external number")
    controls.calls._start_moh(live)
    task = asyncio.create_task(_connect(controls, live, number))
    task.add_done_callback(_log_failure)


async def _connect(controls: CallControls, live: LiveCall, number: str) -> None:
    created: list[Call] = []
    try:
        external = await dial_trunk(controls, live, number, created)
    except CallFailed as exc:
        failure = f"{exc.status} {exc.reason}"
        if created:
            await controls.store_outbound_leg(live, created[0], CallLegKind.EXTERNAL, None, failure)
        await controls.record(live, ControlKind.TRANSFER, None, {"failed": failure})
        await live.customer.hangup()  # nobody to hand the caller to: the call ends
        live.poke.set()
        return
    if live.finished or live.customer.state is CallState.ENDED:
        await external.hangup()
        return
    leg_id = await controls.store_outbound_leg(live, external, CallLegKind.EXTERNAL, None, "")
    controls.calls._stop_moh(live)
    live.agent_call = external  # the call service ends the call when either side hangs up
    live.agent_leg_id = leg_id
    external.add_listener(lambda _c, event: live.poke.set() if event.kind == "ended" else None)
    live.customer.bridge(external)
    await controls.record(live, ControlKind.TRANSFER, None, {"connected": number})
    live.poke.set()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("an external transfer failed", exc_info=task.exception())
