"""One dialog on every text channel: web chat, SMS and Telegram meet the inbox's dialog.

A new conversation on an inbox with a published dialog starts in SELF_SERVICE (ingest
decides, ``hub.ingest_batch``) and every customer message on it enqueues a job in the
message's own transaction. A text session can last hours, so it never waits inside a
coroutine: each job drives the sans-IO interpreter one step and stores the session.

The session is stored as an event log, with the ``DialogVersion`` it runs and the moment
it started, in ``Interaction.data["ivr"]["session"]``: the interpreter is deterministic,
so replaying the log on that same version rebuilds its exact state, after a restart too.
Each step writes the bot's messages (pending) and the session in one transaction and only
then delivers them, so a retried job never sends a prompt twice. Jobs of one interaction
run one at a time in a process; on PostgreSQL the interaction's row lock orders them
across processes.

What the dialog decides:
- prompts become bot messages; a menu's keyed options become a numbered list;
- a reply becomes an event (``ivr_dialogs.events.text_to_event``: keys are digits, other
  text is an answer in words);
- ``queue`` hands the conversation to routing with the data it collected; ``hangup``
  closes it; ``transfer``, ``voicemail`` and ``callback`` have no text form, so the
  conversation goes to the inbox's queue with a note saying so;
- a question left unanswered for ``text_dialog_no_input_seconds`` is a no-input event;
- when the session hands over or ends, its survey answers become ``SurveyAnswer`` rows in
  that step's transaction (``hub.surveys.store_answers``).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import DeliveryStatus
from hub.call_ivr import summarize
from hub.dialogs import load_version
from hub.events import interaction_topic
from hub.interactions import change_state
from hub.jobs import ClaimedJob, enqueue
from hub.routing.hours import is_open
from hub.routing.work import lock_interaction
from hub.surveys import store_answers
from ivr_dialogs.actions import Callback, Hangup, Listen, Lookup, Queue, Say, Transfer, Voicemail
from ivr_dialogs.events import (
    Digit,
    Digits,
    Event,
    HangUp,
    LookupResult,
    NoInput,
    Utterance,
    text_to_event,
)
from ivr_dialogs.interpreter import CallerInfo, Interpreter
from ivr_dialogs.runner import perform_lookup, secrets_from_env
from models import (
    BusinessHours,
    Contact,
    ContactIdentity,
    Dialog,
    DialogVersion,
    Direction,
    Inbox,
    Interaction,
    InteractionState,
    Message,
    SenderKind,
    Skill,
    utcnow,
)
from models import Queue as QueueRow

if TYPE_CHECKING:
    from hub.services import Services

log = logging.getLogger(__name__)

TEXT_DIALOG_JOB = "text_dialog.step"  # payload: {"interaction_id": int, "no_input_after"?: int}
NO_TEXT_FORM = {
    Transfer: "a transfer to a phone number",
    Voicemail: "voicemail",
    Callback: "a callback",
}


# ---------------------------------------------------------------- the event log


def encode_event(event: Event) -> dict[str, Any]:
    if isinstance(event, Digit):
        return {"t": "digit", "v": event.digit}
    if isinstance(event, Digits):
        return {"t": "digits", "v": event.digits}
    if isinstance(event, Utterance):
        return {"t": "text", "v": event.text, "c": event.confidence}
    if isinstance(event, LookupResult):
        return {"t": "lookup", "status": event.status, "body": event.body, "error": event.error}
    if isinstance(event, HangUp):
        return {"t": "hangup"}
    return {"t": "noinput"}


def decode_event(data: dict[str, Any]) -> Event:
    kind = data.get("t")
    if kind == "digit":
        return Digit(str(data["v"]))
    if kind == "digits":
        return Digits(str(data["v"]))
    if kind == "text":
        return Utterance(str(data["v"]), float(data.get("c", 1.0)))
    if kind == "lookup":
        return LookupResult(data.get("status"), data.get("body"), data.get("error"))
    if kind == "hangup":
        return HangUp()
    return NoInput()


def render_prompt(says: list[str], listen: Listen | None) -> str:
    """One bot message: what the dialog said, then a menu's options as a numbered list."""
    lines = [text for text in says if text]
    if listen is not None and listen.options:
        lines.append(
            "\n".join(f"{key}. {label[:1].upper()}{label[1:]}" for key, label in listen.options)
        )
    return "\n\n".join(lines)


# ---------------------------------------------------------------- the service


