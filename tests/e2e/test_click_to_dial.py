"""Click to dial through the running hub: SIPp as the agent's registered phone and as the
SIP trunk, Chromium driving the console. Proven by what the trunk received (the DID as
caller ID), what the database holds, and the stereo recording; the refusals by the HTTP
answers the console shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.hub_process import free_sip_port, hub_server, sip_password, voice_env
from tests.e2e.test_console_browser import go_ready, log_in
from tests.e2e.test_voice_calls import (
    DID,
    WAIT_S,
    Sipp,
    channel_rms,
    query,
    recorded_audio,
    register_phone,
    sipp_args,
    start_phone,
    states_of,
    wait_for,
)
from tests.support import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.sipp]

ALICE_PRESENCE = (
    "SELECT a.presence FROM agent a JOIN user u ON u.id = a.user_id WHERE u.username = 'alice'"
)
CUSTOMER = "+14155550123"  # typed as "(415) 555-0123": the default region is US


@pytest.fixture(scope="module")
def dial_hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[tuple]:
    """A hub whose trunk is a SIPp UAS on ``trunk_port``: (base, SIP port, db, var, trunk)."""
    require_tool("sipp")
    var = tmp_path_factory.mktemp("dial") / "var"
    trunk_port = free_sip_port()
    env = {
        **voice_env(),
        "HUB_VOICE_TRUNK_HOST": "127.0.0.1",
        "HUB_VOICE_TRUNK_PORT": str(trunk_port),
        "HUB_DIAL_TIMEOUT_SECONDS": "4",  # the trunk answers at once, or never
        "HUB_CALLS_OUT_PREFIXES": "+1,+44",  # national, and the UK (hub.call_limits)
    }
    with hub_server(var, seeded_db, **env) as (base, _process):
        yield base, int(env["HUB_VOICE_BIND_PORT"]), var / "hub.sqlite3", var, trunk_port


def trunk(tmp: Path, port: int, scenario: str) -> Sipp:
    """The trunk's SIPp, listening (UAS) on the port the hub sends its INVITEs to."""
    return Sipp(
        tmp / scenario.removesuffix(".xml"),
        [*sipp_args(scenario, local_port=port, calls=1, timeout=90), "-trace_msg"],
    )


def invite_seen_by(sipp: Sipp) -> str:
    """The INVITE the trunk received, from SIPp's message trace."""
    (trace,) = sipp.workdir.glob("*_messages.log")
    text = trace.read_text(errors="replace")
    start = text.index("INVITE sip:")
    return text[start : text.index("\n\n", start)]


