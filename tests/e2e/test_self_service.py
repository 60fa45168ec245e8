"""Back to self-service and the post-call survey, through the running hub.

SIPp signals as the caller's gateway and the agent's desk phone; each party's media is an
``RtpParty`` sending its own tone (the caller also keys RFC 4733 digits), so what each
party hears is checked by frequency. Chromium drives the admin pages (which dialog step
agents may use, the queue's survey) and the agent's console. The hub runs its real IVR
(Piper speaks the prompts) on the caller's leg.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from speech.g711 import ulaw_decode
from tests.channels.voice.helpers import level_at
from tests.e2e.hub_process import free_sip_port, hub_server, sip_password, voice_env
from tests.e2e.rtp_party import ABSENT, RtpParty, until_hears
from tests.e2e.test_call_controls import (
    ALICE_HZ,
    CALLER_HZ,
    card,
    close_wrapup,
    control_kinds,
    party_caller,
)
from tests.e2e.test_console_browser import go_ready, log_in
from tests.e2e.test_voice_calls import Sipp, query, register_phone, sipp_args, wait_for
from tests.support import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.sipp]

CHECKS = """
dialog: agent_checks
description: Steps agents send callers to (back to self-service).
languages: [en]
start: verify
variables: {pin: "", verified: false, note: ""}
nodes:
  verify:
    type: ask
    expect: digits
    var: pin
    min_length: 4
    max_length: 4
    timeout_s: 8
    prompt: Please key in your four digit PIN.
    no_input: {retries: 1, fallback: not_verified}
    no_match: {retries: 1, fallback: not_verified}
    next: verified
  verified:
    type: return
    values: {verified: "pin == '1234'", note: "'<i>PIN checked</i>'"}
  not_verified:
    type: return
    values: {verified: "false"}
  goodbye:
    type: hangup
    reason: checked out
    prompt: Goodbye.
"""

SURVEY = """
dialog: post_call_csat
description: Two questions after the agent hangs up.
languages: [en]
start: csat
nodes:
  csat:
    type: survey
    name: post_call
    questions:
      - id: satisfaction
        kind: scale
        min: 1
        max: 5
        prompt: "From 1 to 5, how satisfied are you?"
      - {id: resolved, kind: yes_no, prompt: "Was your problem solved? Press 1 for yes, 2 for no."}
    timeout_s: 60
    no_input: {retries: 0, fallback: thanks}
    no_match: {retries: 1, fallback: thanks}
    next: thanks
  thanks:
    type: hangup
    reason: survey completed
    prompt: Thank you. Goodbye.
