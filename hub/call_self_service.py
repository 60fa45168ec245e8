"""Back to self-service, and the post-call survey: the caller runs a dialog mid-call.

**Back to self-service.** From the call card the agent sends the caller to one node of a
published dialog (a payment, an identity check). Which nodes: an admin lists them on the
dialog's page (``Dialog.agent_nodes``, nodes of its main flow); no other node is offered.
While the dialog runs:

- the agent's leg leaves the caller's conference in the media engine, so the agent hears
  silence: neither the caller's voice nor their keys (RFC 4733 keys are never relayed; the
  dialog collects them from the caller's leg alone);
- the recording pauses (a ``recording_pause`` row with ``reason: self-service`` on its
  timeline), so a card number keyed or said is not recorded;
- the interaction stays active with the agent, so routing counts it against the agent's
  capacity and offers them no other call;
- the card shows "in self-service: <node>", and every other verb but hang-up is refused.

The session starts at the node (``Interpreter(start_at=...)``) and ends where the dialog
ends. A ``hangup`` node hangs the caller up and the interaction ends as any call does
(the agent wraps up); so does the caller hanging up. Every other end (the flow's end, a
``return``, a ``queue`` node and the other hand-offs, or an error) brings the caller back:
re-bridged with the same agent, the recording resumed, and the result (outcome, the
dialog's variables, the hand-off's data) shown on the card, stored on the interaction
(``data["self_service"]``) and in a ``self_service_return`` control row. Survey answers
given in it are stored like the IVR's (``hub.surveys.store_answers``).

**Post-call survey.** A queue may name a survey dialog (``Queue.survey_dialog_id``). When
the agent's leg ends (their phone's BYE, or the card's hang-up) and the caller is still
there, the agent's part ends and the interaction goes to wrap-up at once (the agent is
free), and the caller hears the dialog's published version from its start. Its answers
are stored with the interaction (``store_answers``) when it ends, including when the
caller hangs up half-way (the questions answered so far, and those left unanswered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from channels.voice.call import CallState
from channels.voice.ivr_port import VoicePort
from hub import call_records as records
from hub.call_controls import ControlError, ControlState
from hub.dialogs import PublishedDialog, load_version
from hub.surveys import store_answers
from ivr_dialogs.actions import Hangup
from ivr_dialogs.runner import secrets_from_env
from models import (
    ControlKind,
    Dialog,
    DialogVersion,
    Interaction,
    InteractionState,
    Queue,
    utcnow,
)

if TYPE_CHECKING:
    from hub.call_ivr import VoiceIvr
    from hub.calls import CallService, LiveCall

log = logging.getLogger(__name__)
RETURN_OUTCOMES_ENDING = ("hangup", "caller_hangup")  # the call ends instead of returning
MAX_RESULT_VALUE = 200  # characters of one variable kept for the card


@dataclass(frozen=True, slots=True)
class Entry:
    """A node agents may send callers to: "dialog → node"."""

    dialog_id: int
    dialog: str
    node: str

    @property
    def key(self) -> str:
        return f"{self.dialog_id}:{self.node}"


async def offered_entries(db: Any) -> list[Entry]:
    """Every node an admin offered, of dialogs that have a published version."""
    rows = await db.exec(
        select(Dialog)
        .where(col(Dialog.published_version_id).is_not(None))
        .order_by(col(Dialog.name))
    )
    return [
        Entry(d.id, d.name, node)  # type: ignore[arg-type]
        for d in rows.all()
        for node in (d.agent_nodes or [])
    ]


async def published_by_id(db: Any, dialog_id: int) -> PublishedDialog | None:
    """A dialog's published version, loaded (None: no such dialog, or not published)."""
    dialog = await db.get(Dialog, dialog_id)
    if dialog is None or dialog.published_version_id is None:
        return None
    version = await db.get(DialogVersion, dialog.published_version_id)
    if version is None:
        return None
    return PublishedDialog(
        dialog_id=dialog.id,
        name=dialog.name,
        version_id=version.id,  # type: ignore[arg-type]
        number=version.number,
        dialog=load_version(dialog.name, version),
    )


class _ReturningPort(VoicePort):
    """A voice port whose dialog's end does not hang up: the caller goes back to the agent.
    Only an explicit ``hangup`` node ends the call (decided once the trace is known)."""

    async def hangup(self, action: Hangup) -> None:
        self.handoff = action
        await self.close()


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_RESULT_VALUE:
        return value[:MAX_RESULT_VALUE] + "…"
    return value


