"""When nobody can answer, the parts that need no call: the maximum wait's overflow keeps
the caller's place, the on-duty forward's staffing check, a callback retry reopens the
item at its old place, and retention deletes old audio (audited), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from channels.voice.settings import VoiceSettings
from channels.voice.sip_endpoint import SipEndpoint
from hub.callbacks import CallbackRunner
from hub.calls import CallService
from hub.interactions import change_state
from hub.jobs import ClaimedJob
from hub.nobody_answers import NobodyAnswers
from hub.outbound_calls import OutboundDialer
from hub.retention import Retention
from hub.services import Services
from hub.voicemail import VoicemailTaker
from models import (
    Agent,
    AuditEntry,
    CallbackAttempt,
    CallbackRequest,
    Interaction,
    InteractionState,
    PresenceState,
    Queue,
    Recording,
    utcnow,
)
from tests.hub.routing.helpers import agent_id, interaction, queue_id
from tests.hub.test_calls import incoming

S = InteractionState


def _nobody(services: Services) -> NobodyAnswers:
    calls = CallService(services, SipEndpoint(VoiceSettings(bind_port=0)))
    dialer = OutboundDialer(calls)

    async def no_speech():  # never asked for: nothing here speaks
        raise AssertionError("no prompt is played in these tests")

    return NobodyAnswers(calls, dialer, VoicemailTaker(services, no_speech))


async def test_maximum_wait_overflow_moves_the_caller_with_its_place(services: Services):
    call = await incoming(services, "+14155550101")
    general, billing = await queue_id(services, "General"), await queue_id(services, "Billing")
    await services.routing.enqueue(call.interaction_id, general)
    before = await interaction(services, call.interaction_id)

    await _nobody(services)._overflow(call.interaction_id, billing)

    after = await interaction(services, call.interaction_id)
    assert after.state == S.QUEUED and after.queue_id == billing and after.overflowed
    assert after.queued_at == before.queued_at  # its place in the line is kept


async def test_a_queue_is_staffed_only_by_a_logged_in_agent_with_voice(services: Services):
    general = await queue_id(services, "General")
    async with services.sessionmaker() as db:
        queue = await db.get(Queue, general)
        assert not await NobodyAnswers._staffed(db, queue)  # the demo starts offline
        agent = (await db.exec(select(Agent).where(Agent.capacity.is_not(None)))).first()
        assert agent is not None
        agent.presence = PresenceState.NOT_READY
        db.add(agent)
        await db.commit()
        assert await NobodyAnswers._staffed(db, queue) is (agent.capacity.get("voice", 0) > 0)


async def test_a_callback_retry_reopens_the_item_at_its_old_place(services: Services):
    call = await incoming(services, "+14155550102")
    general = await queue_id(services, "General")
    await services.routing.enqueue(call.interaction_id, general)
    first = await interaction(services, call.interaction_id)
    async with services.sessionmaker() as db:
        request = CallbackRequest(
            interaction_id=call.interaction_id, queue_id=general, number="+14155550102", tries=1
        )
        db.add(request)
        row = await db.get(Interaction, call.interaction_id)
        assert row is not None
        change_state(db, row, S.CLOSED, reason="callback try 1: no answer")
        await db.commit()
        request_id = request.id
    runner = CallbackRunner(services, _nobody(services).dialer)
    job = ClaimedJob(1, "callback.retry", {"request_id": request_id}, 1, 5)
    await runner.run_retry(job)
    await runner.run_retry(job)  # a job that runs twice does it once
    again = await interaction(services, call.interaction_id)
    assert again.state == S.QUEUED and again.queued_at == first.queued_at


async def test_retention_deletes_old_audio_and_audits_each(services: Services):
    services.settings.retention_days = 30
    call = await incoming(services, "+14155550103")
    var = services.settings.var_dir
    old_file, new_file = var / "recordings" / "old.wav", var / "recordings" / "new.wav"
    for path in (old_file, new_file):
        path.write_bytes(b"RIFF")
    async with services.sessionmaker() as db:
        old = Recording(
            interaction_id=call.interaction_id,
            path="recordings/old.wav",
            complete=True,
            started_at=utcnow() - timedelta(days=31),
        )
        new = Recording(
            interaction_id=call.interaction_id, path="recordings/new.wav", complete=True
        )
        db.add_all([old, new])
        await db.commit()
        old_id, new_id = old.id, new.id

    assert await Retention(services).sweep() == 1
    assert await Retention(services).sweep() == 0  # once
    assert not old_file.exists() and new_file.exists()
    async with services.sessionmaker() as db:
        assert (await db.get(Recording, old_id)).deleted_at is not None
        assert (await db.get(Recording, new_id)).deleted_at is None
        entries = (
            await db.exec(select(AuditEntry).where(AuditEntry.action == "recording.deleted"))
        ).all()
    assert [e.entity_id for e in entries] == [str(old_id)]
    assert entries[0].before is not None and entries[0].before["path"] == "recordings/old.wav"


async def test_a_callback_the_agents_phone_could_not_place_goes_back_uncounted(
    services: Services,
):
    call = await incoming(services, "+14155550104")
    general = await queue_id(services, "General")
    await services.routing.enqueue(call.interaction_id, general)
    first = await interaction(services, call.interaction_id)
    alice = await agent_id(services, "alice")
    await services.routing.pick_up(call.interaction_id, alice)
    async with services.sessionmaker() as db:
        request = CallbackRequest(
            interaction_id=call.interaction_id, queue_id=general, number="+14155550104"
        )
        db.add(request)
        await db.commit()
        request_id = request.id
    runner = CallbackRunner(services, _nobody(services).dialer)
    # the agent's phone is not registered: nothing is dialled (no trunk here either)
    assert await runner.run_due() == 1
    back = await interaction(services, call.interaction_id)
    assert back.state == S.QUEUED and back.agent_id is None
    assert back.queued_at == first.queued_at
    async with services.sessionmaker() as db:
        stored = await db.get(CallbackRequest, request_id)
        assert stored is not None and stored.state == "waiting" and stored.tries == 0
        attempts = (
            await db.exec(select(CallbackAttempt).where(CallbackAttempt.request_id == request_id))
        ).all()
    assert [a.outcome for a in attempts] == ["no SIP trunk is configured"]
