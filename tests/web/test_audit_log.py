"""The audit log for people: names, a readable diff, filters, paging, CSV, and restore."""

from __future__ import annotations

import csv
import io

import httpx
from sqlmodel import col, select

from hub.services import Services
from models import AuditEntry, Queue, QueueSkill, Skill
from tests.web.conftest import hx, login


async def _general(services: Services) -> Queue:
    async with services.sessionmaker() as db:
        return (await db.exec(select(Queue).where(Queue.name == "General"))).one()


async def test_an_update_reads_as_names_and_is_restored_with_its_skills(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "admin")
    general = await _general(services)
    async with services.sessionmaker() as db:
        billing = (await db.exec(select(Skill).where(Skill.name == "billing"))).one()
        skills_before = sorted(
            (s.skill_id, s.min_level)
            for s in (await db.exec(select(QueueSkill).where(QueueSkill.queue_id == general.id)))
        )
    changed = await client.post(
        f"/admin/queues/{general.id}",
        data={
            "name": "General <support>",
            "channels": ["webchat", "email"],
            "strategy": "longest_idle",
            "priority": "5",
            "sla_seconds": "45",
            "offer_timeout_seconds": "20",
            "wrapup_seconds": "60",
            f"skill_{billing.id}": "3",
            "active": "on",
        },
        headers=hx(client),
    )
    assert changed.status_code == 200, changed.text

    log = await client.get("/admin/audit", headers={"accept": "text/html"})
    assert log.status_code == 200
    assert "Queues: General &lt;support&gt;" in log.text  # by name, escaped
    assert "<td>Admin (admin)</td>" in log.text
    assert "<strong>sla seconds</strong>: <del>30</del> → <ins>45</ins>" in log.text

    async with services.sessionmaker() as db:
        entry = (await db.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc()))).first()
    assert entry is not None and entry.action == "update"
    restored = await client.post(
        f"/admin/audit/{entry.id}/restore", headers=hx(client), follow_redirects=False
    )
    assert restored.status_code == 303
    assert "Restored+queues+General" in restored.headers["location"]
    async with services.sessionmaker() as db:
        queue = await db.get(Queue, general.id)
        skills_after = sorted(
            (s.skill_id, s.min_level)
            for s in (await db.exec(select(QueueSkill).where(QueueSkill.queue_id == general.id)))
        )
        last = (await db.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc()))).first()
    assert queue is not None and (queue.name, queue.sla_seconds) == ("General", 30)
    assert skills_after == skills_before
    assert last is not None and last.action == f"restore #{entry.id}"
    assert last.before is not None and last.before["name"] == "General <support>"
    assert last.after is not None and last.after["name"] == "General"

    created = (await client.get("/admin/audit")).text
    assert f'action="/admin/audit/{entry.id}/restore"' in created


async def test_a_deleted_row_comes_back_under_its_id(client: httpx.AsyncClient, services: Services):
    await login(client, "admin")
    await client.post("/admin/skills", data={"name": "french"}, headers=hx(client))
    async with services.sessionmaker() as db:
        french = (await db.exec(select(Skill).where(Skill.name == "french"))).one()
    await client.post(f"/admin/skills/{french.id}/delete", headers=hx(client))
    async with services.sessionmaker() as db:
        deletion = (await db.exec(select(AuditEntry).where(AuditEntry.action == "delete"))).one()
        creation = (await db.exec(select(AuditEntry).where(AuditEntry.action == "create"))).one()
    refused = await client.post(f"/admin/audit/{creation.id}/restore", headers=hx(client))
    assert refused.status_code == 409
    assert "a created row can be edited or deleted instead" in refused.json()["detail"]
    await client.post(f"/admin/audit/{deletion.id}/restore", headers=hx(client))
    async with services.sessionmaker() as db:
        back = await db.get(Skill, french.id)
    assert back is not None and back.name == "french"


async def test_filters_paging_and_csv(client: httpx.AsyncClient, services: Services):
    await login(client, "admin")
    for n in range(55):
        await client.post("/admin/skills", data={"name": f"skill{n:02d}"}, headers=hx(client))
    made = await client.post(
        "/admin/dispositions", data={"code": "formula", "label": "Plain"}, headers=hx(client)
    )
    assert made.status_code == 200, made.text
    async with services.sessionmaker() as db:
        entry = (await db.exec(select(AuditEntry).where(AuditEntry.entity == "dispositions"))).one()
    await client.post(
        f"/admin/dispositions/{entry.entity_id}",
        data={"code": "formula", "label": "=cmd|' /C calc'!A0", "active": "on"},
        headers=hx(client),
    )
    first = await client.get("/admin/audit?entity=skills")
    assert "55 change(s), page 1 of 2." in first.text
    assert "Skills: skill54" in first.text and "Skills: skill00" not in first.text
    second = await client.get("/admin/audit?entity=skills&page=2")
    assert "Skills: skill00" in second.text
    nobody = await client.get("/admin/audit?since=2001-01-01&until=2001-01-02")
    assert "No changes match." in nobody.text
    bad = await client.get("/admin/audit?since=yesterday")
    assert bad.status_code == 422 and "since: use a date" in bad.json()["detail"]

    exported = await client.get("/admin/audit/export.csv?entity=skills")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:5] == ["id", "when (UTC)", "who", "action", "what"]
    assert len(rows) == 1 + 55
    assert rows[1][3:5] == ["create", "Skills: skill00"]
    everything = list(csv.reader(io.StringIO((await client.get("/admin/audit/export.csv")).text)))
    (injected,) = [row for row in everything if row[5:6] == ["label"]]
    assert injected[6:] == ["Plain", "'=cmd|' /C calc'!A0"]  # a spreadsheet will not run it