def test_agent_calls_a_customer_busy_first_then_from_the_screen_pop(
    dial_hub: tuple, chromium, tmp_path: Path
) -> None:
    base, sip_port, db, var, trunk_port = dial_hub
    phone_port = free_sip_port()
    phone = start_phone(tmp_path, phone_port, calls=2)  # auto-answers answer-after=0
    busy = trunk(tmp_path, trunk_port, "trunk_busy.xml")
    answering: Sipp | None = None
    context = chromium.new_context()
    try:
        register_phone(tmp_path, sip_port, "1001", sip_password("alice"), phone_port)
        agent = log_in(context, base, "alice")
        go_ready(agent)

        # 1. The number field: the customer is busy.
        agent.fill("form.dial input[name=number]", "(415) 555-0123")
        agent.locator("form.dial").get_by_role("button", name="Call").click()
        head = agent.locator(".conv-head", has_text=f"outbound to {CUSTOMER}")
        head.wait_for()
        head.locator(".call-outcome", has_text="busy").wait_for(timeout=WAIT_S * 1000)
        assert busy.wait(30) == 0, busy.errors()
        (first, state, data) = query(
            db,
            "SELECT id, state, data FROM interaction WHERE channel = 'voice'"
            " ORDER BY id DESC LIMIT 1",
        )[0]
        assert state == "closed" and json.loads(data)["call_outcome"] == "busy"
        assert states_of(db, first) == ["active", "closed"]
        reasons = query(
            db, "SELECT reason FROM interactionevent WHERE interaction_id = ? ORDER BY id", first
        )
        assert reasons[-1] == ("busy",)
        wait_for(
            db,
            "SELECT 1 WHERE (SELECT count(*) FROM callleg WHERE interaction_id = ?"
            " AND ended_at IS NOT NULL) = 2",
            first,
        )
        legs = query(
            db,
            "SELECT kind, direction, answered_at, end_reason FROM callleg"
            " WHERE interaction_id = ? ORDER BY id",
            first,
        )
        assert [(k, d) for k, d, _a, _r in legs] == [
            ("agent", "outbound"),
            ("customer", "outbound"),
        ]
        assert legs[0][2] is not None  # the agent's phone answered at once
        assert legs[1][2] is None and legs[1][3] == "busy"
        # the agent is free again: the voice capacity came back
        assert query(db, ALICE_PRESENCE) == [("ready",)]

        # 2. The screen pop's "Call" beside the customer's number: this time they answer.
        answering = trunk(tmp_path, trunk_port, "trunk_answer.xml")
        agent.locator(f"#customer-{first} li", has_text=CUSTOMER).get_by_role(
            "button", name="Call"
        ).click()
        agent.locator(".conv-head", has_text=f"outbound to {CUSTOMER}").locator(
            ".state-active"
        ).wait_for()
        (second,) = wait_for(
            db,
            "SELECT i.id FROM interaction i JOIN callleg l ON l.interaction_id = i.id"
            " WHERE i.id > ? AND l.kind = 'customer' AND l.answered_at IS NOT NULL",
            first,
        )[0]
        interaction = query(
            db, "SELECT state, agent_id, contact_id, inbox_id FROM interaction WHERE id = ?", second
        )[0]
        first_contact = query(db, "SELECT contact_id FROM interaction WHERE id = ?", first)[0][0]
        assert interaction[0] == "active"  # the agent holds it while connected
        assert interaction[2] == first_contact  # one customer, found by the E.164 number
        assert query(db, ALICE_PRESENCE) == [("busy",)]
        # the trunk saw the inbox's DID as caller ID
        invite = invite_seen_by(answering)
        assert f"sip:{CUSTOMER}@127.0.0.1" in invite.splitlines()[0]
        from_line = next(h for h in invite.splitlines() if h.lower().startswith("from:"))
        pai = next(h for h in invite.splitlines() if h.lower().startswith("p-asserted-identity:"))
        assert f"sip:{DID}@" in from_line and f"sip:{DID}@" in pai

        agent.wait_for_timeout(2000)  # let them talk, so the recording holds the conversation
        agent.get_by_role("button", name="End conversation").click()
        wrapup = agent.locator("form.wrapup")
        wrapup.wait_for()
        assert answering.wait(30) == 0, answering.errors()  # the hub hung up on the customer
        assert phone.wait(30) == 0, phone.errors()  # and on the agent's phone
        wait_for(
            db,
            "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM callleg"
            " WHERE interaction_id = ? AND ended_at IS NULL)",
            second,
        )
        legs = query(
            db,
            "SELECT kind, answered_at, ended_at, rtp FROM callleg WHERE interaction_id = ?"
            " ORDER BY id",
            second,
        )
        assert [leg[0] for leg in legs] == ["agent", "customer"]
        for _kind, answered_at, ended_at, rtp in legs:
            assert answered_at and ended_at and json.loads(rtp)["packets_received"] > 0
        duration, legs_json = wait_for(
            db,
            "SELECT duration_seconds, legs FROM recording"
            " WHERE interaction_id = ? AND complete = 1",
            second,
        )[0]
        assert duration > 2 and len(json.loads(legs_json)) == 2
        left, right = channel_rms(recorded_audio(db, var, second))
        assert left > 100 and right > 100  # the customer left, the agent (hub side) right

        # wrap-up as for any call
        wrapup.locator("select[name=disposition_id]").select_option(index=1)
        wrapup.locator("textarea[name=notes]").fill("Called back about the order")
        wrapup.get_by_role("button", name="Close conversation").click()
        wait_for(db, "SELECT 1 FROM interaction WHERE id = ? AND state = 'closed'", second)
        assert states_of(db, second) == ["active", "wrap_up", "closed"]
        assert query(db, "SELECT wrapup_notes FROM interaction WHERE id = ?", second) == [
            ("Called back about the order",)
        ]
    finally:
        context.close()
        phone.stop()
        busy.stop()
        if answering is not None:
            answering.stop()