class TextDialogs:
    """Runs text dialog steps as jobs of the hub's job runner."""

    def __init__(self, services: Services) -> None:
        self.services = services
        # One step at a time per conversation in this process; a lock lives while in use.
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._client: httpx.AsyncClient | None = None

    def register(self, runner: Any) -> None:
        runner.register(TEXT_DIALOG_JOB, self.run_job)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # relative lookup URLs go to the hub itself
            self._client = httpx.AsyncClient(base_url=self.services.settings.self_url)
        return self._client

    async def run_job(self, job: ClaimedJob) -> None:
        interaction_id = int(job.payload["interaction_id"])
        lock = self._locks.get(interaction_id)
        if lock is None:
            lock = self._locks[interaction_id] = asyncio.Lock()
        async with lock:
            await self.step(interaction_id, job.payload.get("no_input_after"))

    async def step(self, interaction_id: int, no_input_after: int | None = None) -> None:
        """Feed the conversation's new messages (or a no-input) to its dialog, once."""
        services = self.services
        async with services.sessionmaker() as db:
            interaction = await db.get(Interaction, interaction_id)
            if interaction is None or interaction.state != InteractionState.SELF_SERVICE:
                return  # handed over, closed or abandoned meanwhile: nothing to do
            trace = dict((interaction.data or {}).get("ivr") or {})
            session = dict(trace.get("session") or {})
            loaded = await self._version(db, interaction, session)
            if loaded is None:  # the inbox's dialog went away: hand over as ingest would have
                await self._hand_over(interaction_id, interaction.queue_id, {}, "")
                return
            version, dialog_name = loaded
            if not session:
                session = await self._new_session(db, interaction, version.id)  # type: ignore[arg-type]
            read_upto = int(session.get("read_upto", 0))
            fresh = list(
                (
                    await db.exec(
                        select(Message)
                        .where(
                            Message.interaction_id == interaction_id,
                            Message.direction == Direction.INBOUND,
                            col(Message.id) > read_upto,
                        )
                        .order_by(col(Message.id))
                    )
                ).all()
            )
        dialog = load_version(dialog_name, version)
        interpreter = Interpreter(
            dialog,
            CallerInfo.from_mapping(session["caller"]),
            datetime.fromisoformat(session["started_at"]),
            bool(session["hours_open"]),
        )
        events: list[dict[str, Any]] = list(session.get("events") or [])
        pending = interpreter.start()
        for data in events:
            pending = interpreter.feed(decode_event(data))
        out: list[Any] = []
        if not session.get("greeted"):  # the first message starts the dialog: greet, ask
            out += await self._resolve(interpreter, pending, events)
            session["greeted"] = True
            if fresh:  # the opening message itself is not an answer
                read_upto = fresh.pop(0).id or read_upto
        if no_input_after is not None:
            if len(events) != no_input_after or fresh or interpreter.waiting_for != "input":
                return  # the customer answered meanwhile
            out += await self._feed(interpreter, NoInput(), events)
        for message in fresh:
            read_upto = message.id or read_upto
            if interpreter.done:
                continue  # stored for the agent who takes the conversation over
            out += await self._feed(interpreter, text_to_event(message.body or ""), events)
        session.update(events=events, read_upto=read_upto)
        await self._commit(interaction_id, interpreter, session, out, dialog_name, version.number)

    async def _version(
        self, db: AsyncSession, interaction: Interaction, session: dict[str, Any]
    ) -> tuple[DialogVersion, str] | None:
        """The session's own version (a restart resumes on it), else the inbox's published."""
        if session.get("version_id"):
            version = await db.get(DialogVersion, session["version_id"])
        else:
            inbox = await db.get(Inbox, interaction.inbox_id)
            dialog = await db.get(Dialog, inbox.dialog_id) if inbox and inbox.dialog_id else None
            version_id = dialog.published_version_id if dialog else None
            version = await db.get(DialogVersion, version_id) if version_id else None
        if version is None:
            return None
        dialog_row = await db.get(Dialog, version.dialog_id)
        return version, dialog_row.name if dialog_row else "dialog"

    async def _new_session(
        self, db: AsyncSession, interaction: Interaction, version_id: int
    ) -> dict[str, Any]:
        contact = await db.get(Contact, interaction.contact_id)
        identity = (
            await db.exec(
                select(ContactIdentity).where(ContactIdentity.contact_id == interaction.contact_id)
            )
        ).first()
        inbox = await db.get(Inbox, interaction.inbox_id)
        hours = await db.get(BusinessHours, inbox.hours_id) if inbox and inbox.hours_id else None
        caller = CallerInfo(
            number=identity.address if identity and identity.kind == "phone" else "",
            name=contact.name if contact else "",
            vip=contact.vip_level if contact else 0,
            channel=interaction.channel,
        )
        return {
            "version_id": version_id,
            "started_at": datetime.now(UTC).isoformat(),
            "hours_open": is_open(hours, datetime.now(UTC)),
            "caller": {
                "number": caller.number,
                "name": caller.name,
                "vip": caller.vip,
                "channel": caller.channel,
            },
            "events": [],
            "read_upto": 0,
        }

    async def _feed(
        self, interpreter: Interpreter, event: Event, events: list[dict[str, Any]]
    ) -> list[Any]:
        if interpreter.done or interpreter.waiting_for != "input":
            return []
        events.append(encode_event(event))
        return await self._resolve(interpreter, interpreter.feed(event), events)

    async def _resolve(
        self, interpreter: Interpreter, actions: list[Any], events: list[dict[str, Any]]
    ) -> list[Any]:
        """The actions, with every lookup made and its answer fed (and logged)."""
        out: list[Any] = []
        while actions:
            lookup = next((a for a in actions if isinstance(a, Lookup)), None)
            out += [a for a in actions if not isinstance(a, Lookup)]
            if lookup is None:
                break
            result = await perform_lookup(self._http(), lookup, secrets_from_env())
            events.append(encode_event(result))
            actions = interpreter.feed(result)
        return out

    async def _commit(
        self,
        interaction_id: int,
        interpreter: Interpreter,
        session: dict[str, Any],
        actions: list[Any],
        dialog_name: str,
        number: int,
    ) -> None:
        """The bot's messages and the session in one transaction; then delivery, and the
        handover or the end the dialog decided."""
        texts = list(_bot_messages(actions))
        handoff = next(
            (a for a in actions if isinstance(a, Queue | Hangup | Transfer | Voicemail | Callback)),
            None,
        )
        trace = interpreter.trace
        trace["version"] = {"dialog": dialog_name, "number": number}
        trace["summary"] = summarize(trace)
        trace["session"] = session
        note = ""
        if type(handoff) in NO_TEXT_FORM:
            note = (
                f"The dialog asked for {NO_TEXT_FORM[type(handoff)]}, which a text "
                "conversation cannot take; it waits in the inbox's queue instead."
            )
            trace["note"] = note
        sent: list[int] = []
        async with self.services.sessionmaker() as db:
            interaction = await lock_interaction(db, interaction_id)
            if interaction is None or interaction.state != InteractionState.SELF_SERVICE:
                return
            stored = dict((interaction.data or {}).get("ivr") or {}).get("session") or {}
            if int(stored.get("read_upto", -1)) > int(session["read_upto"]) or len(
                stored.get("events") or []
            ) > len(session["events"]):
                return  # another process took this step already
            interaction.data = {**(interaction.data or {}), "ivr": trace}
            db.add(interaction)
            for text in texts:
                message = Message(
                    interaction_id=interaction_id,
                    inbox_id=interaction.inbox_id,
                    direction=Direction.OUTBOUND,
                    sender_kind=SenderKind.BOT,
                    body=text,
                    delivery_status=DeliveryStatus.PENDING,
                    meta={"dialog": dialog_name},
                )
                db.add(message)
                await db.flush()
                sent.append(message.id)  # type: ignore[arg-type]
            closed = isinstance(handoff, Hangup)
            if handoff is not None or interpreter.done:  # the session ends: its answers
                await store_answers(db, interaction_id, trace)
            if closed:
                change_state(db, interaction, InteractionState.CLOSED, reason="self-served")
            elif handoff is None and not interpreter.done:
                enqueue(
                    db,
                    TEXT_DIALOG_JOB,
                    {"interaction_id": interaction_id, "no_input_after": len(session["events"])},
                    utcnow()
                    + timedelta(seconds=self.services.settings.text_dialog_no_input_seconds),
                )
            queue_id = interaction.queue_id
            await db.commit()
        bus = self.services.bus
        for message_id in sent:
            await bus.publish(interaction_topic(interaction_id), "message", message_id=message_id)
            await self.services.outbox.deliver(message_id)
        if closed:
            await bus.publish(
                interaction_topic(interaction_id), "state", state="closed", agent_id=None
            )
        elif isinstance(handoff, Queue):
            await self._hand_over(
                interaction_id, await self._queue_id(handoff.name, queue_id), handoff, note
            )
        elif handoff is not None or interpreter.done:
            await self._hand_over(interaction_id, queue_id, None, note)

    async def _queue_id(self, name: str, fallback: int | None) -> int | None:
        """The queue the dialog names (case-insensitive); the inbox's queue if none is."""
        async with self.services.sessionmaker() as db:
            query = select(QueueRow.id).where(func.lower(QueueRow.name) == name.strip().lower())
            found = (await db.exec(query)).first()
        return fallback if found is None else found

    async def _skills(self, names: tuple[str, ...]) -> dict[str, int]:
        """The dialog's skills that exist (an unknown one would keep the contact from anyone)."""
        if not names:
            return {}
        async with self.services.sessionmaker() as db:
            rows = await db.exec(select(Skill.name).where(col(Skill.name).in_(names)))
            return dict.fromkeys(rows.all(), 1)

    async def _hand_over(
        self, interaction_id: int, queue_id: int | None, action: Queue | None, note: str
    ) -> None:
        data = {k: v for k, v in (action.data if action else {}).items() if v not in (None, "")}
        if note:
            data["ivr_note"] = note
        await self.services.routing.enqueue(
            interaction_id,
            queue_id,
            priority=int(action.priority) if action else 0,
            skills=await self._skills(tuple(action.skills)) if action else None,
            data=data or None,
            reason="dialog handed over",
        )


def _bot_messages(actions: list[Any]) -> Iterator[str]:
    """Consecutive prompts and the question after them become one message."""
    says: list[str] = []
    for action in actions:
        if isinstance(action, Say):
            says.append(action.text or "")
        elif isinstance(action, Listen):
            text = render_prompt(says, action)
            says = []
            if text:
                yield text
    text = render_prompt(says, None)
    if text:
        yield text
