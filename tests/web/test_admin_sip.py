"""Agents' SIP logins live in the database: the admin pages set them, and the running hub's
registrar takes the new password at once (a real REGISTER from SIPp)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from hub.services import Services
from models import Agent, AuditEntry, User
from tests.channels.voice.helpers import free_port, run_sipp
from tests.support import require_tool
from tests.web.conftest import hx, login

pytestmark = pytest.mark.sipp


async def alice_form(services: Services) -> tuple[int, dict[str, str]]:
    async with services.sessionmaker() as db:
        user = (await db.exec(select(User).where(User.username == "alice"))).one()
        agent = (await db.exec(select(Agent).where(Agent.user_id == user.id))).one()
    return user.id, {  # type: ignore[return-value]
        "username": "alice",
        "display_name": user.display_name,
        "role": "agent",
        "active": "on",
        "is_agent": "on",
        **{f"cap_{channel}": str(count) for channel, count in agent.capacity.items()},
        "extension": agent.extension or "",
    }


async def register(services: Services, tmp: Path, ext: str, password: str) -> int:
    voice = services.extras["voice"]
    run = await run_sipp(
        "agent_register.xml",
        voice.endpoint.port,
        tmp,
        keys={"ext": ext, "phone_port": free_port()},
        extra=["-au", ext, "-ap", password],
        timeout=10,
    )
    return run.returncode


async def test_admin_sets_a_sip_password_and_the_phone_registers_with_it(
    client: httpx.AsyncClient, services: Services, tmp_path: Path
) -> None:
    require_tool("sipp")
    await login(client, "admin")
    user_id, form = await alice_form(services)
    response = await client.post(
        f"/admin/agents/{user_id}",
        data={**form, "sip_password": "new-Phone-secret-1"},
        headers=hx(client),
    )
    assert response.status_code == 200, response.text
    registrar = services.extras["voice"].endpoint.registrar
    for _ in range(100):  # the "config" event reloads the logins after the commit
        if registrar.passwords.get(form["extension"]) == "new-Phone-secret-1":
            break
        await asyncio.sleep(0.05)
    assert await register(services, tmp_path / "ok", form["extension"], "new-Phone-secret-1") == 0
    assert await register(services, tmp_path / "old", form["extension"], "alice-sip") != 0
    async with services.sessionmaker() as db:
        entry = (await db.exec(select(AuditEntry).order_by(AuditEntry.id.desc()))).first()  # type: ignore[union-attr]
    assert entry is not None and "new-Phone-secret-1" not in str(entry.after)

    # Saving again without a password keeps it; a taken extension is refused.
    response = await client.post(f"/admin/agents/{user_id}", data=form, headers=hx(client))
    assert response.status_code == 200
    async with services.sessionmaker() as db:
        agent = (await db.exec(select(Agent).where(Agent.user_id == user_id))).one()
        assert agent.sip_password == "new-Phone-secret-1"
        other = (await db.exec(select(Agent).where(Agent.id != agent.id))).first()
    assert other is not None
    response = await client.post(
        f"/admin/agents/{user_id}", data={**form, "extension": other.extension}, headers=hx(client)
    )
    assert response.status_code == 422 and "belongs to another agent" in response.text
    response = await client.post(
        f"/admin/agents/{user_id}", data={**form, "sip_password": "short"}, headers=hx(client)
    )
    assert response.status_code == 422