def result_of(trace: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """What the agent sees and the interaction keeps: outcome, variables, hand-off data."""
    variables = {k: _short(v) for k, v in (trace.get("variables") or {}).items() if k != "language"}
    handoff = trace.get("handoff") or {}
    data = handoff.get("data") if isinstance(handoff, dict) else None
    return {
        "dialog": entry["dialog"],
        "node": entry["node"],
        "outcome": str(trace.get("outcome") or "error"),
        "variables": variables,
        "data": {k: _short(v) for k, v in (data or {}).items()},
        "nodes": list(trace.get("nodes") or [])[:50],
        "errors": list(trace.get("errors") or [])[:5],
    }


class CallDialogs:
    """Dialogs run on a live call's caller leg: back to self-service and the survey."""

    def __init__(self, calls: CallService) -> None:
        self.calls = calls
        self.services = calls.services
        self.tasks: dict[int, asyncio.Task[None]] = {}

    @property
    def controls(self) -> Any:
        return self.calls.controls

    def ivr(self) -> VoiceIvr | None:
        from hub.call_ivr import VoiceIvr

        step = self.calls.self_service
        return step if isinstance(step, VoiceIvr) else None

    def running(self, live: LiveCall) -> bool:
        task = self.tasks.get(live.interaction_id)
        return task is not None and not task.done()

    async def cancel(self, live: LiveCall) -> None:
        """The call is ending another way (the agent hung up mid-dialog): stop the dialog."""
        task = self.tasks.pop(live.interaction_id, None)
        if task is None or task.done() or task is asyncio.current_task():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    # -- back to self-service ----------------------------------------------------------

    async def send(
        self,
        interaction_id: int,
        agent_id: int | None,
        user_id: int,
        dialog_id: int,
        node: str,
    ) -> None:
        """The agent sends the caller to ``node`` of the dialog; the result comes back."""
        live = self.controls.live_for_agent(interaction_id, agent_id)
        st: ControlState = self.controls.state.setdefault(interaction_id, ControlState())
        if live.customer.held:
            raise ControlError("resume the caller first")
        if st.consult is not None:
            raise ControlError("end the consult or conference first")
        if st.supervisor is not None:
            raise ControlError("a supervisor is on the call; they would hear the caller")
        if self.running(live):
            raise ControlError("the caller is in a dialog already")
        if self.ivr() is None:
            raise ControlError("the IVR is turned off on this hub (HUB_IVR_ENABLED)")
        st.self_service = {"dialog": "", "node": node}  # taken: a second click is refused
        try:
            published = await self._offered(dialog_id, node)
        except BaseException:
            st.self_service = None
            raise
        assert live.agent_call is not None
        entry = {
            "dialog": published.name,
            "dialog_id": dialog_id,
            "version": published.number,
            "node": node,
            "since": utcnow().isoformat(),
        }
        # Detached in the mixer first: not one frame of the caller reaches the agent.
        live.agent_call.leave_conference()
        live.customer.flush_dtmf()
        paused_at = live.customer.pause_recording()
        st.self_service, st.self_service_result = entry, None
        detail = {k: entry[k] for k in ("dialog", "version", "node")}
        await self.controls.record(live, ControlKind.SELF_SERVICE, user_id, detail)
        await self.controls.record(
            live, ControlKind.RECORDING_PAUSE, user_id, {"reason": "self-service"}, offset=paused_at
        )
        await self.controls.publish(live)
        task = asyncio.create_task(self._self_service(live, st, published, entry, user_id))
        task.add_done_callback(_log_failure)
        self.tasks[interaction_id] = task

    async def _offered(self, dialog_id: int, node: str) -> PublishedDialog:
        """The published dialog, if an admin offers ``node`` of it to agents."""
        async with self.services.sessionmaker() as db:
            dialog = await db.get(Dialog, dialog_id)
            if dialog is None or node not in (dialog.agent_nodes or []):
                raise ControlError("that dialog step is not offered to agents")
            published = await published_by_id(db, dialog_id)
        if published is None:
            raise ControlError(f"the dialog {dialog.name} has no published version")
        if node not in published.dialog.main.nodes:
            raise ControlError(f"the published {dialog.name} has no node '{node}'")
        return published

    async def _self_service(
        self,
        live: LiveCall,
        st: ControlState,
        published: PublishedDialog,
        entry: dict[str, Any],
        user_id: int,
    ) -> None:
        try:
            trace = await self._run(live, published, entry["node"], _ReturningPort)
        except asyncio.CancelledError:
            st.self_service = None
            raise
        except Exception:
            log.exception("self-service dialog failed on interaction %s", live.interaction_id)
            trace = {"outcome": "error", "errors": ["the dialog failed"]}
        result = result_of(trace, entry)
        await self._store(live.interaction_id, "self_service", result, trace)
        customer = live.customer
        if result["outcome"] == "hangup" and customer.state is not CallState.ENDED:
            await customer.hangup()  # the dialog's goodbye: the call ends as usual
        st.self_service, st.self_service_result = None, result
        back = customer.state is not CallState.ENDED and not live.finished
        resumed_at: float | None = None
        agent_call = live.agent_call
        if back and agent_call is not None and agent_call.state is not CallState.ENDED:
            customer.flush_dtmf()
            customer.bridge(agent_call)
            if not st.agent_paused:
                resumed_at = customer.resume_recording()
        with contextlib.suppress(Exception):  # the call may be finishing meanwhile
            await self.controls.record(live, ControlKind.SELF_SERVICE_RETURN, user_id, result)
            if resumed_at is not None:
                await self.controls.record(
                    live,
                    ControlKind.RECORDING_RESUME,
                    user_id,
                    {"reason": "self-service"},
                    offset=resumed_at,
                )
            await self.controls.publish(live)
        self.tasks.pop(live.interaction_id, None)
        live.poke.set()

    # -- the post-call survey ------------------------------------------------------------

    async def survey_after_agent(self, live: LiveCall) -> bool:
        """The agent's leg ended: send the caller to the queue's survey, if it has one.
        True when the survey took the caller (the agent is then in wrap-up)."""
        if live.customer.state is CallState.ENDED or live.diverted or live.finished:
            return False
        if self.ivr() is None or self.controls.handed_off(live):
            return False
        async with self.services.sessionmaker() as db:
            interaction = await db.get(Interaction, live.interaction_id)
            if interaction is None or interaction.state != InteractionState.ACTIVE:
                return False
            queue = await db.get(Queue, interaction.queue_id) if interaction.queue_id else None
            if queue is None or queue.survey_dialog_id is None:
                return False
            published = await published_by_id(db, queue.survey_dialog_id)
            agent_id = interaction.agent_id
        if published is None:
            log.warning("queue %s: its survey dialog has no published version", queue.name)
            return False
        live.surveying = True
        await self.cancel(live)
        agent_call, leg_id = live.agent_call, live.agent_leg_id
        await self.controls.release_agent(live, "call ended")
        live.agent_call, live.agent_id, live.agent_leg_id = None, None, None
        if agent_call is not None and leg_id is not None:
            async with self.services.sessionmaker() as db:
                await self.calls._close_leg(db, leg_id, agent_call)
                if live.recording_id is not None:
                    await records.add_recording_leg(db, live.recording_id, leg_id)
        await self.controls.record(
            live, ControlKind.SURVEY, None, {"dialog": published.name, "queue": queue.name}
        )
        if agent_id is not None:
            with contextlib.suppress(LookupError, ValueError, PermissionError):
                await self.services.routing.wrap_up(live.interaction_id, agent_id=agent_id)
        task = asyncio.create_task(self._survey(live, published))
        task.add_done_callback(_log_failure)
        self.tasks[live.interaction_id] = task
        return True

    async def _survey(self, live: LiveCall, published: PublishedDialog) -> None:
        try:
            trace = await self._run(live, published, None, VoicePort)
        except Exception:
            log.exception("post-call survey failed on interaction %s", live.interaction_id)
            trace = {"outcome": "error", "errors": ["the survey failed"]}
        entry = {"dialog": published.name, "node": published.dialog.main.start}
        result = result_of(trace, entry)
        await self._store(live.interaction_id, "post_call_survey", result, trace)
        if live.customer.state is not CallState.ENDED:
            await live.customer.hangup()
        self.tasks.pop(live.interaction_id, None)
        live.poke.set()

    # -- shared --------------------------------------------------------------------------

    async def _run(
        self,
        live: LiveCall,
        published: PublishedDialog,
        start_at: str | None,
        port_class: type[VoicePort],
    ) -> dict[str, Any]:
        """The dialog on the caller's leg, with the hub's speech, lookups and secrets."""
        ivr = self.ivr()
        if ivr is None:
            raise ControlError("the IVR is turned off on this hub")
        call = live.customer
        async with self.services.sessionmaker() as db:
            interaction = await db.get(Interaction, live.interaction_id)
            assert interaction is not None
            caller = await ivr._caller(db, call, interaction)
            hours_open = await ivr._hours_open(db, interaction.inbox_id)
        speech = await ivr.speech()
        await asyncio.to_thread(speech.add_fallback_voices, published.dialog.model.languages)

        async def noted(_action: Any) -> None:  # the trace keeps the hand-off
            return None

        port = port_class(
            call,
            speech,
            on_queue=noted,
            on_transfer=noted,
            on_voicemail=noted,
            on_callback=noted,
        )
        trace = await port.run(
            published.dialog,
            http_client=ivr.http_client(),
            secrets=secrets_from_env(),
            caller=caller,
            business_hours=hours_open,
            start_at=start_at,
        )
        trace["version"] = {"dialog": published.name, "number": published.number}
        return trace

    async def _store(
        self, interaction_id: int, key: str, result: dict[str, Any], trace: dict[str, Any]
    ) -> None:
        """The result in ``data[key]`` (a list: one item per run) and its survey answers."""
        async with self.services.sessionmaker() as db:
            row = await db.get(Interaction, interaction_id)
            if row is None:
                return
            data = dict(row.data or {})
            data[key] = [*(data.get(key) or []), result]
            row.data = data
            db.add(row)
            await store_answers(db, interaction_id, trace)
            await db.commit()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a dialog on a live call failed", exc_info=task.exception())
