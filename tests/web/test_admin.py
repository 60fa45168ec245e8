"""Admin pages: every change is audited with the value before it; bad input gets a reason."""

from __future__ import annotations

import httpx
from sqlmodel import col, func, select

from hub.auth import verify_password
from hub.services import Services
from models import Agent, AgentSkill, AuditEntry, BusinessHours, Queue, QueueSkill, Skill, User
from tests.web.conftest import hx, login


async def audit_rows(services: Services) -> list[AuditEntry]:
    async with services.sessionmaker() as db:
        return list((await db.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all())


async def test_queue_update_is_audited_with_the_old_value(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "admin")
    async with services.sessionmaker() as db:
        general = (await db.exec(select(Queue).where(Queue.name == "General"))).one()
        billing_skill = (await db.exec(select(Skill).where(Skill.name == "billing"))).one()
    response = await client.post(
        f"/admin/queues/{general.id}",
        data={
            "name": "General support",
            "channels": ["webchat", "email"],
            "strategy": "round_robin",
            "priority": "2",
            "sla_seconds": "45",
            "offer_timeout_seconds": "25",
            "wrapup_seconds": "90",
            f"skill_{billing_skill.id}": "3",
            "active": "on",
        },
        headers=hx(client),
    )
    assert response.status_code == 200, response.text
    assert "General support" in response.text
    async with services.sessionmaker() as db:
        queue = await db.get(Queue, general.id)
        skills = (await db.exec(select(QueueSkill).where(QueueSkill.queue_id == general.id))).all()
    assert queue is not None and queue.channels == ["webchat", "email"]
    assert [(s.skill_id, s.min_level) for s in skills] == [(billing_skill.id, 3)]
    entry = (await audit_rows(services))[-1]
    assert entry.action == "update" and entry.entity == "queues"
    assert entry.before is not None and entry.before["name"] == "General"
    assert entry.before["sla_seconds"] == 30
    assert entry.after is not None and entry.after["name"] == "General support"


async def test_invalid_input_gets_422_with_a_reason_and_changes_nothing(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "admin")
    cases = [
        ("/admin/queues", {"name": "X", "strategy": "longest_idle"}, "at least one channel"),
        (
            "/admin/hours",
            {"name": "Bad", "timezone": "Mars/Olympus", "day_mon": "09:00-17:00"},
            "not a time zone",
        ),
        ("/admin/hours", {"name": "Bad", "timezone": "UTC", "day_tue": "17:00-09:00"}, "ends"),
        ("/admin/reasons", {"code": "Has Spaces", "label": "x"}, "lower-case"),
        ("/admin/agents", {"username": "newbie", "display_name": "N", "role": "agent"}, "password"),
        (
            "/admin/agents",
            {
                "username": "blank",
                "display_name": "B",
                "role": "agent",
                "password": "a-long-password",
                "is_agent": "on",
                "cap_webchat": "2",
            },
            "Capacity for voice is blank",
        ),
    ]
    for path, data, reason in cases:
        response = await client.post(path, data=data, headers=hx(client))
        assert response.status_code == 422, (path, response.text)
        assert reason in response.json()["detail"]
    assert await audit_rows(services) == []


async def test_duplicate_code_is_a_409(client: httpx.AsyncClient, services: Services):
    await login(client, "admin")
    response = await client.post(
        "/admin/dispositions", data={"code": "resolved", "label": "Again"}, headers=hx(client)
    )
    assert response.status_code == 409
    assert "already taken" in response.json()["detail"]


async def test_create_agent_with_skills_capacity_and_password(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "admin")
    async with services.sessionmaker() as db:
        spanish = (await db.exec(select(Skill).where(Skill.name == "spanish"))).one()
    response = await client.post(
        "/admin/agents",
        data={
            "username": "zoe",
            "display_name": "Zoe Zhang",
            "role": "agent",
            "password": "a-long-password",
            "active": "on",
            "is_agent": "on",
            f"skill_{spanish.id}": "5",
            "cap_webchat": "2",
            "cap_voice": "1",
            "cap_email": "0",
            "cap_sms": "0",
            "cap_telegram": "0",
            "cap_fax": "0",
            "cap_total": "2",
            "extension": "2001",
        },
        headers=hx(client),
    )
    assert response.status_code == 200, response.text
    async with services.sessionmaker() as db:
        user = (await db.exec(select(User).where(User.username == "zoe"))).one()
        agent = (await db.exec(select(Agent).where(Agent.user_id == user.id))).one()
        levels = (await db.exec(select(AgentSkill).where(AgentSkill.agent_id == agent.id))).all()
    assert verify_password(user.password_hash, "a-long-password")
    assert agent.capacity == {
        "voice": 1,
        "webchat": 2,
        "email": 0,
        "sms": 0,
        "telegram": 0,
        "fax": 0,
        "total": 2,
    }
    assert [(s.skill_id, s.level) for s in levels] == [(spanish.id, 5)]
    entry = (await audit_rows(services))[-1]
    assert entry.action == "create" and entry.before is None
    assert "password_hash" not in (entry.after or {})
    client.cookies.clear()
    await login(client, "zoe", "a-long-password")


async def test_delete_keeps_the_old_value_and_in_use_rows_are_refused(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "admin")
    async with services.sessionmaker() as db:
        hours = BusinessHours(name="Temp", timezone="UTC", weekly={"mon": [["09:00", "17:00"]]})
        db.add(hours)
        await db.commit()
        general = (await db.exec(select(Queue).where(Queue.name == "General"))).one()
    deleted = await client.post(f"/admin/hours/{hours.id}/delete", headers=hx(client))
    assert deleted.status_code == 200
    entry = (await audit_rows(services))[-1]
    assert entry.action == "delete" and entry.before is not None
    assert entry.before["weekly"] == {"mon": [["09:00", "17:00"]]}
    in_use = await client.post(f"/admin/queues/{general.id}/delete", headers=hx(client))
    assert in_use.status_code == 409
    detail = in_use.json()["detail"]
    assert detail.startswith("Cannot delete “General”: it is the default queue of inbox(es)")
    assert "Deactivate it instead" in detail
    async with services.sessionmaker() as db:
        assert (await db.exec(select(func.count()).select_from(Queue))).one() == 2


async def test_deleting_a_skill_in_use_lists_its_uses_and_asks_again(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "admin")
    async with services.sessionmaker() as db:
        billing = (await db.exec(select(Skill).where(Skill.name == "billing"))).one()
        holders = (await db.exec(select(AgentSkill).where(AgentSkill.skill_id == billing.id))).all()
    assert holders, "the demo gives some agents the billing skill"
    asked = await client.post(f"/admin/skills/{billing.id}/delete", headers=hx(client))
    assert asked.status_code == 200
    assert "“billing” is in use." in asked.text
    assert "required by queue(s) Billing" in asked.text
    assert "held by agent(s)" in asked.text
    assert "Delete anyway" in asked.text
    async with services.sessionmaker() as db:
        assert await db.get(Skill, billing.id) is not None  # nothing deleted yet
    assert await audit_rows(services) == []

    confirmed = await client.post(
        f"/admin/skills/{billing.id}/delete", data={"confirm": "1"}, headers=hx(client)
    )
    assert confirmed.status_code == 200
    assert "Deleted skills" in confirmed.text
    async with services.sessionmaker() as db:
        assert await db.get(Skill, billing.id) is None
        left = (await db.exec(select(AgentSkill).where(AgentSkill.skill_id == billing.id))).all()
    assert left == []
    entry = (await audit_rows(services))[-1]
    assert entry.action == "delete" and entry.before is not None


async def test_audit_log_page_lists_changes(client: httpx.AsyncClient):
    await login(client, "admin")
    await client.post("/admin/skills", data={"name": "french"}, headers=hx(client))
    page = await client.get("/admin/audit")
    assert page.status_code == 200
    assert "french" in page.text and "create" in page.text


async def test_every_admin_page_and_form_renders(client: httpx.AsyncClient):
    await login(client, "admin")
    for key in ("queues", "skills", "agents", "dispositions", "reasons", "hours"):
        for path in (f"/admin/{key}", f"/admin/{key}/new", f"/admin/{key}/1/edit"):
            response = await client.get(path, headers=hx(client) if path != f"/admin/{key}" else {})
            assert response.status_code == 200, (path, response.text[:300])
    missing = await client.get("/admin/skills/999/edit", headers=hx(client))
    assert missing.status_code == 404
    unknown = await client.get("/admin/nothing")
    assert unknown.status_code == 404


async def test_a_saved_change_tells_every_hub_process_to_reload_routing_config(
    client: httpx.AsyncClient, services: Services
):
    import asyncio

    from hub.events import ROUTING_TOPIC

    await login(client, "admin")
    async with services.bus.subscribe([ROUTING_TOPIC]) as events:
        created = await client.post(
            "/admin/skills", data={"name": "french", "description": ""}, headers=hx(client)
        )
        assert created.status_code == 200, created.text

        async def first_config() -> str:
            async for event in events:  # other routing events (wake-ups) may come first
                if event.name == "config":
                    return event.name
            return ""

        assert await asyncio.wait_for(first_config(), 5) == "config"