"""


def _add_dialogs(db: Path) -> None:
    """The two dialogs, published; calls skip the demo menu (straight to General)."""
    from hub.db import make_engine, make_sessionmaker
    from hub.dialogs import create_dialog
    from models import DialogKind

    async def add() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{db}")
        async with make_sessionmaker(engine)() as session:
            await create_dialog(session, CHECKS, "e2e")
            await create_dialog(session, SURVEY, "e2e", kind=DialogKind.SURVEY)
            await session.commit()
        await engine.dispose()

    asyncio.run(add())
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE inbox SET dialog_id = NULL WHERE kind = 'voice'")
        published = conn.execute(
            "SELECT COUNT(*) FROM dialog WHERE name IN ('agent_checks', 'post_call_csat')"
            " AND published_version_id IS NOT NULL"
        ).fetchone()
    assert published == (2,), "the test dialogs did not publish"


class Hub:
    def __init__(self, base: str, env: dict[str, str], var: Path, tmp: Path) -> None:
        self.base, self.var, self.tmp = base, var, tmp
        self.db = var / "hub.sqlite3"
        self.sip_port = int(env["HUB_VOICE_BIND_PORT"])
        self.alice = RtpParty(ALICE_HZ)
        self.alice_port = free_sip_port()
        register_phone(tmp, self.sip_port, "1001", sip_password("alice"), self.alice_port)

    def alice_phone(self, tmp: Path, calls: int = 1) -> Sipp:
        args = sipp_args("party_phone.xml", local_port=self.alice_port, calls=calls, timeout=240)
        args += ["-key", "rtp_port", str(self.alice.port)]
        phone = Sipp(tmp / "phone-alice", args)
        from tests.e2e.test_voice_calls import _udp_bound

        deadline = time.monotonic() + 10
        while not _udp_bound(self.alice_port):
            assert phone.process.poll() is None, phone.errors()
            assert time.monotonic() < deadline, "the phone's SIPp did not start"
            time.sleep(0.05)
        return phone

    def call(
        self, tmp: Path, caller: str, party: RtpParty, leaves_after_ms: int | None = None
    ) -> Sipp:
        return party_caller(tmp, self.sip_port, caller, party, leaves_after_ms)

    def interaction(self, caller: str, state: str) -> int:
        (iid,) = wait_for(
            self.db,
            "SELECT i.id FROM interaction i JOIN contactidentity c ON c.contact_id = i.contact_id"
            " WHERE c.address = ? AND i.state = ?",
            caller,
            state,
            within=60,
        )[0]
        return int(iid)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[Hub]:
    require_tool("sipp")
    tmp = tmp_path_factory.mktemp("selfsvc")
    var = tmp / "var"
    var.mkdir()
    shutil.copyfile(seeded_db, var / "hub.sqlite3")
    _add_dialogs(var / "hub.sqlite3")
    env = {**voice_env(), "HUB_IVR_ENABLED": "1"}
    with hub_server(var, None, **env) as (base, _process):
        h = Hub(base, env, var, tmp)
        try:
            yield h
        finally:
            h.alice.close()


@pytest.fixture(scope="module")
def offered(hub: Hub, chromium) -> Hub:
    """The admin offers agent_checks' "verify" and "goodbye" to agents, and gives General
    its post-call survey, on the admin pages."""
    context = chromium.new_context()
    try:
        admin = log_in(context, hub.base, "admin")
        ((dialog_id,),) = query(hub.db, "SELECT id FROM dialog WHERE name = 'agent_checks'")
        admin.goto(f"{hub.base}/admin/dialogs/{dialog_id}")
        form = admin.locator("#agent-nodes")
        form.locator("input[name=node][value=verify]").check()
        form.locator("input[name=node][value=goodbye]").check()
        form.locator("#save-agent-nodes").click()
        admin.locator("#saved", has_text="Agents may send callers to: verify, goodbye.").wait_for()

        admin.goto(f"{hub.base}/admin/queues")
        row = admin.locator("tr").filter(has=admin.locator("td", has_text=re.compile("^General$")))
        row.get_by_role("button", name="Edit").click()
        admin.locator("select[name=survey_dialog_id]").select_option(label="post_call_csat")
        admin.get_by_role("button", name="Save").click()
        admin.locator(".notice.ok").wait_for()
    finally:
        context.close()
    assert query(hub.db, "SELECT agent_nodes FROM dialog WHERE id = ?", dialog_id) == [
        ('["verify", "goodbye"]',)
    ]
    wait_for(
        hub.db,
        "SELECT 1 FROM queue q JOIN dialog d ON d.id = q.survey_dialog_id"
        " WHERE q.name = 'General' AND d.name = 'post_call_csat'",
    )
    return hub


def connected(hub: Hub, alice, tmp: Path, caller: str, party: RtpParty, **call: int):
    """alice is Ready; a call arrives, her phone picks up; both hear each other; her console
    shows the call card."""
    go_ready(alice)
    phone = hub.alice_phone(tmp)
    caller_sipp = hub.call(tmp, caller, party, **call)
    iid = hub.interaction(caller, "active")
    until_hears(party, ALICE_HZ, present=True)
    until_hears(hub.alice, CALLER_HZ, present=True)
    alice.goto(f"{hub.base}/console?interaction={iid}")
    card(alice, iid).locator("[data-control=hold]").wait_for()
    return iid, phone, caller_sipp


def heard_between(party: RtpParty, freq: float, start: float, end: float) -> float:
    """The level of ``freq`` in what ``party`` received between two moments."""
    with party._lock:
        chunks = [
            ulaw_decode(p.payload)
            for p in party.packets
            if start <= p.at < end and p.payload_type == 0
        ]
    assert sum(len(c) for c in chunks) >= 8000 * 0.8, "less than a second of audio"
    return level_at(np.concatenate(chunks), freq)


def send_to(box, step: str) -> None:
    """The card's Self-service tool: pick the step, send."""
    box.locator("summary", has_text="Self-service").click()
    box.locator("select[name=entry]").select_option(label=f"agent_checks → {step}")
    box.locator("[data-control=self-service]").click()
    box.locator("[data-flag=self-service]", has_text=f"In self-service: {step}").wait_for()


