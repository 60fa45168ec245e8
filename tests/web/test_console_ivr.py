"""What the agent sees of a call's IVR: the offer card and the screen pop show what the
caller chose and the data the lookup found, escaped (a recognizer's words are user content)."""

from __future__ import annotations

import httpx

from hub import call_records as records
from hub.call_ivr import VoiceIvr, summarize
from hub.services import Services
from tests.web.conftest import hx, login
from tests.web.test_console import agent_id_of, pending_offer


async def test_offer_card_and_screen_pop_show_the_ivr_path_and_the_lookup(
    client: httpx.AsyncClient, services: Services
) -> None:
    async with services.sessionmaker() as db:
        inbox = await records.inbox_for_dnis(db, "+15550100")
        assert inbox is not None
        call = await records.open_inbound(
            db,
            inbox,
            raw_caller="+15551230077",
            dnis="+15550100",
            sip_call_id="ivr-web-1",
            remote_uri="sip:+15551230077@gw",
            node="test",
        )
    said = "<b>billing</b>"
    trace = {
        "dialog": "demo_phone_menu",
        "nodes": ["main", "ask_account", "lookup_account", "billing_queue"],
        "inputs": [
            {"node": "main", "event": "speech", "value": {"text": said, "confidence": 0.8}},
            {"node": "ask_account", "event": "digits", "value": "123456#"},
        ],
        "variables": {"account": "123456", "customer": "Ada Lovelace"},
        "outcome": "queued",
        "handoff": {"name": "billing"},
    }
    trace["summary"] = summarize(trace)
    await VoiceIvr(services)._store(call.interaction_id, trace, closed=False)
    await login(client, "carol")
    await client.post("/console/presence", data={"state": "ready"}, headers=hx(client))
    await services.routing.enqueue(
        call.interaction_id,
        None,
        priority=3,
        skills={"billing": 1},
        data={"account": "123456", "customer": "Ada Lovelace", "plan": "Fibre 500"},
    )
    offer = await pending_offer(services, await agent_id_of(services, "carol"))
    assert offer.interaction_id == call.interaction_id

    offers = (await client.get("/console")).text.split('id="offers"', 1)[1]
    assert "IVR: said “&lt;b&gt;billing&lt;/b&gt;” → keyed 123456 → queued to billing" in offers
    assert "<b>billing</b>" not in offers
    assert "<dt>customer</dt><dd>Ada Lovelace</dd>" in offers
    assert "<dt>plan</dt><dd>Fibre 500</dd>" in offers

    accepted = await client.post(f"/console/offers/{offer.id}/accept", headers=hx(client))
    assert accepted.status_code == 200
    pop = (await client.get(f"/console?interaction={call.interaction_id}")).text
    assert "<li>keyed 123456</li>" in pop and "<li>queued to billing</li>" in pop
    assert "<li>said “&lt;b&gt;billing&lt;/b&gt;”</li>" in pop
    assert "<dt>account</dt><dd>123456</dd>" in pop
    assert "<dt>ivr</dt>" not in pop  # the trace is shown as the path, not dumped
