"""Live calls in the web layer: the supervisor's table (only monitored queues), the admin's
monitored-queues setting (audited), and clear refusals for verbs on calls that are not live."""

from __future__ import annotations

import httpx
from sqlmodel import col, select

from hub.services import Services
from models import (
    Agent,
    AuditEntry,
    Contact,
    Inbox,
    Interaction,
    InteractionSegment,
    Queue,
    SupervisorQueue,
    User,
)
from tests.web.conftest import hx, login
from web.live_calls import live_calls


async def _ids(services: Services) -> dict[str, int]:
    async with services.sessionmaker() as db:
        users = {u.username: u.id for u in (await db.exec(select(User))).all()}
        agents = {a.user_id: a.id for a in (await db.exec(select(Agent))).all()}
        queues = {q.name: q.id for q in (await db.exec(select(Queue))).all()}
        inbox = (await db.exec(select(Inbox).where(Inbox.kind == "voice"))).first()
    assert inbox is not None
    return {
        **{f"user:{k}": v for k, v in users.items()},  # type: ignore[dict-item]
        **{f"agent:{k}": agents[v] for k, v in users.items() if v in agents},  # type: ignore[index]
        **{f"queue:{k}": v for k, v in queues.items()},  # type: ignore[dict-item]
        "inbox": inbox.id,  # type: ignore[dict-item]
    }


async def _active_call(services: Services, ids: dict[str, int], queue: str, agent: str) -> int:
    async with services.sessionmaker() as db:
        contact = Contact(name="Caller")
        db.add(contact)
        await db.flush()
        interaction = Interaction(
            inbox_id=ids["inbox"],
            contact_id=contact.id,  # type: ignore[arg-type]
            channel="voice",
            state="active",
            queue_id=ids[f"queue:{queue}"],
            agent_id=ids[f"agent:{agent}"],
        )
        db.add(interaction)
        await db.flush()
        db.add(
            InteractionSegment(
                interaction_id=interaction.id,  # type: ignore[arg-type]
                agent_id=ids[f"agent:{agent}"],
                role="agent",
            )
        )
        await db.commit()
        return interaction.id  # type: ignore[return-value]


async def test_admin_limits_a_supervisor_to_monitored_queues_and_the_table_follows(
    client: httpx.AsyncClient, services: Services
):
    ids = await _ids(services)
    general = await _active_call(services, ids, "General", "alice")
    billing = await _active_call(services, ids, "Billing", "bob")
    async with services.sessionmaker() as db:
        everything = await live_calls(db, ids["user:sam"])
    assert [c.interaction_id for c in everything] == [general, billing]
    assert everything[0].agent == "Alice Martin"

    await login(client, "admin")
    form = await client.get(f"/admin/agents/{ids['user:sam']}/edit")
    assert f'name="monitor_{ids["queue:Billing"]}"' in form.text
    response = await client.post(
        f"/admin/agents/{ids['user:sam']}",
        data={
            "username": "sam",
            "display_name": "Sam Supervisor",
            "role": "supervisor",
            "active": "on",
            "is_agent": "on",
            **{f"cap_{c}": "1" for c in ("voice", "webchat", "sms", "email", "telegram", "fax")},
            "extension": "1006",
            f"monitor_{ids['queue:Billing']}": "on",
        },
        headers=hx(client),
    )
    assert response.status_code == 200, response.text
    async with services.sessionmaker() as db:
        rows = (await db.exec(select(SupervisorQueue))).all()
        only_billing = await live_calls(db, ids["user:sam"])
        entry = (await db.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc()))).first()
    assert [(r.user_id, r.queue_id) for r in rows] == [(ids["user:sam"], ids["queue:Billing"])]
    assert [c.interaction_id for c in only_billing] == [billing]
    assert entry is not None and entry.before is not None and entry.after is not None
    assert entry.before["monitored_queues"] == []
    assert entry.after["monitored_queues"] == [ids["queue:Billing"]]
    again = await client.get(f"/admin/agents/{ids['user:sam']}/edit")
    assert f'name="monitor_{ids["queue:Billing"]}" checked' in again.text

    client.cookies.clear()
    await login(client, "sam")
    page = await client.get("/supervisor/")
    assert f'id="call-row-{billing}"' in page.text
    assert f'id="call-row-{general}"' not in page.text
    # a call outside the monitored queues is refused before anything is dialled
    refused = await client.post(
        f"/supervisor/calls/{general}/supervise", data={"mode": "listen"}, headers=hx(client)
    )
    assert refused.status_code == 403 and "do not monitor" in refused.text