def test_self_service_and_back_then_the_post_call_survey(
    offered: Hub, chromium, tmp_path: Path
) -> None:
    hub = offered
    caller, second = "+15551238001", "+15551238002"
    party, party2 = RtpParty(CALLER_HZ), RtpParty(CALLER_HZ)
    context = chromium.new_context()
    sipps: list[Sipp] = []
    try:
        alice = log_in(context, hub.base, "alice")
        go_ready(alice)
        phone = hub.alice_phone(tmp_path, calls=2)
        sipps.append(phone)
        sipps.append(hub.call(tmp_path, caller, party))
        iid = hub.interaction(caller, "active")
        until_hears(party, ALICE_HZ, present=True)
        until_hears(hub.alice, CALLER_HZ, present=True)
        alice.goto(f"{hub.base}/console?interaction={iid}")
        box = card(alice, iid)
        box.locator("[data-control=hold]").wait_for()

        # Alice sends the caller to the PIN check.
        send_to(box, "verify")
        assert not box.locator("[data-control=hold]").is_visible()
        # alice hears nothing of the caller; the caller hears the dialog, not alice
        until_hears(hub.alice, CALLER_HZ, present=False)
        until_hears(party, ALICE_HZ, present=False)
        quiet_from = time.monotonic()

        # A second caller waits: alice's capacity is kept for the call in self-service.
        sipps.append(hub.call(tmp_path, second, party2))
        iid2 = hub.interaction(second, "queued")

        time.sleep(max(0.0, quiet_from + 1.5 - time.monotonic()))  # audio enough to judge
        keyed_at = time.monotonic()
        assert heard_between(hub.alice, CALLER_HZ, quiet_from, keyed_at) < ABSENT
        party.send_dtmf("1234")  # its tone goes on between keys: alice must hear neither
        box.locator(".self-service-result").wait_for(timeout=60_000)
        result = box.locator(".self-service-result")
        assert result.get_attribute("data-result-outcome") == "completed"
        assert result.locator("[data-var=pin]").inner_text() == "1234"
        assert result.locator("[data-var=verified]").inner_text() == "True"
        assert result.locator("[data-var=note]").inner_text() == "<i>PIN checked</i>"  # escaped
        # nothing the caller keyed reached alice: no telephone-event, no tone
        assert hub.alice.events_since(keyed_at) == []
        assert query(hub.db, "SELECT COUNT(*) FROM offer WHERE interaction_id = ?", iid2) == [(0,)]
        # back with alice: they hear each other again
        until_hears(hub.alice, CALLER_HZ, present=True)
        until_hears(party, ALICE_HZ, present=True)
        box.locator("[data-control=hold]").wait_for()

        # alice hangs up: the caller goes on to General's survey and answers 4, then yes
        box.locator("[data-control=hangup]").click()
        alice.locator("form.wrapup").wait_for()
        time.sleep(1.0)  # the first prompt starts; keys during it answer it (barge-in)
        party.send_dtmf("4")
        wait_for(
            hub.db,
            "SELECT 1 FROM controlevent WHERE interaction_id = ? AND kind = 'survey'",
            iid,
        )
        time.sleep(3.0)  # the second question's prompt
        party.send_dtmf("1")
        assert sipps[1].wait(60) == 0, sipps[1].errors()  # "Thank you. Goodbye." and a BYE
        answers = wait_for(
            hub.db,
            "SELECT question, value_text, answered, agent_id IS NOT NULL FROM surveyanswer"
            " WHERE interaction_id = ? AND survey = 'post_call' ORDER BY position",
            iid,
        )
        assert answers == [("satisfaction", "4", 1, 1), ("resolved", "yes", 1, 1)]

        # alice closes her wrap-up: now the second caller is offered to her
        close_wrapup(alice)
        hub.interaction(second, "active")
        until_hears(hub.alice, CALLER_HZ, present=True)

        assert control_kinds(hub, iid) == [
            "self_service",
            "recording_pause",
            "self_service_return",
            "recording_resume",
            "survey",
        ]
        (detail,) = query(
            hub.db,
            "SELECT detail FROM controlevent WHERE interaction_id = ?"
            " AND kind = 'self_service_return'",
            iid,
        )[0]
        stored = json.loads(detail)
        note = "<i>PIN checked</i>"
        assert stored["variables"] == {"pin": "1234", "verified": True, "note": note}
        assert stored["outcome"] == "completed"
        (data,) = query(hub.db, "SELECT data FROM interaction WHERE id = ?", iid)[0]
        assert [r["node"] for r in json.loads(data)["self_service"]] == ["verify"]
        offsets = query(
            hub.db,
            "SELECT recording_offset FROM controlevent WHERE interaction_id = ?"
            " AND kind LIKE 'recording_%' ORDER BY id",
            iid,
        )
        assert offsets[0] == offsets[1]  # nothing recorded while in self-service
        segments = query(
            hub.db,
            "SELECT role, end_reason FROM interactionsegment WHERE interaction_id = ?",
            iid,
        )
        assert segments == [("agent", "call ended")]

        # The survey's statistics page counts the answers.
        sam_context = chromium.new_context()
        try:
            sam = log_in(sam_context, hub.base, "sam")
            sam.goto(f"{hub.base}/reports/surveys")
            sam.click("text=post_call")
            sam.locator("#question-satisfaction .reached").wait_for()
            assert sam.locator("#question-satisfaction .mean").inner_text() == "4.00"
        finally:
            sam_context.close()
        # alice ends the second call too (its caller goes on to the survey, unanswered)
        alice.goto(f"{hub.base}/console?interaction={iid2}")
        card(alice, iid2).locator("[data-control=hangup]").click()
        close_wrapup(alice)
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        party2.close()
        context.close()