def test_a_customer_who_does_not_answer_ends_the_call_as_no_answer(
    dial_hub: tuple, chromium, tmp_path: Path
) -> None:
    base, sip_port, db, _var, trunk_port = dial_hub
    phone_port = free_sip_port()
    phone = start_phone(tmp_path, phone_port, calls=1)
    ringing = trunk(tmp_path, trunk_port, "trunk_rings.xml")
    context = chromium.new_context()
    try:
        register_phone(tmp_path, sip_port, "1003", sip_password("carol"), phone_port)
        agent = log_in(context, base, "carol")
        agent.fill("form.dial input[name=number]", "+44 20 7946 0123")
        agent.locator("form.dial").get_by_role("button", name="Call").click()
        head = agent.locator(".conv-head", has_text="outbound to +442079460123")
        head.locator(".call-outcome", has_text="no answer").wait_for(timeout=WAIT_S * 1000)
        assert ringing.wait(30) == 0, ringing.errors()  # rang, then CANCEL, 487, ACK
        assert phone.wait(30) == 0, phone.errors()  # and the agent's phone was hung up
        (interaction_id, state) = query(
            db,
            "SELECT i.id, i.state FROM interaction i JOIN contactidentity c"
            " ON c.contact_id = i.contact_id WHERE c.address = '+442079460123'",
        )[0]
        assert state == "closed"
        reasons = query(
            db,
            "SELECT reason FROM interactionevent WHERE interaction_id = ? ORDER BY id",
            interaction_id,
        )
        assert reasons[-1] == ("no answer",)
        (customer,) = wait_for(
            db,
            "SELECT end_reason FROM callleg WHERE interaction_id = ? AND kind = 'customer'",
            interaction_id,
        )
        assert customer == ("no answer",)
    finally:
        context.close()
        phone.stop()
        ringing.stop()


@contextmanager
def agent_client(base: str, username: str) -> Iterator[httpx.Client]:
    """An agent logged in over plain HTTP, sending the CSRF token as the console does."""
    with httpx.Client(base_url=base, follow_redirects=True, timeout=30) as client:
        _log_in(client, username)
        yield client


def _log_in(client: httpx.Client, username: str) -> None:
    client.get("/login")
    client.post(
        "/login",
        data={
            "username": username,
            "password": f"{username}-pass",
            "_csrf_token": client.cookies.get("csrftoken", ""),
        },
    )
    client.headers["x-csrftoken"] = client.cookies.get("csrftoken", "")


def dial_on_the_phone(
    tmp: Path, sip_port: int, phone_port: int, ext: str, password: str, number: str
) -> Sipp:
    """The agent's registered phone (``phone_port``) dials ``number`` itself (phone_dials.xml),
    authenticating as ``ext``; it talks 3 s once answered, then hangs up."""
    args = sipp_args("phone_dials.xml", local_port=phone_port, calls=1, timeout=60)
    args += [f"127.0.0.1:{sip_port}", "-key", "ext", ext, "-key", "dialled", number]
    args += ["-au", ext, "-ap", password, "-d", "3000", "-trace_logs"]
    return Sipp(tmp / f"dials-{len(list(tmp.glob('dials-*')))}", args)  # a folder each


def final_response(sipp: Sipp) -> list[str]:
    """The final responses to the phone's INVITE, as ``phone_dials.xml`` logged them."""
    return sipp.logged(r"final: ([^\n]*)")


