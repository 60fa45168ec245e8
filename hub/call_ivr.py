"""The call service's self-service step: the inbox's published dialog answers the call.

``VoiceIvr`` is plugged into ``CallService.self_service`` when voice starts
(``channels.voice.runtime``). For each call whose inbox has a published dialog
(``hub.dialogs.published_dialog``) it runs that dialog on a ``VoicePort`` over the ``Call``:

- the speech engines (Piper, faster-whisper, Silero) load once per process, in the
  background at voice start, and every published voice dialog's fixed prompts are rendered
  then too (cached under ``<HUB_VAR_DIR>/prompts``), so the first caller does not wait;
- the dialog's ``queue`` becomes the ``QueueRequest`` (the queue by name, its priority,
  skills and data); ``hangup`` ends the call, closed as self-served;
- ``voicemail`` takes a message (``hub.voicemail``), and ``callback`` queues a callback
  request that keeps the caller's place (``hub.nobody_answers``); ``transfer`` is not taken
  by the hub yet: the caller is queued to the inbox's default queue rather than dropped,
  and the call's log and screen pop say why;
- a lookup URL that starts with "/" goes to the hub itself (``Settings.self_url``);
- a prompt an admin recorded in the call's language (``hub.prompt_recordings``) plays
  that recording instead of the voice;
- the dialog's trace (nodes, inputs, variables, outcome, what was played and heard) is
  stored on the interaction as ``data["ivr"]``, with a short ``summary`` of the caller's
  choices for the agent's screen pop; its survey answers become ``SurveyAnswer`` rows in
  the same transaction (``hub.surveys.store_answers``).

An inbox without a published dialog queues directly, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from sqlmodel import col, select

from channels.voice.call import Call
from hub import call_records as records
from hub.calls import QueueRequest, Store, queue_directly
from hub.dialogs import published_dialog
from hub.prompt_recordings import recording_store
from hub.routing.hours import is_open
from hub.routing.work import lock_interaction, write_lock
from hub.surveys import store_answers
from ivr_dialogs.actions import Callback, Hangup, Queue, Transfer, Voicemail
from ivr_dialogs.interpreter import CallerInfo
from ivr_dialogs.runner import secrets_from_env
from models import BusinessHours, Contact, Inbox, Interaction, Skill
from models import Queue as QueueRow

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from channels.voice.ivr_port import IvrSpeech
    from hub.services import Services

log = logging.getLogger(__name__)
QUEUE_NAMES_TTL = 60.0  # a safety net: "config" events drop them at once
UNSUPPORTED = {
    "transfer": "a transfer to an outside number",
}


class VoiceIvr:
    """The self-service step (``SelfService``) that runs the inbox's dialog on a call."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._loading: asyncio.Task[IvrSpeech] | None = None
        self._client: httpx.AsyncClient | None = None
        self._names: dict[str, int] | None = None  # queue names, lower case → id
        self._names_expire = 0.0

    # -- start, stop ---------------------------------------------------------------------

    def start(self) -> None:
        """Load the engines and render the published dialogs' prompts in the background."""
        if self._loading is None:
            self._loading = asyncio.create_task(self._load(), name="ivr-speech")
            self._loading.add_done_callback(_log_load_failure)

    async def _load(self) -> IvrSpeech:
        from channels.voice.ivr_port import IvrSpeech, dialog_prompts

        var_dir = self.services.settings.var_dir
        speech = await asyncio.to_thread(IvrSpeech.load, prompt_dir=var_dir / "prompts")
        await asyncio.to_thread(speech.warm_up)
        dialogs = await self._voice_dialogs()
        languages = {lang for p in dialogs for lang in p.dialog.model.languages or ()}
        await asyncio.to_thread(speech.add_fallback_voices, sorted(languages))
        for published in dialogs:
            dialog = published.dialog
            for language in dialog.model.languages or [dialog.model.language]:
                with contextlib.suppress(Exception):
                    await speech.prerender(dialog_prompts(dialog, language), language)
        log.info("IVR speech loaded and prompts rendered")
        return speech

    async def _voice_dialogs(self) -> list[Any]:
        async with self.services.sessionmaker() as db:
            inbox_ids = (
                await db.exec(
                    select(Inbox.id).where(Inbox.kind == "voice", col(Inbox.dialog_id).is_not(None))
                )
            ).all()
            found = [await published_dialog(db, inbox_id) for inbox_id in inbox_ids]
        return [p for p in found if p is not None]

    async def ready_to_answer(self, call: Call, inbox: Inbox) -> None:
        """Before a call to a dialog's inbox is answered (it rings meanwhile): wait for the
        engines and the prompts rendered at start, so the menu plays from the answer on.
        Answered first, the caller heard seconds of silence, and a key pressed in it cut
        the menu off before it was heard. Bounded by ``HUB_IVR_ANSWER_WAIT_SECONDS`` and
        by the caller giving up (CANCEL); a failed load is the call's own business later.
        """
        if inbox.dialog_id is None:
            return
        self.start()
        assert self._loading is not None
        if self._loading.done():
            return
        gone = asyncio.ensure_future(call.ended.wait())
        try:
            await asyncio.wait(
                {asyncio.shield(self._loading), gone},
                timeout=self.services.settings.ivr_answer_wait_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            gone.cancel()

    async def speech(self) -> IvrSpeech:
        """The engines, once loaded (a call that comes early waits for them)."""
        self.start()
        assert self._loading is not None
        return await asyncio.shield(self._loading)

    def http_client(self) -> httpx.AsyncClient:
        """One client for every lookup; relative URLs go to the hub itself."""
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.services.settings.self_url)
        return self._client

    async def stop(self) -> None:
        loading, self._loading = self._loading, None
        if loading is not None:
            if not loading.done():
                loading.cancel()
            with contextlib.suppress(BaseException):
                speech = await loading
                await speech.close()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- one call ------------------------------------------------------------------------

    async def __call__(self, call: Call, interaction: Interaction) -> QueueRequest | None:
        async with self.services.sessionmaker() as db:
            published = await published_dialog(db, interaction.inbox_id)
            if published is None:
                return await queue_directly(call, interaction)
            caller = await self._caller(db, call, interaction)
            hours_open = await self._hours_open(db, interaction.inbox_id)
            try:  # the admin's recorded prompts play instead of the voice
                recordings = await recording_store(self.services).for_dialog(
                    published.dialog_id, db
                )
            except Exception:
                log.exception("the recorded prompts of %s could not be read", published.name)
                recordings = {}
        from channels.voice.ivr_port import VoicePort

        speech = await self.speech()
        # A dialog published since start-up may speak a language without a voice yet.
        await asyncio.to_thread(speech.add_fallback_voices, published.dialog.model.languages)
        session = _Session(self, interaction)
        port = VoicePort(
            call,
            speech,
            on_queue=session.queue,
            on_transfer=session.unsupported("transfer"),
            on_voicemail=session.voicemail,
            on_callback=session.callback,
            on_hangup=session.hangup,
            recordings=recordings,
        )
        try:
            trace = await port.run(
                published.dialog,
                http_client=self.http_client(),
                secrets=secrets_from_env(),
                caller=caller,
                business_hours=hours_open,
            )
        except Exception:
            trace = port.trace or {"outcome": "error", "voice": port.voice_record()}
            trace.setdefault("errors", []).append("the dialog failed; queued to the inbox")
            log.exception("dialog %s failed on call %s", published.name, call.call_id)
            session.request = None
        trace["version"] = {"dialog": published.name, "number": published.number}
        if session.note:
            trace["note"] = session.note
        trace["summary"] = summarize(trace)
        request = session.request
        if request is None and trace.get("outcome") not in ("hangup", "caller_hangup"):
            # The dialog ended without a handoff (or failed) and the caller is still there.
            request = QueueRequest(queue_id=interaction.queue_id)
        if request is not None:  # stored with the enqueue (hub.calls), one transaction
            return replace(request, store=_trace_store(trace))
        await self._store(interaction.id, trace, closed=trace.get("outcome") == "hangup")
        return None

    async def _caller(self, db: Any, call: Call, interaction: Interaction) -> CallerInfo:
        contact = await db.get(Contact, interaction.contact_id)
        return CallerInfo(
            number=call.caller_number or "",
            name=contact.name if contact is not None else "",
            vip=contact.vip_level if contact is not None else 0,
            channel="voice",
            data={"dnis": call.called_number or ""},
        )

    async def _hours_open(self, db: Any, inbox_id: int) -> bool:
        inbox = await db.get(Inbox, inbox_id)
        hours = await db.get(BusinessHours, inbox.hours_id) if inbox and inbox.hours_id else None
        return is_open(hours, datetime.now(UTC))

    async def queue_id(self, name: str) -> int | None:
        """The queue a dialog names (case-insensitive), or None.

        Names are kept up to ``QUEUE_NAMES_TTL`` seconds (every call of a menu names the
        same few queues) and dropped at once by a ``routing`` "config" event (the admin
        pages publish it; ``invalidate``); a name not found is looked up again first."""
        key = name.strip().lower()
        names = await self._queue_names()
        if key not in names:  # created since: read them again before saying it is missing
            names = await self._queue_names(fresh=True)
        return names.get(key)

    async def _queue_names(self, *, fresh: bool = False) -> dict[str, int]:
        if fresh or self._names is None or time.monotonic() >= self._names_expire:
            async with self.services.sessionmaker() as db:
                rows = (await db.exec(select(QueueRow.id, QueueRow.name))).all()
            names: dict[str, int] = {}
            for queue_id, queue_name in sorted(rows):  # the oldest queue wins a clash
                names.setdefault(queue_name.lower(), queue_id)
            self._names, self._names_expire = names, time.monotonic() + QUEUE_NAMES_TTL
        return self._names

    def invalidate(self) -> None:
        """Queues changed (a ``routing`` "config" event): read their names again."""
        self._names = None

    async def known_skills(self, names: tuple[str, ...]) -> dict[str, int]:
        """The dialog's skills that exist (an unknown one would keep the call from anyone)."""
        if not names:
            return {}
        async with self.services.sessionmaker() as db:
            rows = await db.exec(select(Skill.name).where(col(Skill.name).in_(names)))
            return dict.fromkeys(rows.all(), 1)

    async def _store(self, interaction_id: int | None, trace: dict[str, Any], closed: bool) -> None:
        """The trace on the interaction; a dialog that hung up closes it as self-served."""
        async with self.services.sessionmaker() as db:
            await write_lock(db)  # SQLite: read and write under one lock (no busy snapshot)
            row = await lock_interaction(db, interaction_id)  # type: ignore[arg-type]
            if row is not None:
                await _trace_store(trace)(db, row)
                await db.commit()
            if closed and interaction_id is not None:
                after = await records.close_after_self_service(
                    db, interaction_id, str((trace.get("handoff") or {}).get("reason") or "ivr")
                )
                await after.publish(self.services.bus)