def test_a_dialog_that_hangs_up_ends_the_call_as_usual(
    offered: Hub, chromium, tmp_path: Path
) -> None:
    hub = offered
    caller = "+15551238003"
    party = RtpParty(CALLER_HZ)
    context = chromium.new_context()
    sipps: list[Sipp] = []
    try:
        alice = log_in(context, hub.base, "alice")
        iid, phone, caller_sipp = connected(hub, alice, tmp_path, caller, party)
        sipps += [phone, caller_sipp]
        send_to(card(alice, iid), "goodbye")
        # "Goodbye.", then the hub hangs up on the caller; alice's phone gets a BYE too
        assert caller_sipp.wait(60) == 0, caller_sipp.errors()
        assert phone.wait(30) == 0, phone.errors()
        wait_for(hub.db, "SELECT 1 FROM interaction WHERE id = ? AND state = 'wrap_up'", iid)
        close_wrapup(alice)
        (detail,) = wait_for(
            hub.db,
            "SELECT detail FROM controlevent WHERE interaction_id = ?"
            " AND kind = 'self_service_return'",
            iid,
        )[0]
        assert json.loads(detail)["outcome"] == "hangup"
        assert "survey" not in control_kinds(hub, iid)  # the caller was gone
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        context.close()


def test_a_caller_who_leaves_mid_survey_keeps_the_answers_given(
    offered: Hub, chromium, tmp_path: Path
) -> None:
    hub = offered
    caller = "+15551238004"
    party = RtpParty(CALLER_HZ)
    context = chromium.new_context()
    sipps: list[Sipp] = []
    try:
        alice = log_in(context, hub.base, "alice")
        # the caller hangs up 35 s after the answer: after the first answer, while the
        # second question waits (60 s) for a key
        iid, phone, caller_sipp = connected(
            hub, alice, tmp_path, caller, party, leaves_after_ms=35_000
        )
        sipps += [phone, caller_sipp]
        card(alice, iid).locator("[data-control=hangup]").click()
        assert phone.wait(30) == 0, phone.errors()
        wait_for(
            hub.db, "SELECT 1 FROM controlevent WHERE interaction_id = ? AND kind = 'survey'", iid
        )
        time.sleep(1.0)
        party.send_dtmf("2")
        assert caller_sipp.wait(90) == 0, caller_sipp.errors()
        answers = wait_for(
            hub.db,
            "SELECT question, value_text, answered FROM surveyanswer"
            " WHERE interaction_id = ? ORDER BY position",
            iid,
        )
        assert answers == [("satisfaction", "2", 1), ("resolved", None, 0)]
        close_wrapup(alice)
        assert query(hub.db, "SELECT state FROM interaction WHERE id = ?", iid) == [("closed",)]
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        context.close()