async def test_verbs_on_a_call_that_is_not_live_are_refused_with_a_reason(
    client: httpx.AsyncClient, services: Services
):
    ids = await _ids(services)
    iid = await _active_call(services, ids, "General", "alice")
    await login(client, "alice")
    for verb in ("hold", "resume", "mute", "recording/pause", "hangup"):
        response = await client.post(f"/console/calls/{iid}/{verb}", headers=hx(client))
        assert response.status_code == 409, verb
        assert "not live on this hub" in response.text
    bad = await client.post(
        f"/console/calls/{iid}/dtmf", data={"digits": "12<x>"}, headers=hx(client)
    )
    assert bad.status_code == 409 and "digits are 0-9" in bad.text
    card = await client.get(f"/console/calls/{iid}/card")
    assert card.status_code == 200 and "No live call." in card.text
    client.cookies.clear()
    await login(client, "sam")
    for path, data in (("supervise", {"mode": "whisper"}), ("release", {})):
        response = await client.post(
            f"/supervisor/calls/{iid}/{path}", data=data, headers=hx(client)
        )
        assert response.status_code == 409 and "not live on this hub" in response.text
    wrong = await client.post(
        f"/supervisor/calls/{iid}/supervise", data={"mode": "shout"}, headers=hx(client)
    )
    assert wrong.status_code == 409 and "pick listen, whisper or barge" in wrong.text
    client.cookies.clear()
    await login(client, "alice")
    forbidden = await client.post(f"/supervisor/calls/{iid}/release", headers=hx(client))
    assert forbidden.status_code == 403


async def test_monitoring_by_number_dnis_or_ivr_node_includes_calls_not_yet_answered(
    client: httpx.AsyncClient, services: Services
):
    ids = await _ids(services)
    answered = await _active_call(services, ids, "General", "alice")
    async with services.sessionmaker() as db:
        waiting = await db.get(Interaction, await _active_call(services, ids, "Billing", "bob"))
        assert waiting is not None
        waiting.state, waiting.agent_id = "queued", None
        waiting.data = {"dnis": "+15550100", "ivr": {"nodes": ["menu", "billing_pin"]}}
        db.add(waiting)
        other = await db.get(Interaction, answered)
        assert other is not None
        other.data = {"dnis": "+15550199"}
        db.add(other)
        await db.commit()
        by_dnis = await live_calls(db, ids["user:sam"], "+1 555 0100")
        by_node = await live_calls(db, ids["user:sam"], "billing_pin")
        nothing = await live_calls(db, ids["user:sam"], "+15557777777")
        plain = await live_calls(db, ids["user:sam"])
    assert [(c.interaction_id, c.state) for c in by_dnis] == [(waiting.id, "queued")]
    assert [c.interaction_id for c in by_node] == [waiting.id]
    assert nothing == []
    assert [c.interaction_id for c in plain] == [answered]  # unfiltered: answered calls only
    await login(client, "sam")
    page = await client.get("/supervisor/", params={"watch_calls": "billing_pin"})
    assert f'id="call-row-{waiting.id}"' in page.text
    assert "watch_calls=billing_pin" in page.text  # the tab's stream keeps the filter
    assert 'data-mode="listen"' not in page.text  # nobody to listen to before an answer