def test_an_agent_dials_a_customer_on_the_desk_phone(
    dial_hub: tuple, chromium, tmp_path: Path
) -> None:
    """The phone's own INVITE (digest-authenticated as the agent's extension) becomes the
    same outbound interaction as click to dial: refused with a SIP status and the reason
    when the trunk's limits refuse the number, else the customer is called through the
    trunk with the DID as caller ID, the two are bridged and recorded, and the agent's
    hang-up leads to wrap-up."""
    base, sip_port, db, var, trunk_port = dial_hub
    phone_port = free_sip_port()
    password = sip_password("dave")
    register_phone(tmp_path, sip_port, "1004", password, phone_port)
    answering = trunk(tmp_path, trunk_port, "trunk_answer.xml")
    context = chromium.new_context()
    try:
        agent = log_in(context, base, "dave")
        go_ready(agent)
        # the phone's INVITE must carry the extension's digest, loopback or not
        guess = dial_on_the_phone(tmp_path, sip_port, phone_port, "1004", "guess", "4155550123")
        assert guess.wait(30) == 0, guess.errors()
        assert final_response(guess) == ["403 Forbidden"]
        premium = dial_on_the_phone(tmp_path, sip_port, phone_port, "1004", password, "19005551234")
        assert premium.wait(30) == 0, premium.errors()
        [refused] = final_response(premium)
        assert refused.startswith("403 ") and "premium" in refused, refused

        phone = dial_on_the_phone(tmp_path, sip_port, phone_port, "1004", password, "4155550123")
        # the call shows in the agent's conversations at once (no reload), and opens
        conversation = agent.locator("#conversations a", has_text="voice")
        conversation.wait_for()
        conversation.click()
        agent.locator(".conv-head", has_text=f"outbound to {CUSTOMER}").wait_for()
        assert phone.wait(60) == 0, phone.errors()
        assert final_response(phone) == ["200"]
        assert answering.wait(30) == 0, answering.errors()  # the hub hung up on the customer
        invite = invite_seen_by(answering)
        assert f"sip:{CUSTOMER}@127.0.0.1" in invite.splitlines()[0]
        assert f"sip:{DID}@" in next(h for h in invite.splitlines() if h.startswith("From:"))
        (iid,) = wait_for(
            db,
            "SELECT i.id FROM interaction i JOIN agent a ON a.id = i.agent_id"
            " JOIN user u ON u.id = a.user_id WHERE u.username = 'dave'"
            " AND i.state = 'wrap_up'",
        )[0]
        wait_for(
            db,
            "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM callleg"
            " WHERE interaction_id = ? AND ended_at IS NULL)",
            iid,
        )
        legs = query(
            db,
            "SELECT kind, direction, answered_at IS NOT NULL FROM callleg"
            " WHERE interaction_id = ? ORDER BY id",
            iid,
        )
        assert legs == [("customer", "outbound", 1), ("agent", "inbound", 1)]
        left, right = channel_rms(recorded_audio(db, var, iid))
        assert left > 100 and right > 100  # the customer left, the agent's phone right
        assert query(
            db,
            "SELECT kind, number, allowed FROM callout WHERE agent_id ="
            " (SELECT a.id FROM agent a JOIN user u ON u.id = a.user_id WHERE u.username = 'dave')"
            " ORDER BY id",
        ) == [("dial", "+19005551234", 0), ("dial", CUSTOMER, 1)]
        wrapup = agent.locator("form.wrapup")
        wrapup.locator("select[name=disposition_id]").select_option(index=1)
        wrapup.get_by_role("button", name="Close conversation").click()
        wait_for(db, "SELECT 1 FROM interaction WHERE id = ? AND state = 'closed'", iid)

        # the hub's own number, dialled on the phone, comes in like any call (an agent
        # trying the menu): self-service first, abandoned when the phone hangs up
        agent.select_option("#presence-select", "offline")  # not offered to dave himself
        own = dial_on_the_phone(tmp_path, sip_port, phone_port, "1004", password, DID)
        assert own.wait(60) == 0, own.errors()
        assert final_response(own) == ["200"]
        (inbound,) = wait_for(
            db, "SELECT id FROM interaction WHERE id > ? AND state = 'abandoned'", iid
        )[0]
        states = states_of(db, inbound)
        assert states[0] == "self_service" and states[-1] == "abandoned", states
    finally:
        context.close()
        answering.stop()


def test_refusals_name_the_problem(dial_hub: tuple, tmp_path: Path) -> None:
    base, sip_port, db, _var, _trunk = dial_hub
    before = query(db, "SELECT count(*) FROM interaction")[0][0]
    with agent_client(base, "bob") as bob:
        invalid = bob.post("/console/dial", data={"number": "555-01"})
        assert invalid.status_code == 422 and "'555-01'" in invalid.text
        nothing = bob.post("/console/dial", data={"number": "  "})
        assert nothing.status_code == 422
        # bob's phone (extension 1002) never registered with this hub
        unregistered = bob.post("/console/dial", data={"number": CUSTOMER})
        assert unregistered.status_code == 409
        assert "1002" in unregistered.text and "not registered" in unregistered.text
        # registered now: the limits on calls out refuse a premium-rate number and a
        # country outside the allowed prefixes, saying why, and audit both
        register_phone(tmp_path, sip_port, "1002", sip_password("bob"), free_sip_port())
        premium = bob.post("/console/dial", data={"number": "+1 900 253 4567"})
        assert premium.status_code == 403 and "premium-rate" in premium.text
        abroad = bob.post("/console/dial", data={"number": "+33 1 42 68 53 00"})
        assert abroad.status_code == 403 and "allowed prefixes" in abroad.text
    refusals = query(
        db,
        "SELECT json_extract(after, '$.number') FROM auditentry"
        " WHERE action = 'call_out.refused' ORDER BY id DESC LIMIT 2",
    )
    assert refusals == [("+33142685300",), ("+19002534567",)]
    assert query(db, "SELECT count(*) FROM interaction")[0][0] == before  # nothing stored


def test_a_hub_without_a_trunk_says_so(tmp_path: Path, seeded_db: Path) -> None:
    with hub_server(tmp_path / "var", seeded_db) as (base, _process):
        with agent_client(base, "alice") as alice:
            refused = alice.post("/console/dial", data={"number": CUSTOMER})
        assert refused.status_code == 409
        assert "No SIP trunk is configured" in refused.text
