"""The agent's desk phone transfers the call: its REFER (RFC 3515) carried out by the hub.

A phone's Transfer key sends an in-dialog REFER naming what the agent dialled. The hub does
not let the phone call that itself: the caller stays on the one interaction, exactly as with
the console's Transfer, so routing, the recording, wrap-up and reports follow the call. The
Refer-To URI's user part is, in this order:

- another agent's extension: a targeted offer to that agent (``transfer_to_agent``);
- a queue's name (``sip:billing@hub``, any case): back to that queue, keeping the caller's
  place (``transfer_to_queue``);
- a phone number: a blind transfer through the trunk (``hub.call_transfers``), under the
  trunk's prefixes and daily caps like every call out.

The phone learns how it went from the final NOTIFY's sipfrag (RFC 3515 §2.4.5): ``200 OK``
once the hub has the transfer (the phone then hangs up, RFC 5589 §6.1; the hub releases its
leg in any case), else 404 for a target that is none of these, 480 for an agent or queue
that cannot take it now, 403 for a number the trunk refuses, and 603 for what the console
does instead (an attended transfer, a Refer-To with Replaces per RFC 3891: Consult, then
Transfer). The console says what happened either way, and a ``transfer`` control row keeps it.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from aiosipua.headers import parse_address
from sqlalchemy import func
from sqlmodel import col, select

from hub.call_controls import ControlError, ControlState
from hub.call_transfers import checked_number, hand_off
from hub.events import agent_topic
from hub.routing.work import agent_name
from models import Agent, ControlKind, Queue

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from hub.call_controls import CallControls
    from hub.calls import LiveCall

# What a phone's keypad (or its directory) puts in a Refer-To user part for a number.
DIALLED_NUMBER = re.compile(r"\+?[0-9(][0-9 ().-]{2,30}")


class NotTransferred(Exception):
    """The phone's transfer is not carried out: the sipfrag status and the reason."""

    def __init__(self, status: int, reason: str, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.reason = reason
        self.why = why


@dataclass(frozen=True)
class Destination:
    kind: str  # agent | queue | number
    label: str  # the agent's or queue's name, or the number as dialled
    id: int | None = None


def dialled(target: str) -> str:
    """The Refer-To URI's user part, unescaped (RFC 3261 §19.1.2)."""
    try:
        uri = parse_address(target).uri
    except (ValueError, IndexError):
        raise NotTransferred(400, "Bad Request", "the phone named no valid address") from None
    if any(name.lower() == "replaces" for name in uri.headers):
        raise NotTransferred(
            603,
            "Declined",
            "an attended transfer from the phone is not carried out; "
            "use Consult in the console, then Transfer",
        )
    if not uri.user:
        raise NotTransferred(404, "Not Found", "the phone named no extension or number")
    return unquote(uri.user)


async def destination(db: AsyncSession, user: str, own_agent_id: int) -> Destination:
    """What ``user`` names: an agent's extension, a queue's name or a phone number."""
    agent = (await db.exec(select(Agent).where(Agent.extension == user))).first()
    if agent is not None and agent.id is not None:
        if agent.id == own_agent_id:
            raise NotTransferred(603, "Declined", "that is your own extension")
        return Destination("agent", await agent_name(db, agent.id), agent.id)
    named = select(Queue).where(func.lower(Queue.name) == user.lower(), col(Queue.active))
    queue = (await db.exec(named)).first()
    if queue is not None:
        return Destination("queue", queue.name, queue.id)
    if DIALLED_NUMBER.fullmatch(user):
        return Destination("number", user)
    raise NotTransferred(
        404, "Not Found", f"{user[:40]} is not an agent's extension, a queue or a phone number"
    )


async def carry_out_refer(controls: CallControls, live: LiveCall, target: str) -> None:
    """Carry out the REFER the agent's phone sent on ``live``, or tell the phone why not."""
    st = controls.state.setdefault(live.interaction_id, ControlState())
    agent_id = st.agent_id if st.agent_id is not None else live.agent_id
    phone = live.agent_call
    if agent_id is None or phone is None:
        return
    try:
        if st.consult is not None:
            raise NotTransferred(603, "Declined", "a consult is under way: finish it first")
        if st.self_service is not None:
            raise NotTransferred(603, "Declined", "the caller is in self-service")
        async with controls.services.sessionmaker() as db:
            where = await destination(db, dialled(target), agent_id)
            agent = await db.get(Agent, agent_id)
        assert agent is not None
        st.handing_over = True  # the phone's BYE, which follows the NOTIFY, ends nothing
        try:
            await _transfer(controls, live, agent_id, agent.user_id, where)
        finally:
            st.handing_over = False
            live.poke.set()
    except NotTransferred as refused:
        phone.answer_refer(refused.status, refused.reason)
        await controls.record(
            live, ControlKind.TRANSFER, None, {"refused": target[:200], "why": refused.why}
        )
        await _tell(controls, agent_id, f"Your phone's transfer was not made: {refused.why}.")
        return
    await _tell(controls, agent_id, f"Your phone transferred the call to {where.label}.")


async def _transfer(
    controls: CallControls, live: LiveCall, agent_id: int, user_id: int, where: Destination
) -> None:
    """Hand the call over, answer the phone's REFER with 200 and release its leg."""
    routing = controls.services.routing
    iid = live.interaction_id
    if where.kind == "number":
        try:
            live, number = await checked_number(
                controls, iid, agent_id, user_id, where.label, "transfer"
            )
        except ControlError as exc:
            raise NotTransferred(403, "Forbidden", str(exc)) from None
        _answer(live, 200, "OK")
        await hand_off(controls, live, agent_id, user_id, number, by={"by": "phone"})
        return
    try:
        assert where.id is not None
        if where.kind == "agent":
            await routing.transfer_to_agent(iid, where.id, by_agent_id=agent_id)
        else:
            await routing.transfer_to_queue(iid, where.id, by_agent_id=agent_id)
    except (LookupError, ValueError, PermissionError) as exc:
        raise NotTransferred(480, "Temporarily Unavailable", str(exc)) from None
    _answer(live, 200, "OK")
    detail = {"by": "phone", "to": where.kind, "target": where.label}
    await controls.record(live, ControlKind.TRANSFER, user_id, detail)
    await controls.calls._release_agent(live, f"transferred by the phone to {where.label}")


def _answer(live: LiveCall, status: int, reason: str) -> None:
    if live.agent_call is not None:
        live.agent_call.answer_refer(status, reason)


async def _tell(controls: CallControls, agent_id: int, text: str) -> None:
    """A message in the agent's console (the phone's own screen shows only the sipfrag)."""
    with contextlib.suppress(Exception):  # a hub shutting down may have no bus left
        await controls.services.bus.publish(
            agent_topic(agent_id), "supervisor-message", text=text, **{"from": "Contact Hub"}
        )
