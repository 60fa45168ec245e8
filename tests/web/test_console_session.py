"""What the console's script leans on: the composer's markup (multipart, a draft key per
conversation, the canned list), the session banner, and the session probe's 401."""

from __future__ import annotations

import httpx

from hub.services import Services
from tests.web.conftest import hx, login
from tests.web.test_canned import chat_offer_accepted
from tests.web.test_console import agent_id_of


async def test_the_console_carries_its_draft_keys_and_the_session_banner(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, services: Services
):
    iid = await chat_offer_accepted(client, browser, services, "Nora Quinn")
    page = await client.get(f"/console?interaction={iid}")
    agent = await agent_id_of(services, "alice")
    assert f'data-agent="{agent}"' in page.text
    assert 'id="session-expired"' in page.text and "Log in again" in page.text
    assert 'id="keys-help"' in page.text and "Accept the newest offer" in page.text
    form = page.text.split('<form class="composer', 1)[1].split("</form>", 1)[0]
    assert 'hx-encoding="multipart/form-data"' in form and f'data-draft="{iid}"' in form
    assert f'id="canned-{iid}"' in form and 'type="file"' in form
    assert 'data-key="accept"' not in page.text  # no offer is waiting now


async def test_the_session_probe_answers_until_the_session_ends(
    client: httpx.AsyncClient, services: Services
):
    await login(client, "alice")
    alive = await client.get("/console/session")
    assert alive.status_code == 200 and alive.json()["user"] == "alice"
    # A supervisor's force logout ends the session: the probe (and every console call)
    # now answers 401, which the console shows as its banner instead of following it.
    async with httpx.AsyncClient(
        transport=client._transport, base_url=str(client.base_url)
    ) as supervisor:
        await login(supervisor, "sam")
        alice = await agent_id_of(services, "alice")
        forced = await supervisor.post(f"/supervisor/agents/{alice}/logout", headers=hx(supervisor))
        assert forced.status_code == 200, forced.text
    ended = await client.get("/console/session", headers={"accept": "application/json"})
    assert ended.status_code == 401
    post = await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    assert post.status_code == 401 and post.headers["hx-redirect"] == "/login"
