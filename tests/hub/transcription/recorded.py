"""A finished, recorded call in the hub's database, made through the call service's own
database steps (``hub.call_records``): an inbound interaction with its customer leg, an agent
leg answered when the agent starts speaking, the IVR trace, and a recording completed with
``finish_recording``, which queues its transcription."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from hub import call_records as records
from hub.seed import DEMO_DID
from hub.services import Services
from models import Agent, CallLegKind, Inbox, Interaction, Recording, User
from tests.hub.transcription.call_audio import Placed


async def agent_named(services: Services, username: str) -> tuple[int, str]:
    async with services.sessionmaker() as db:
        row = (
            await db.exec(
                select(Agent.id, User.display_name).join(User).where(User.username == username)
            )
        ).one()
    return row[0], row[1]  # type: ignore[return-value]


async def recorded_call(
    services: Services,
    wav: Path,
    placed: list[Placed],
    *,
    agent_id: int,
    keep_original_role: str | None = None,
    name: str = "call",
) -> int:
    """The call's recording id, complete and queued for transcription."""
    var_dir = services.settings.var_dir
    async with services.sessionmaker() as db:
        inbox = await records.inbox_for_dnis(db, DEMO_DID)
        assert inbox is not None
        if keep_original_role is not None:
            inbox.keep_original_audio = True
            inbox.original_audio_role = keep_original_role
            db.add(inbox)
            await db.commit()
        created = await records.open_inbound(
            db,
            inbox,
            raw_caller="+12125550142",
            dnis=DEMO_DID,
            sip_call_id=f"{name}@test",
            remote_uri="sip:+12125550142@gateway",
            node="test",
        )
        relative = f"recordings/{created.interaction_id}-{name}.wav"
        (var_dir / "recordings").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wav, var_dir / relative)
        recording_id = await records.start_recording(
            db, created.interaction_id, relative, [created.leg_id]
        )
        recording = await db.get(Recording, recording_id)
        assert recording is not None
        started = recording.started_at
        first_agent = next((p for p in placed if p.speaker == "agent"), None)
        answered = first_agent.start - 0.3 if first_agent else placed[-1].end + 1
        agent_leg = await records.add_leg(
            db,
            created.interaction_id,
            kind=CallLegKind.AGENT,
            direction="outbound",
            sip_call_id=f"{name}-agent@test",
            remote_uri="sip:1001@hub",
            node="test",
            agent_id=agent_id,
            started_at=started + timedelta(seconds=max(0.0, answered - 2)),
        )
        await records.update_leg(
            db,
            agent_leg,
            answered_at=started + timedelta(seconds=answered),
            ended_at=started + timedelta(seconds=placed[-1].end + 0.5),
        )
        await records.add_recording_leg(db, recording_id, agent_leg)
        interaction = await db.get(Interaction, created.interaction_id)
        assert interaction is not None
        interaction.data = {
            **interaction.data,
            "ivr": {"voice": {"prompts": [{"text": p.text} for p in placed if p.speaker == "ivr"]}},
        }
        db.add(interaction)
        await db.commit()
        await records.finish_recording(db, recording_id, var_dir / relative)
    return recording_id


async def voice_inbox(services: Services) -> Inbox:
    async with services.sessionmaker() as db:
        inbox = await records.inbox_for_dnis(db, DEMO_DID)
    assert inbox is not None
    return inbox
