"""An admin erases one contact's data; retention removes old transcripts and evaluations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import col, select

from hub.qa.erasure import apply_retention
from hub.qa.indexer import QaIndexer
from hub.qa.search import search
from models import (
    AuditEntry,
    Contact,
    ContactIdentity,
    Evaluation,
    EvaluationForm,
    Interaction,
    Message,
    QaDoc,
    Recording,
    Transcript,
    TranscriptSegment,
)
from tests.hub.qa.helpers import agent_id, make_call, make_text
from tests.web.conftest import login


async def test_admin_erases_one_contact_and_keeps_no_trace_of_it(
    client: httpx.AsyncClient, services
):
    var_dir = services.settings.var_dir
    async with services.sessionmaker() as db:
        alice = await agent_id(db, "alice")
        call = await make_call(
            db, agent=alice, queue=None, segments=[("customer", 0, "zanzibar holiday refund")]
        )
        chat = await make_text(
            db, channel="webchat", agent=alice, messages=[("contact", "zanzibar again")]
        )
        other = await make_text(
            db, channel="webchat", agent=alice, messages=[("contact", "zanzibar from someone else")]
        )
        # the chat belongs to the caller too, and the caller has an address
        row = await db.get(Interaction, chat.id)
        row.contact_id = call.contact_id  # type: ignore[union-attr]
        db.add(row)
        db.add(ContactIdentity(contact_id=call.contact_id, kind="email", address="zed@example.com"))
        (var_dir / "recordings").mkdir(parents=True, exist_ok=True)
        (var_dir / "recordings" / "erase-me.wav").write_bytes(b"RIFF....WAVE")
        recording = Recording(interaction_id=call.id, path="recordings/erase-me.wav", complete=True)  # type: ignore[arg-type]
        db.add(recording)
        form = EvaluationForm(name="F", definition={"sections": []})
        db.add(form)
        await db.flush()
        db.add(
            Evaluation(
                form_id=form.id,
                interaction_id=call.id,
                agent_id=alice,
                evaluator_id=1,
                answers={},
                score=50,
            )
        )  # type: ignore[arg-type]
        await db.commit()
    await QaIndexer(services).run_once()
    async with services.sessionmaker() as db:
        assert len((await search(db, "zanzibar")).hits) == 3

    await login(client, "admin")
    token = client.cookies.get("csrftoken", "")
    found = await client.get("/qa/erase", params={"contact": "ZED@example.com"})
    assert found.status_code == 200 and "2 interactions" in found.text
    missing = await client.get("/qa/erase", params={"contact": "nobody@example.com"})
    assert missing.status_code == 404
    unconfirmed = await client.post(
        f"/qa/contacts/{call.contact_id}/erase", data={"_csrf_token": token}
    )
    assert unconfirmed.status_code == 422
    done = await client.post(
        f"/qa/contacts/{call.contact_id}/erase",
        data={"confirm": "ERASE", "_csrf_token": token},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "was erased" in done.text

    assert not (var_dir / "recordings" / "erase-me.wav").exists()
    async with services.sessionmaker() as db:
        hits = (await search(db, "zanzibar")).hits
        assert [h.interaction_id for h in hits] == [other.id]
        for model in (Recording, Transcript, Evaluation):
            assert (
                await db.exec(
                    select(model).where(col(model.interaction_id).in_([call.id, chat.id]))
                )
            ).all() == []
        assert (
            await db.exec(
                select(TranscriptSegment).where(TranscriptSegment.interaction_id == call.id)
            )
        ).all() == []
        assert (await db.exec(select(Message).where(Message.interaction_id == chat.id))).all() == []
        assert (await db.exec(select(QaDoc).where(QaDoc.interaction_id == call.id))).all() == []
        contact = await db.get(Contact, call.contact_id)
        assert contact is not None and contact.name == ""
        assert (
            await db.exec(
                select(ContactIdentity).where(ContactIdentity.contact_id == call.contact_id)
            )
        ).all() == []
        assert await db.get(Interaction, call.id) is not None  # reports keep the shell
        entry = (
            await db.exec(select(AuditEntry).where(AuditEntry.action == "contact.erase"))
        ).one()
    kept = json.dumps([entry.before, entry.after])
    assert "zanzibar" not in kept and "zed@example.com" not in kept
    assert entry.after["erased"]["messages"] == 1 and entry.after["erased"]["recordings"] == 1


async def test_retention_removes_old_transcripts_and_evaluations(
    client: httpx.AsyncClient, services
):
    async with services.sessionmaker() as db:
        alice = await agent_id(db, "alice")
        old = await make_call(
            db, agent=alice, queue=None, segments=[("customer", 0, "ancient words")]
        )
        new = await make_call(
            db, agent=alice, queue=None, segments=[("customer", 0, "recent words")]
        )
        transcript = (
            await db.exec(select(Transcript).where(Transcript.interaction_id == old.id))
        ).one()
        transcript.created_at = datetime.now(UTC) - timedelta(days=100)
        db.add(transcript)
        form = EvaluationForm(name="F", definition={"sections": []})
        db.add(form)
        await db.flush()
        for interaction, age in ((old, 400), (new, 1)):
            db.add(
                Evaluation(
                    form_id=form.id,
                    interaction_id=interaction.id,
                    evaluator_id=1,
                    answers={},
                    created_at=datetime.now(UTC) - timedelta(days=age),
                )
            )  # type: ignore[arg-type]
        await db.commit()
    await QaIndexer(services).run_once()
    async with services.sessionmaker() as db:
        counts = await apply_retention(db, transcript_days=90, evaluation_days=365)
        await db.commit()
    assert counts == {"transcripts": 1, "evaluations": 1}
    async with services.sessionmaker() as db:
        assert [h.interaction_id for h in (await search(db, "words")).hits] == [new.id]
        assert [e.interaction_id for e in (await db.exec(select(Evaluation))).all()] == [new.id]
