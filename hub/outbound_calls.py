"""Click to dial: an agent calls a customer through the trunk, from the console.

The steps, each committed before it is published:

1. ``OutboundDialer.dial`` checks what would make the call fail at once, so the console
   can say why (no trunk, an invalid number, the agent's phone not registered, no voice
   inbox with a DID), finds or creates the contact from the E.164 number
   (``hub.contacts``), and stores an **outbound voice interaction** that the agent holds
   ACTIVE from the start (the agent's voice capacity is taken, presence BUSY);
2. the hub calls the agent's registered phone with ``Call-Info: answer-after=0``
   (draft-ietf-sip-answermode; ``SipEndpoint.call_agent``), then the customer through the
   trunk, with the inbox's DID as caller ID: the From user part and
   ``P-Asserted-Identity`` (RFC 3325 §9.1), which trunks use as the presented number;
3. when the customer answers the two are bridged and the call is recorded in stereo
   (customer left, the hub's side right), and from then on the call service's own
   ``LiveCall`` follows it exactly as an inbound call: either side hanging up, or the
   agent ending it in the console, leads to wrap-up;
4. a customer who is busy or does not answer, or an agent's phone that does not pick
   up, ends the interaction with that reason (``call_outcome`` in its data, shown on the
   card), and the agent's capacity frees.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import phonenumbers
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import AddressKind, ChannelKind
from channels.voice.call import Call, CallState
from channels.voice.sip_endpoint import CallFailed
from hub import call_records as records
from hub.contacts import resolve_contacts
from hub.events import interaction_topic
from hub.interactions import change_state
from hub.presence import settle
from hub.routing.work import AfterCommit, lock_agent, lock_interaction, write_lock
from models import Agent, CallLegKind, Inbox, Interaction, InteractionState, utcnow

if TYPE_CHECKING:
    from hub.calls import CallService, LiveCall

S = InteractionState
log = logging.getLogger(__name__)

# Final responses that mean "the customer is busy" (RFC 3261 §21.4.24, §21.6.1) and
# "nobody answered" (our own timeout is a 408; §21.4.18 temporarily unavailable; §21.4.25
# the request was CANCELled).
BUSY = frozenset({486, 600})
NO_ANSWER = frozenset({408, 480, 487})


class DialRefused(Exception):
    """A call that cannot be placed; ``status`` is the HTTP status the console gets."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def dialable_number(raw: str, default_region: str) -> str:
    """The number in E.164, or ``DialRefused(422)`` naming it. Numbers without ``+`` are
    read in ``default_region`` (``HUB_DEFAULT_REGION``), as a customer would write them."""
    text = raw.strip()
    if not text:
        raise DialRefused(422, "Enter a phone number to call.")
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        raise DialRefused(422, f"{text!r} is not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise DialRefused(422, f"{text!r} is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def outcome_of(failure: CallFailed) -> str:
    """What the agent reads on the card when the customer's leg failed."""
    if isinstance(failure, _AgentHungUp):
        return failure.reason
    if failure.status in BUSY:
        return "busy"
    if failure.status in NO_ANSWER:
        return "no answer"
    if failure.status == 603:
        return "declined"
    return f"failed ({failure.status} {failure.reason})"


def caller_id(inbox: Inbox) -> str:
    """The inbox's DID as it goes into From and P-Asserted-Identity: E.164 when it reads
    as a number, else its digits."""
    raw = str((inbox.config or {}).get("did") or "")
    if not raw:
        dids = sorted(records.inbox_dids(inbox))
        raw = f"+{dids[0]}" if dids else ""
    try:
        number = phonenumbers.parse(raw if raw.startswith("+") else f"+{records.digits(raw)}")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return records.digits(raw)


@dataclass(frozen=True, slots=True)
class Placed:
    """A stored outbound call that is being set up."""

    interaction_id: int
    agent_id: int
    extension: str
    number: str
    did: str


def _open_outbound(
    db: Session, inbox: Inbox, agent_id: int, number: str, did: str, node: str
) -> tuple[Interaction, bool]:
    """The interaction, held by the agent from the start (NEW → ACTIVE)."""
    now = utcnow()
    key = (AddressKind.PHONE.value, number)
    ref = resolve_contacts(db.connection(), {key: ""})[key]
    interaction = Interaction(
        inbox_id=inbox.id,  # type: ignore[arg-type]
        contact_id=ref.id,
        channel=ChannelKind.VOICE.value,
        queue_id=inbox.default_queue_id,
        data={"direction": "outbound", "callee": number, "caller_id": did, "node": node},
        created_at=now,
    )
    db.add(interaction)
    db.flush()
    change_state(db, interaction, S.ACTIVE, at=now, agent_id=agent_id, reason="outbound call")  # type: ignore[arg-type]
    interaction.agent_id = agent_id
    db.add(interaction)
    return interaction, ref.blocked


class OutboundDialer:
    """Places agents' calls through the trunk and hands connected ones to the call service."""

    def __init__(self, calls: CallService) -> None:
        self.calls = calls
        self.services = calls.services
        self.endpoint = calls.endpoint
        self.tasks: set[asyncio.Task[None]] = set()
        self.setting_up: set[asyncio.Task[None]] = set()  # not connected yet
        # Calls placed for an existing interaction (a queued callback, ``call_back``): what
        # to do when the call fails (instead of closing it) and once it connects.
        self.on_failed: dict[int, Callable[[str], Awaitable[None]]] = {}
        self.on_connected: dict[int, Callable[[], Awaitable[None]]] = {}

    # -- the request -----------------------------------------------------------------------

    async def dial(self, agent_id: int, raw_number: str, *, inbox_id: int | None = None) -> int:
        """Store the outbound interaction and start calling; returns its id at once.

        Raises ``DialRefused`` (with the HTTP status) when the call cannot even start."""
        placed, inbox = await self._open(agent_id, raw_number, inbox_id)
        self._launch(placed, inbox, None, f"dial-{placed.interaction_id}")
        return placed.interaction_id

    async def from_phone(self, phone: Call) -> None:
        """An agent dialled a number on their own desk phone (``Call.phone_extension``): the
        same outbound interaction as click to dial, with the phone's INVITE as the agent's
        leg. It rings (180: the phone plays its ringback) while the customer's call does,
        and is answered when the customer answers. A call that cannot start is refused with
        the matching SIP status and the reason as its phrase (RFC 3261 §21), as is one
        whose customer is busy (486) or does not answer (480)."""
        async with self.services.sessionmaker() as db:
            agent = (
                await db.exec(select(Agent).where(Agent.extension == phone.phone_extension))
            ).first()
        if agent is None or agent.id is None:
            await phone.reject(404, "Not Found")
            return
        try:
            placed, inbox = await self._open(agent.id, phone.called_number, None, phone=True)
        except DialRefused as refused:
            status = {422: 484, 409: 480}.get(refused.status, 403)  # §21.4.22, .18, .4
            await phone.reject(status, _phrase(refused.reason))
            return
        await self._launch(placed, inbox, phone, f"phone-dial-{placed.interaction_id}")

    def _launch(
        self, placed: Placed, inbox: Inbox, phone: Call | None, name: str
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(self._run(placed, inbox, phone), name=name)
        self.tasks.add(task)
        self.setting_up.add(task)
        task.add_done_callback(self._done)
        return task

    async def _open(
        self, agent_id: int, raw_number: str, inbox_id: int | None, *, phone: bool = False
    ) -> tuple[Placed, Inbox]:
        """The checks, then the stored interaction; ``phone``: the agent's phone is the
        one calling (so it need not be reachable to be called first)."""
        settings = self.endpoint.settings
        if not settings.trunk_host:
            raise DialRefused(
                409,
                "No SIP trunk is configured, so the hub cannot call out (HUB_VOICE_TRUNK_HOST).",
            )
        if not self.calls.accepting:
            raise DialRefused(409, "The hub is shutting down and takes no new calls.")
        number = dialable_number(raw_number, self.services.settings.default_region)
        async with self.services.sessionmaker() as db:
            agent = await db.get(Agent, agent_id)
            if agent is None:
                raise DialRefused(403, "Only agents can place calls.")
            extension = agent.extension
            if not extension:
                raise DialRefused(409, "You have no SIP extension; an admin sets one up.")
            if not phone and self.endpoint.registrar.lookup(extension) is None:
                raise DialRefused(
                    409,
                    f"Your phone (extension {extension}) is not registered with the hub, "
                    "so it cannot be called first.",
                )
            inbox = await self._inbox(db, inbox_id)
        from hub.call_limits import CallOutRefused, check_call_out

        try:  # allowed prefixes, refused number types, daily caps (audited when refused)
            number = await check_call_out(
                self.services, kind="dial", number=number, inbox_id=inbox.id, agent_id=agent_id
            )
        except CallOutRefused as refused:
            raise DialRefused(refused.status, refused.reason) from refused
        did = caller_id(inbox)
        interaction_id = await self._store(agent_id, inbox, number, did)
        return Placed(interaction_id, agent_id, extension, number, did), inbox

    async def _store(self, agent_id: int, inbox: Inbox, number: str, did: str) -> int:
        """The interaction, committed with the agent's new presence, then published. The
        agent is locked first, so two clicks cannot start two calls; a number that two
        agents dial for the first time at once makes one contact (the loser retries)."""
        for attempt in range(2):
            after = AfterCommit()
            try:
                async with self.services.sessionmaker() as db:
                    await write_lock(db)
                    agent = await lock_agent(db, agent_id)
                    if agent is None:
                        raise DialRefused(403, "Only agents can place calls.")
                    if await self._on_a_call(db, agent_id):
                        raise DialRefused(409, "You are on a call already.")
                    interaction, _blocked = await db.run_sync(
                        _open_outbound, inbox, agent_id, number, did, self.calls.node
                    )
                    await settle(db, agent, after, now=interaction.answered_at)
                    from hub.routing.service import RoutingService

                    RoutingService._announce_work(after, interaction, agent_id)
                    await db.commit()
                    interaction_id: int = interaction.id  # type: ignore[assignment]
            except IntegrityError:
                if attempt:
                    raise
                continue
            await after.publish(self.services.bus)
            return interaction_id
        raise AssertionError("unreachable")

    async def call_back(
        self,
        interaction_id: int,
        agent_id: int,
        number: str,
        inbox: Inbox,
        *,
        on_failed: Callable[[str], Awaitable[None]],
        on_connected: Callable[[], Awaitable[None]],
    ) -> None:
        """Call ``number`` for an interaction the agent already holds (ACTIVE): the agent's
        phone first, then the customer, exactly as click to dial. ``on_failed`` gets the
        outcome instead of the interaction being closed."""
        settings = self.endpoint.settings
        reason = ""
        async with self.services.sessionmaker() as db:
            agent = await db.get(Agent, agent_id)
        extension = agent.extension if agent is not None else None
        if not settings.trunk_host:
            reason = "no SIP trunk is configured"
        elif not extension:
            reason = "the agent has no SIP extension"
        elif self.endpoint.registrar.lookup(extension) is None:
            reason = f"the agent's phone ({extension}) is not registered"
        if reason:
            await on_failed(reason)
            return
        assert extension is not None
        self.on_failed[interaction_id] = on_failed
        self.on_connected[interaction_id] = on_connected
        placed = Placed(interaction_id, agent_id, extension, number, caller_id(inbox))
        self._launch(placed, inbox, None, f"callback-{interaction_id}")

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.setting_up.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("an outbound call failed", exc_info=task.exception())

    @staticmethod
    async def _on_a_call(db: AsyncSession, agent_id: int) -> bool:
        rows = await db.exec(
            select(Interaction.data).where(
                Interaction.agent_id == agent_id,
                Interaction.channel == ChannelKind.VOICE.value,
                Interaction.state == S.ACTIVE,
            )
        )
        # a voicemail the agent is reading is not a call (its "Call back" dials from it)
        return any((data or {}).get("kind") != "voicemail" for data in rows.all())

    @staticmethod
    async def _inbox(db: AsyncSession, inbox_id: int | None) -> Inbox:
        """The voice inbox whose DID is the caller ID: the one asked for, else the first."""
        query = select(Inbox).where(
            Inbox.kind == ChannelKind.VOICE.value, col(Inbox.active).is_(True)
        )
        if inbox_id is not None:
            query = query.where(Inbox.id == inbox_id)
        for inbox in (await db.exec(query.order_by(col(Inbox.id)))).all():
            if records.inbox_dids(inbox):
                return inbox
        if inbox_id is not None:
            raise DialRefused(422, f"Inbox {inbox_id} is not an active voice inbox with a DID.")
        raise DialRefused(409, "No active voice inbox has a DID to call from.")

    async def stop(self) -> None:
        """Calls still being set up are abandoned (their interactions end "cancelled");
        connected ones are the call service's to drain."""
        pending = list(self.setting_up)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def recover(self) -> int:
        """Outbound calls a dead process was still setting up (no leg was written yet, so
        the call service's recovery cannot see them): ended as dropped. ``node`` as in
        ``records.mark_dropped``. Returns how many."""
        settings = self.services.settings
        node = None if settings.is_sqlite else settings.node_name
        async with self.services.sessionmaker() as db:
            rows = await db.exec(
                select(Interaction).where(
                    Interaction.channel == ChannelKind.VOICE.value,
                    Interaction.state == S.ACTIVE,
                )
            )
            stuck = [
                (i.id, i.agent_id, i.data)
                for i in rows.all()
                if i.data.get("direction") == "outbound"
                and (node is None or i.data.get("node") == node)
                and i.agent_id is not None
            ]
        for interaction_id, agent_id, data in stuck:
            placed = Placed(interaction_id, agent_id, "", str(data.get("callee", "")), "")  # type: ignore[arg-type]
            await self._end(placed, "dropped: the hub restarted")
        return len(stuck)

    # -- the call --------------------------------------------------------------------------

    async def _run(self, placed: Placed, inbox: Inbox, phone: Call | None) -> None:
        """``_place``, and whatever stops it half way (the hub stopping, a fault) still
        ends the interaction and hangs up, so no agent stays stuck on a call."""
        calls: list[Call] = [] if phone is None else [phone]
        try:
            if phone is None:
                await self._place(placed, inbox, calls)
            else:
                await self._place_from_phone(placed, inbox, calls, phone)
        except BaseException as exc:
            for call in calls:
                if call.state is not CallState.ENDED:
                    with contextlib.suppress(Exception):
                        await call.hangup()
            why = "cancelled" if isinstance(exc, asyncio.CancelledError) else "failed"
            with contextlib.suppress(Exception):
                await self._end(placed, why)
            raise

    async def _place(self, placed: Placed, inbox: Inbox, calls: list[Call]) -> None:
        """Agent's phone first, then the customer; ended with a reason if either fails."""
        settings = self.services.settings
        ringing: list[Call] = []
        agent_call: Call | None = None
        try:
            agent_call = await self._watched(
                placed,
                self.endpoint.call_agent(
                    placed.extension,
                    timeout=settings.dial_agent_timeout_seconds,
                    auto_answer=True,
                    on_created=lambda call: (ringing.append(call), calls.append(call)),
                ),
            )
        except CallFailed as exc:
            await self._store_leg(placed, CallLegKind.AGENT, ringing, None, exc)
            await self._end(placed, f"your phone did not answer ({exc.status} {exc.reason})")
            return
        except _EndedInConsole:
            await self._store_leg(placed, CallLegKind.AGENT, ringing, None, None)
            return
        agent_leg = await self._store_leg(placed, CallLegKind.AGENT, ringing, agent_call, None)
        customer_ringing: list[Call] = []
        try:
            customer = await self._watched(
                placed, self._dial_customer(placed, customer_ringing, calls), also=agent_call
            )
        except CallFailed as exc:
            await self._store_leg(placed, CallLegKind.CUSTOMER, customer_ringing, None, exc)
            await self._hang_up(agent_call, agent_leg)
            await self._end(placed, outcome_of(exc))
            return
        except _EndedInConsole:
            await self._store_leg(placed, CallLegKind.CUSTOMER, customer_ringing, None, None)
            await self._hang_up(agent_call, agent_leg)
            await self._end(placed, "cancelled")
            return
        customer_leg = await self._store_leg(
            placed, CallLegKind.CUSTOMER, customer_ringing, customer, None
        )
        assert customer_leg is not None and agent_leg is not None
        calls.clear()  # from here the call service's LiveCall owns both calls
        await self._connected(placed, inbox, customer, customer_leg, agent_call, agent_leg)

    async def _place_from_phone(
        self, placed: Placed, inbox: Inbox, calls: list[Call], phone: Call
    ) -> None:
        """The customer while the agent's phone, which placed the call, hears it ring."""
        await phone.ring()
        customer_ringing: list[Call] = []
        try:
            customer = await self._watched(
                placed, self._dial_customer(placed, customer_ringing, calls), also=phone
            )
        except (CallFailed, _EndedInConsole) as exc:
            failure = exc if isinstance(exc, CallFailed) else None
            outcome = outcome_of(failure) if failure is not None else "cancelled"
            status = 486 if failure is not None and failure.status in BUSY else 480
            await phone.reject(status, _phrase(outcome))  # no-op once the phone hung up
            await self._store_leg(placed, CallLegKind.CUSTOMER, customer_ringing, None, failure)
            await self._store_leg(
                placed, CallLegKind.AGENT, [phone], None, failure, direction="inbound"
            )
            await self._end(placed, outcome)
            return
        await phone.answer()
        customer_leg = await self._store_leg(
            placed, CallLegKind.CUSTOMER, customer_ringing, customer, None
        )
        agent_leg = await self._store_leg(
            placed, CallLegKind.AGENT, [phone], phone, None, direction="inbound"
        )
        assert customer_leg is not None and agent_leg is not None
        calls.clear()  # from here the call service's LiveCall owns both calls
        await self._connected(placed, inbox, customer, customer_leg, phone, agent_leg)

    async def _dial_customer(self, placed: Placed, ringing: list[Call], calls: list[Call]) -> Call:
        """INVITE through the trunk with the DID as caller ID (From and P-Asserted-Identity,
        RFC 3325 §9.1), digest auth when the trunk has credentials (RFC 3261 §22)."""
        s = self.endpoint.settings
        domain = s.trunk_domain or s.trunk_host
        identity = f"sip:{placed.did}@{domain}"
        return await self.endpoint.dial(
            f"sip:{placed.number}@{domain}",
            (s.trunk_host, s.trunk_port),
            from_uri=identity,
            auth=self.endpoint._trunk_auth(),
            timeout=self.services.settings.dial_timeout_seconds,
            headers={"P-Asserted-Identity": f"<{identity}>"},
            on_created=lambda call: (ringing.append(call), calls.append(call)),
        )

    async def _watched(self, placed: Placed, attempt: Any, *, also: Call | None = None) -> Call:
        """Run one call attempt, abandoning it when the agent ends the interaction in the
        console or (``also``) the agent's phone hangs up meanwhile."""
        task: asyncio.Task[Call] = asyncio.ensure_future(attempt)
        gone = asyncio.Event()
        if also is not None:
            also.add_listener(lambda _c, event: gone.set() if event.kind == "ended" else None)
        async with self.services.bus.subscribe([interaction_topic(placed.interaction_id)]) as ev:

            async def watch() -> None:
                async for _event in ev:
                    if not await self._still_active(placed):
                        gone.set()
                        return

            watcher = asyncio.create_task(watch())
            waiter = asyncio.create_task(gone.wait())
            try:
                if not await self._still_active(placed):
                    gone.set()
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                task.cancel()  # the hub is stopping: the INVITE is CANCELled too
                raise
            finally:
                watcher.cancel()
                waiter.cancel()
        if task.done():
            return task.result()
        task.cancel()  # the endpoint CANCELs the INVITE (RFC 3261 §9.1)
        with contextlib.suppress(asyncio.CancelledError, CallFailed):
            await task
        if also is not None and also.state is CallState.ENDED:
            raise _AgentHungUp(487, "your phone hung up")
        raise _EndedInConsole

    async def _still_active(self, placed: Placed) -> bool:
        async with self.services.sessionmaker() as db:
            interaction = await db.get(Interaction, placed.interaction_id)
        return interaction is not None and interaction.state == S.ACTIVE

    async def _store_leg(
        self,
        placed: Placed,
        kind: CallLegKind,
        ringing: list[Call],
        answered: Call | None,
        failure: CallFailed | None,
        direction: str = "outbound",
    ) -> int | None:
        """The leg's row once its INVITE has an outcome (none if no INVITE went out)."""
        call = answered or (ringing[0] if ringing else None)
        if call is None:
            return None
        async with self.services.sessionmaker() as db:
            leg_id = await records.add_leg(
                db,
                placed.interaction_id,
                kind=kind,
                direction=direction,
                sip_call_id=call.call_id,
                remote_uri=call.remote_uri,
                node=self.calls.node,
                agent_id=placed.agent_id if kind is CallLegKind.AGENT else None,
                started_at=records.epoch_to_dt(call.started_at),  # type: ignore[arg-type]
            )
            if answered is not None:
                await records.update_leg(
                    db, leg_id, answered_at=records.epoch_to_dt(call.answered_at)
                )
            else:
                reason = outcome_of(failure) if failure is not None else "cancelled"
                await records.update_leg(
                    db,
                    leg_id,
                    ended_at=records.epoch_to_dt(call.ended_at or call.started_at),
                    end_reason=reason[:64],
                )
        return leg_id

    async def _hang_up(self, call: Call, leg_id: int | None) -> None:
        if call.state is not CallState.ENDED:
            await call.hangup()
        if leg_id is not None:
            async with self.services.sessionmaker() as db:
                await self.calls._close_leg(db, leg_id, call)

    async def _end(self, placed: Placed, outcome: str) -> None:
        """The call never connected: the interaction closes with ``outcome`` and the
        agent's capacity frees (an agent who ended it in the console already did that)."""
        self.on_connected.pop(placed.interaction_id, None)
        hook = self.on_failed.pop(placed.interaction_id, None)
        if hook is not None:
            await hook(outcome)
            return
        after = AfterCommit()
        async with self.services.sessionmaker() as db:
            await write_lock(db)
            interaction = await lock_interaction(db, placed.interaction_id)
            if interaction is None:
                return
            interaction.data = {**interaction.data, "call_outcome": outcome}
            db.add(interaction)
            if interaction.state == S.ACTIVE:
                agent = await lock_agent(db, placed.agent_id)
                change_state(
                    db, interaction, S.CLOSED, agent_id=placed.agent_id, reason=outcome[:200]
                )
                if agent is not None:
                    await settle(db, agent, after)
                from hub.routing.service import RoutingService

                RoutingService._announce_work(after, interaction, placed.agent_id)
            await db.commit()
        await after.publish(self.services.bus)

    async def _connected(
        self,
        placed: Placed,
        inbox: Inbox,
        customer: Call,
        customer_leg: int,
        agent_call: Call,
        agent_leg: int,
    ) -> None:
        """Bridged and recorded; the call service follows it like any answered call."""
        from hub.calls import LiveCall

        current = asyncio.current_task()
        if current is not None:
            self.setting_up.discard(current)  # type: ignore[arg-type]  # connected now

        self.on_failed.pop(placed.interaction_id, None)
        connected = self.on_connected.pop(placed.interaction_id, None)
        if connected is not None:
            await connected()

        live = LiveCall(
            placed.interaction_id,
            customer,
            customer_leg,
            inbox,
            agent_call=agent_call,
            agent_id=placed.agent_id,
            agent_leg_id=agent_leg,
        )
        relative = Path("recordings") / f"{placed.interaction_id}-{customer_leg}.wav"
        live.recording_path = self.calls.var_dir / relative
        customer.record(live.recording_path)
        customer.bridge(agent_call)
        async with self.services.sessionmaker() as db:
            live.recording_id = await records.start_recording(
                db, placed.interaction_id, str(relative), [customer_leg]
            )
        await self._follow(live)

    async def _follow(self, live: LiveCall) -> None:
        calls = self.calls
        for call in (live.customer, live.agent_call):
            assert call is not None
            call.add_listener(lambda _c, event: live.poke.set() if event.kind == "ended" else None)
        calls.live[live.interaction_id] = live
        try:
            async with self.services.bus.subscribe([interaction_topic(live.interaction_id)]) as ev:

                async def pump() -> None:
                    async for _event in ev:
                        live.poke.set()

                pumping = asyncio.create_task(pump())
                try:
                    live.poke.set()
                    while not live.finished:
                        await live.poke.wait()
                        live.poke.clear()
                        await calls._reconcile(live)
                finally:
                    pumping.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pumping
        finally:
            calls.live.pop(live.interaction_id, None)
            if not calls.live:
                calls._idle.set()


def _phrase(text: str) -> str:
    """A reason phrase: one line of printable text (RFC 3261 §25.1 Reason-Phrase)."""
    return " ".join(text.split())[:120].rstrip(".")


class _EndedInConsole(Exception):
    """The agent ended the interaction while the call was being set up."""


class _AgentHungUp(CallFailed):
    """The agent's phone hung up while the customer's rang."""