def _trace_store(trace: dict[str, Any]) -> Store:
    """Writes the trace on the interaction, and its survey answers, in the caller's
    transaction (``QueueRequest.store``)."""

    async def store(db: AsyncSession, row: Interaction) -> None:
        row.data = {**(row.data or {}), "ivr": trace}
        db.add(row)
        await store_answers(db, row.id, trace)  # type: ignore[arg-type]

    return store


class _Session:
    """What one call's dialog decided: the queue request, and a note for the log."""

    def __init__(self, ivr: VoiceIvr, interaction: Interaction) -> None:
        self.ivr = ivr
        self.interaction = interaction
        self.request: QueueRequest | None = None
        self.note = ""

    async def queue(self, action: Queue) -> None:
        queue_id = await self.ivr.queue_id(action.name)
        data = {k: v for k, v in action.data.items() if v not in (None, "")}
        if queue_id is None:
            self.note = f"The dialog named the queue '{action.name}', which does not exist."
            log.warning("interaction %s: %s", self.interaction.id, self.note)
            data["ivr_note"] = self.note
            queue_id = self.interaction.queue_id
        self.request = QueueRequest(
            queue_id=queue_id,
            priority=int(action.priority),
            skills=await self.ivr.known_skills(tuple(action.skills)),
            data=data,
        )

    async def voicemail(self, action: Voicemail) -> None:
        """The caller leaves a message (``hub.voicemail``, through ``hub.nobody_answers``)."""
        self.request = QueueRequest(queue_id=self.interaction.queue_id, divert="voicemail")

    async def callback(self, action: Callback) -> None:
        """A callback request in the dialog's queue, to ``number`` (else the caller ID)."""
        queue_id = await self.ivr.queue_id(action.queue) if action.queue else None
        data = {k: v for k, v in action.data.items() if v not in (None, "")}
        if action.number:
            data["callback_number"] = action.number
        self.request = QueueRequest(
            queue_id=queue_id or self.interaction.queue_id,
            priority=int(action.priority),
            data=data,
            divert="callback",
        )

    def unsupported(self, kind: str) -> Any:
        async def handle(action: Transfer) -> None:
            self.note = (
                f"The dialog asked for {UNSUPPORTED[kind]}, which the hub does not take yet;"
                " the caller waits in the inbox's queue instead."
            )
            log.warning("interaction %s: %s (%r)", self.interaction.id, self.note, action)
            self.request = QueueRequest(
                queue_id=self.interaction.queue_id, data={"ivr_note": self.note}
            )

        return handle

    async def hangup(self, action: Hangup) -> None:
        self.request = None


def summarize(trace: dict[str, Any]) -> list[str]:
    """The caller's choices in words, for the screen pop: "pressed 2", "said “billing”",
    "keyed 123456", then where the call went."""
    steps: list[str] = []
    for item in trace.get("inputs") or []:
        event, value = item.get("event"), item.get("value")
        if event in ("digit", "digits"):
            keys = str(value).rstrip("#")
            steps.append(f"pressed {keys}" if len(keys) == 1 else f"keyed {keys}")
        elif event == "speech":
            text = value.get("text") if isinstance(value, dict) else value
            steps.append(f"said “{text}”")
        elif event == "noinput":
            steps.append("said nothing")
    handoff = trace.get("handoff") or {}
    outcome = trace.get("outcome")
    if outcome == "queued" and handoff.get("name"):
        steps.append(f"queued to {handoff['name']}")
    elif outcome:
        steps.append(str(outcome).replace("_", " "))
    return steps


def _log_load_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the IVR's speech engines did not load", exc_info=task.exception())
