"""The IVR step's decisions, on the seeded database: where a dialog's handoff sends the
call, what happens to handoffs the hub does not take yet, and what the screen pop says."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import col, select

import ivr_dialogs
from hub.call_ivr import VoiceIvr, _Session, summarize
from hub.services import Services
from ivr_dialogs.actions import Callback, Queue, Transfer, Voicemail
from ivr_dialogs.events import text_to_event
from models import InteractionState, SurveyAnswer
from tests.hub.routing.helpers import interaction, queue_id
from tests.hub.test_calls import incoming


async def test_a_queue_handoff_becomes_the_request_for_the_named_queue(services: Services):
    call = await incoming(services, "+15551230001")
    row = await interaction(services, call.interaction_id)
    session = _Session(VoiceIvr(services), row)
    data = {"account": "123456", "customer": "Ada Lovelace", "plan": ""}
    await session.queue(Queue("Billing", 3, ("billing", "no-such-skill"), data))
    request = session.request
    assert request is not None
    assert request.queue_id == await queue_id(services, "Billing")  # names match any case
    assert request.priority == 3
    assert request.skills == {"billing": 1}  # an unknown skill would strand the call
    assert request.data == {"account": "123456", "customer": "Ada Lovelace"}
    assert session.note == ""


async def test_an_unknown_queue_or_an_unsupported_handoff_waits_in_the_inbox_queue(
    services: Services,
):
    call = await incoming(services, "+15551230002")
    row = await interaction(services, call.interaction_id)
    general = await queue_id(services, "General")
    assert row.queue_id == general  # the Phone inbox's default queue

    session = _Session(VoiceIvr(services), row)
    await session.queue(Queue("sales"))
    assert session.request is not None and session.request.queue_id == general
    assert "'sales'" in session.note and session.request.data["ivr_note"] == session.note

    session = _Session(VoiceIvr(services), row)
    await session.unsupported("transfer")(Transfer("+15557654321"))
    assert session.request is not None and session.request.queue_id == general
    assert "does not take yet" in session.note
    assert session.request.data == {"ivr_note": session.note}


async def test_voicemail_and_callback_handoffs_divert_the_call(services: Services):
    """The dialog's voicemail and callback reach hub.nobody_answers through the request."""
    call = await incoming(services, "+15551230012")
    row = await interaction(services, call.interaction_id)
    general = await queue_id(services, "General")
    session = _Session(VoiceIvr(services), row)
    await session.voicemail(Voicemail("main"))
    assert session.request is not None and session.request.divert == "voicemail"
    assert session.request.queue_id == general
    session = _Session(VoiceIvr(services), row)
    await session.callback(Callback("general", "+15551230099", priority=2))
    request = session.request
    assert request is not None and request.divert == "callback"
    assert request.queue_id == general and request.priority == 2
    assert request.data["callback_number"] == "+15551230099"


async def test_a_dialog_that_hangs_up_closes_the_call_as_self_served(services: Services):
    call = await incoming(services, "+15551230003")
    trace = {"outcome": "hangup", "handoff": {"reason": "self-service completed"}}
    await VoiceIvr(services)._store(call.interaction_id, trace, closed=True)
    row = await interaction(services, call.interaction_id)
    assert row.state == InteractionState.CLOSED
    assert row.data["ivr"] == trace
    assert row.data["caller"] == "+15551230003"  # the call's own data is kept


async def test_a_calls_survey_answers_are_stored_once_with_its_trace(services: Services):
    call = await incoming(services, "+15551230004")
    source = (
        Path(ivr_dialogs.__file__).parent / "library" / "satisfaction_survey.yaml"
    ).read_text()
    session = ivr_dialogs.Interpreter(ivr_dialogs.load_dialog(source, file="s.yaml"))
    session.start()
    for typed in ["yes", "4", "yes", "10#"]:
        session.feed(text_to_event(typed))
    trace = {**session.trace, "version": {"dialog": "satisfaction_survey", "number": 1}}
    assert trace["outcome"] == "hangup"
    ivr = VoiceIvr(services)
    await ivr._store(call.interaction_id, trace, closed=True)
    await ivr._store(call.interaction_id, trace, closed=True)  # stored again: no new rows
    async with services.sessionmaker() as db:
        rows = (
            await db.exec(
                select(SurveyAnswer.question, SurveyAnswer.value_number, SurveyAnswer.channel)
                .where(SurveyAnswer.interaction_id == call.interaction_id)
                .order_by(col(SurveyAnswer.position))
            )
        ).all()
    assert rows == [
        ("satisfaction", 4.0, "voice"),
        ("resolved", 1.0, "voice"),
        ("recommend", 10.0, "voice"),
    ]


def test_the_screen_pop_summary_says_what_the_caller_did() -> None:
    trace = {
        "inputs": [
            {"node": "main", "event": "speech", "value": {"text": "billing", "confidence": 0.9}},
            {"node": "ask_account", "event": "noinput", "value": None},
            {"node": "ask_account", "event": "digits", "value": "123456#"},
        ],
        "outcome": "queued",
        "handoff": {"name": "billing"},
    }
    assert summarize(trace) == [
        "said “billing”",
        "said nothing",
        "keyed 123456",
        "queued to billing",
    ]
    keyed = {"inputs": [{"event": "digits", "value": "2"}], "outcome": "caller_hangup"}
    assert summarize(keyed) == ["pressed 2", "caller hangup"]
