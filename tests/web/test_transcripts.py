"""A call's transcript in the console and the recording policy, through the running app:
its status while queued or running, then the redacted segments per speaker; the original
audio only for the role the inbox names, every play of it audited; the admin's policy form."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from sqlmodel import select

from hub.services import Services
from models import AuditEntry, Transcript, TranscriptStatus
from tests.hub.transcription.call_audio import Line, Placed, build_call
from tests.hub.transcription.recorded import agent_named, recorded_call, voice_inbox
from tests.web.conftest import BASE_URL, hx, login

pytestmark = pytest.mark.parametrize("web_database_url", ["sqlite"], indirect=True)


@pytest.fixture(autouse=True)
def workers_not_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine running the tests is busy: SCHED_IDLE workers could wait for long."""
    monkeypatch.setenv("HUB_QA_TRANSCRIBE_IDLE", "false")


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Placed]]:
    path = tmp_path_factory.mktemp("web-call") / "call.wav"
    script = [
        Line("agent", "Hello, you are through to support. How can I help?"),
        Line("customer", "Hi, my name is Maria Garcia and I need a refund."),
    ]
    return path, build_call(path, script)


async def settled(services: Services, recording_id: int) -> Transcript:
    for _ in range(2400):
        async with services.sessionmaker() as db:
            t = (
                await db.exec(select(Transcript).where(Transcript.recording_id == recording_id))
            ).one()
        if t.status in (TranscriptStatus.DONE, TranscriptStatus.FAILED):
            return t
        await asyncio.sleep(0.1)
    raise AssertionError("never transcribed")


async def test_the_console_shows_the_transcript_and_only_the_named_role_plays_originals(
    app: Litestar,
    client: httpx.AsyncClient,
    services: Services,
    call: tuple[Path, list[Placed]],
) -> None:
    wav, placed = call
    agent_id, agent_name = await agent_named(services, "dave")
    recording_id = await recorded_call(
        services, wav, placed, agent_id=agent_id, keep_original_role="qa"
    )
    await login(client, "sam")  # a supervisor reads any call
    early = await client.get(f"/console/transcripts/{recording_id}", headers=hx(client))
    assert early.status_code == 200
    status = re.search(r'data-status="(\w+)"', early.text)
    assert status is not None
    if status.group(1) in ("queued", "running"):  # it polls itself until it settles
        assert f'hx-get="/console/transcripts/{recording_id}"' in early.text
    transcript = await settled(services, recording_id)
    assert transcript.status == TranscriptStatus.DONE, transcript.error

    view = await client.get(f"/console/transcripts/{recording_id}", headers=hx(client))
    assert 'data-status="done"' in view.text and "hx-trigger" not in view.text
    assert f"Agent {agent_name}" in view.text and "Customer" in view.text
    assert "[NAME]" in view.text and "Garcia" not in view.text
    past = await client.get(f"/console/history/{transcript.interaction_id}", headers=hx(client))
    assert past.status_code == 200 and "[NAME]" in past.text
    assert f"/recordings/{recording_id}/original" in past.text

    redacted = await client.get(f"/recordings/{recording_id}")
    assert redacted.status_code == 200 and redacted.content[:4] == b"RIFF"
    refused = await client.get(f"/recordings/{recording_id}/original")
    assert refused.status_code == 403  # a supervisor, but the inbox names QA
    quinn = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
    async with quinn:
        await login(quinn, "quinn")
        original = await quinn.get(f"/recordings/{recording_id}/original")
        assert original.status_code == 200 and original.content != redacted.content
    async with services.sessionmaker() as db:
        plays = (
            await db.exec(select(AuditEntry).where(AuditEntry.action == "recording.original.play"))
        ).all()
    assert len(plays) == 1 and plays[0].entity_id == str(recording_id)


async def test_the_admin_sets_an_inbox_s_recording_policy(
    client: httpx.AsyncClient, services: Services
) -> None:
    inbox = await voice_inbox(services)
    await login(client, "admin")
    page = await client.get("/admin/recording-policy")
    assert page.status_code == 200 and "redacted copy only" in page.text
    assert 'id="new-recording-policy"' not in page.text
    bad = await client.post(
        f"/admin/recording-policy/{inbox.id}",
        data={"keep_original_audio": "on", "original_audio_role": ""},
        headers=hx(client),
    )
    assert bad.status_code == 422 and "Name the role" in bad.text
    ok = await client.post(
        f"/admin/recording-policy/{inbox.id}",
        data={"keep_original_audio": "on", "original_audio_role": "supervisor"},
        headers=hx(client),
    )
    assert ok.status_code == 200 and "original kept, playable by supervisor" in ok.text
    refused = await client.post("/admin/recording-policy", data={}, headers=hx(client))
    assert refused.status_code == 409
