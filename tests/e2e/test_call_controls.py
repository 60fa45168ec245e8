"""Call controls and live supervision through the running hub.

SIPp signals as the caller's gateway, the agents' desk phones and the supervisor's phone;
each party's media is an ``RtpParty`` sending its own tone, so what every party hears is
checked by frequency. Chromium drives the agent console and the supervisor page; every
change is seen there through the tab's SSE stream (no reload).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.hub_process import free_sip_port, hub_server, sip_password, voice_env
from tests.e2e.rtp_party import RtpParty, hears_moh, until_hears
from tests.e2e.test_console_browser import go_ready, log_in
from tests.e2e.test_voice_calls import DID, Sipp, query, register_phone, sipp_args, wait_for
from tests.support import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.sipp]

CALLER_HZ, ALICE_HZ, BOB_HZ, SAM_HZ, EXTERNAL_HZ = 1000.0, 1400.0, 1700.0, 2200.0, 2600.0
PHONES = {"alice": "1001", "bob": "1002", "sam": "1006"}


def party_caller(
    tmp: Path, sip_port: int, caller: str, party: RtpParty, leaves_after_ms: int | None = None
) -> Sipp:
    """SIPp signals a call to the demo DID; the RTP party is its media (it hears what the hub
    plays). With ``leaves_after_ms`` the caller hangs up by itself that long after the answer."""
    scenario = "party_caller.xml" if leaves_after_ms is None else "party_caller_leaves.xml"
    args = sipp_args(scenario, local_port=free_sip_port(), calls=1, timeout=240)
    if leaves_after_ms is not None:
        args += ["-d", str(leaves_after_ms)]
    args += [f"127.0.0.1:{sip_port}", "-s", DID, "-key", "caller", caller]
    args += ["-key", "rtp_port", str(party.port)]
    return Sipp(tmp / f"caller-{caller[-4:]}", args)


class Voice:
    """The module's hub, with a registered phone (a fixed SIP port) and a party per person."""

    def __init__(self, base: str, env: dict[str, str], db: Path, var: Path, tmp: Path) -> None:
        self.base, self.db, self.var, self.tmp = base, db, var, tmp
        self.sip_port = int(env["HUB_VOICE_BIND_PORT"])
        self.parties = {
            "alice": RtpParty(ALICE_HZ),
            "bob": RtpParty(BOB_HZ),
            "sam": RtpParty(SAM_HZ),
            "external": RtpParty(EXTERNAL_HZ),
        }
        self.phone_ports = {name: free_sip_port() for name in PHONES}
        self.phone_ports["external"] = int(env["HUB_VOICE_TRUNK_PORT"])  # behind the trunk
        for name, ext in PHONES.items():
            register_phone(tmp, self.sip_port, ext, sip_password(name), self.phone_ports[name])

    def phone(
        self,
        name: str,
        tmp: Path,
        scenario: str = "party_phone.xml",
        pause_ms: int = 0,
        calls: int = 1,
        refer_to: str | None = None,
    ) -> Sipp:
        """The person's desk phone: picks up at once; media at their party. ``pause_ms``
        is how long ``phone_holds.xml`` / ``phone_hangs_up.xml`` wait before acting;
        ``refer_to`` is what ``phone_refers.xml`` dials on its transfer key."""
        args = sipp_args(scenario, local_port=self.phone_ports[name], calls=calls, timeout=240)
        args += ["-key", "rtp_port", str(self.parties[name].port)]
        if pause_ms:
            args += ["-d", str(pause_ms)]
        if refer_to is not None:
            args += ["-key", "refer_to", refer_to, "-trace_logs"]
        phone = Sipp(tmp / f"phone-{name}", args)
        deadline = time.monotonic() + 10
        from tests.e2e.test_voice_calls import _udp_bound

        while not _udp_bound(self.phone_ports[name]):
            assert phone.process.poll() is None, phone.errors()
            assert time.monotonic() < deadline, "the phone's SIPp did not start"
            time.sleep(0.05)
        return phone

    def call(self, tmp: Path, caller: str, party: RtpParty) -> Sipp:
        return party_caller(tmp, self.sip_port, caller, party)

    def active_call(self, caller: str, agent: str) -> int:
        (iid,) = wait_for(
            self.db,
            "SELECT i.id FROM interaction i JOIN contactidentity c ON c.contact_id = i.contact_id"
            " JOIN agent a ON a.id = i.agent_id JOIN user u ON u.id = a.user_id"
            " WHERE c.address = ? AND i.state = 'active' AND u.username = ?",
            caller,
            agent,
        )[0]
        return int(iid)

    def close(self) -> None:
        for party in self.parties.values():
            party.close()


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[Voice]:
    require_tool("sipp")
    tmp = tmp_path_factory.mktemp("controls")
    env = {
        **voice_env(),
        "HUB_IVR_ENABLED": "0",
        "HUB_VOICE_TRUNK_HOST": "127.0.0.1",
        "HUB_VOICE_TRUNK_PORT": str(free_sip_port()),
    }
    with hub_server(tmp / "var", seeded_db, **env) as (base, _process):
        v = Voice(base, env, tmp / "var" / "hub.sqlite3", tmp / "var", tmp)
        try:
            yield v
        finally:
            v.close()


def card(page, iid: int):
    return page.locator(f"#call-card-{iid}")


def connected_to_alice(voice: Voice, agent, tmp: Path, caller: str, party: RtpParty, **phone: Any):
    """alice is Ready; a call arrives, her phone picks up (that accepts), both hear each other;
    her console shows the call card."""
    go_ready(agent)
    phone = voice.phone("alice", tmp, **phone)
    caller_sipp = voice.call(tmp, caller, party)
    iid = voice.active_call(caller, "alice")
    until_hears(party, ALICE_HZ, present=True)
    until_hears(voice.parties["alice"], CALLER_HZ, present=True)
    agent.goto(f"{voice.base}/console?interaction={iid}")
    card(agent, iid).locator("[data-control=hold]").wait_for()
    return iid, phone, caller_sipp


def close_wrapup(page, then: str = "ready") -> None:
    form = page.locator("form.wrapup")
    form.wait_for()
    form.locator("select[name=disposition_id]").select_option(index=1)
    form.locator("select[name=next]").select_option(then)
    form.get_by_role("button", name="Close conversation").click()
    form.wait_for(state="detached")


def control_kinds(voice: Voice, iid: int) -> list[str]:
    return [
        k
        for (k,) in query(
            voice.db, "SELECT kind FROM controlevent WHERE interaction_id = ? ORDER BY id", iid
        )
    ]


def test_hold_mute_recording_pause_dial_pad_and_hang_up_from_the_call_card(
    voice: Voice, chromium, tmp_path: Path
) -> None:
    caller = "+15551239001"
    party = RtpParty(CALLER_HZ)
    context = chromium.new_context()
    phone = caller_sipp = None
    try:
        agent = log_in(context, voice.base, "alice")
        iid, phone, caller_sipp = connected_to_alice(voice, agent, tmp_path, caller, party)
        box = card(agent, iid)
        assert caller in box.inner_text() and "Alice" in box.inner_text()

        # Hold: the caller hears music, not alice; alice hears nothing of the caller.
        box.locator("[data-control=hold]").click()
        box.locator("[data-flag=held]").wait_for()  # the SSE event, no reload
        hears_moh(party)
        until_hears(party, ALICE_HZ, present=False)
        until_hears(voice.parties["alice"], CALLER_HZ, present=False)
        # Resume restores both ways.
        box.locator("[data-control=resume]").click()
        box.locator("[data-flag=held]").wait_for(state="detached")
        until_hears(party, ALICE_HZ, present=True)
        until_hears(voice.parties["alice"], CALLER_HZ, present=True)

        # Mute: the caller stops hearing alice, alice still hears the caller.
        box.locator("[data-control=mute]").click()
        box.locator("[data-flag=muted]").wait_for()
        until_hears(party, ALICE_HZ, present=False)
        until_hears(voice.parties["alice"], CALLER_HZ, present=True)
        box.locator("[data-control=unmute]").click()
        box.locator("[data-flag=muted]").wait_for(state="detached")
        until_hears(party, ALICE_HZ, present=True)

        # Recording paused and resumed: kept on the recording's timeline.
        box.locator("[data-control=recording-pause]").click()
        box.locator("[data-flag=recording-paused]").wait_for()
        time.sleep(1)
        box.locator("[data-control=recording-resume]").click()
        box.locator("[data-flag=recording-paused]").wait_for(state="detached")

        # The dial pad sends RFC 4733 events to the caller.
        sent_at = time.monotonic()
        box.locator("summary", has_text="Dial pad").click()
        box.locator("[data-key='5']").click()
        deadline = time.monotonic() + 10
        while 5 not in party.events_since(sent_at):
            assert time.monotonic() < deadline, "the caller got no telephone-event 5"
            time.sleep(0.1)

        # Hang up: both phones get a BYE, the agent wraps up.
        box.locator("[data-control=hangup]").click()
        assert caller_sipp.wait(30) == 0, caller_sipp.errors()
        assert phone.wait(30) == 0, phone.errors()
        wait_for(voice.db, "SELECT 1 FROM interaction WHERE id = ? AND state = 'wrap_up'", iid)
        close_wrapup(agent)
        kinds = control_kinds(voice, iid)
        assert kinds == [
            "hold",
            "resume",
            "mute",
            "unmute",
            "recording_pause",
            "recording_resume",
            "dtmf",
        ]
        offsets = query(
            voice.db,
            "SELECT recording_offset FROM controlevent WHERE interaction_id = ?"
            " AND kind LIKE 'recording_%' ORDER BY id",
            iid,
        )
        (paused_at,), (resumed_at,) = offsets
        assert paused_at is not None and resumed_at == paused_at  # nothing written while paused
        segments = wait_for(
            voice.db,
            "SELECT role, ended_at FROM interactionsegment WHERE interaction_id = ?"
            " AND ended_at IS NOT NULL",
            iid,
        )
        assert [s[0] for s in segments] == ["agent"]
    finally:
        for sipp in (caller_sipp, phone):
            if sipp is not None:
                sipp.stop()
        party.close()
        context.close()


def test_blind_transfer_to_a_queue_answered_by_a_second_agent_then_to_a_named_agent(
    voice: Voice, chromium, tmp_path: Path
) -> None:
    caller = "+15551239002"
    party = RtpParty(CALLER_HZ)
    context = chromium.new_context()
    sipps: list[Sipp] = []
    try:
        alice = log_in(context, voice.base, "alice")
        iid, phone_a, caller_sipp = connected_to_alice(voice, alice, tmp_path, caller, party)
        sipps += [phone_a, caller_sipp]
        bob_context = chromium.new_context()
        bob = log_in(bob_context, voice.base, "bob")
        go_ready(bob)
        phone_b = voice.phone("bob", tmp_path)
        sipps.append(phone_b)

        alice.locator(f"#actions-{iid} summary").get_by_text("Transfer", exact=True).click()
        form = alice.locator(f"#actions-{iid} form", has=alice.locator("select[name=target]"))
        form.locator("select[name=target]").select_option(label="General")
        form.locator("input[name=note]").fill("Wants to change plan <b>now</b>")
        form.get_by_role("button", name="Transfer").click()
        alice.get_by_text("Transferred").wait_for()

        # alice's phone is released; bob's phone picks up and bob talks with the caller.
        assert phone_a.wait(30) == 0, phone_a.errors()
        voice.active_call(caller, "bob")
        until_hears(party, BOB_HZ, present=True)
        until_hears(voice.parties["bob"], CALLER_HZ, present=True)
        bob.goto(f"{voice.base}/console?interaction={iid}")
        bob.locator(".messages", has_text="Wants to change plan <b>now</b>").wait_for()
        card(bob, iid).locator("[data-control=hold]").wait_for()

        # bob hands the caller to alice by name: her phone rings, picks up, she has it again
        phone_a2 = voice.phone("alice", tmp_path)
        sipps.append(phone_a2)
        bob.locator(f"#actions-{iid} summary").get_by_text("Transfer", exact=True).click()
        form = bob.locator(f"#actions-{iid} form", has=bob.locator("select[name=target]"))
        form.locator("select[name=target]").select_option(label="Alice Martin (ready)")
        form.get_by_role("button", name="Transfer").click()
        bob.get_by_text("Transferred").wait_for()
        assert phone_b.wait(30) == 0, phone_b.errors()
        bob.select_option("#presence-select", "offline")  # takes no more calls in this module
        voice.active_call(caller, "alice")
        until_hears(party, ALICE_HZ, present=True)
        until_hears(voice.parties["alice"], CALLER_HZ, present=True)
        alice.goto(f"{voice.base}/console?interaction={iid}")
        card(alice, iid).locator("[data-control=hangup]").click()
        assert caller_sipp.wait(30) == 0, caller_sipp.errors()
        assert phone_a2.wait(30) == 0, phone_a2.errors()
        close_wrapup(alice)
        wait_for(
            voice.db,
            "SELECT 1 FROM interactionsegment WHERE interaction_id = ? GROUP BY interaction_id"
            " HAVING COUNT(*) = 3 AND COUNT(ended_at) = 3",
            iid,
        )
        rows = query(
            voice.db,
            "SELECT u.username, s.role, s.end_reason FROM interactionsegment s"
            " JOIN agent a ON a.id = s.agent_id JOIN user u ON u.id = a.user_id"
            " WHERE s.interaction_id = ? ORDER BY s.id",
            iid,
        )
        assert rows == [
            ("alice", "agent", "transferred"),
            ("bob", "agent", "transferred"),
            ("alice", "agent", "call ended"),
        ]
        assert query(
            voice.db,
            "SELECT COUNT(*) FROM interaction WHERE contact_id ="
            " (SELECT contact_id FROM interaction WHERE id = ?)",
            iid,
        ) == [(1,)]
        bob_context.close()
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        context.close()


def test_supervisor_listens_whispers_barges_live_and_force_releases(
    voice: Voice, chromium, tmp_path: Path
) -> None:
    caller = "+15551239003"
    party = RtpParty(CALLER_HZ)
    alice_party, sam_party = voice.parties["alice"], voice.parties["sam"]
    context = chromium.new_context()
    sam_context = chromium.new_context()
    sipps: list[Sipp] = []
    try:
        # sam monitors the caller's number before the call starts: it appears through the
        # page's stream (no reload)
        sam = log_in(sam_context, voice.base, "sam")
        sam.goto(f"{voice.base}/supervisor?watch_calls={caller.replace('+', '%2B')}")
        sam.locator("#calls-table", has_text="No live calls.").wait_for()
        alice = log_in(context, voice.base, "alice")
        iid, phone_a, caller_sipp = connected_to_alice(voice, alice, tmp_path, caller, party)
        sipps += [phone_a, caller_sipp]
        row = sam.locator(f"#call-row-{iid}")
        row.locator("[data-mode=listen]").wait_for()
        assert caller in row.inner_text() and "Alice" in row.inner_text()
        phone_s = voice.phone("sam", tmp_path)
        sipps.append(phone_s)

        # Listen: sam hears both; nobody hears sam.
        row.locator("[data-mode=listen]").click()
        sam.locator(f"#call-row-{iid} .sup-mode", has_text="listen").wait_for()
        until_hears(sam_party, CALLER_HZ, present=True)
        until_hears(sam_party, ALICE_HZ, present=True)
        until_hears(party, SAM_HZ, present=False)
        until_hears(alice_party, SAM_HZ, present=False)
        assert not card(alice, iid).locator("[data-flag=supervisor]").is_visible()

        # Whisper, switched live: alice hears sam, the caller does not.
        sam.locator(f"#call-row-{iid} [data-mode=whisper]").click()
        sam.locator(f"#call-row-{iid} .sup-mode", has_text="whisper").wait_for()
        card(alice, iid).locator("[data-flag=supervisor]", has_text="whispering").wait_for()
        until_hears(alice_party, SAM_HZ, present=True)
        until_hears(party, SAM_HZ, present=False)
        until_hears(sam_party, CALLER_HZ, present=True)

        # Barge: a three-way call.
        sam.locator(f"#call-row-{iid} [data-mode=barge]").click()
        sam.locator(f"#call-row-{iid} .sup-mode", has_text="barge").wait_for()
        card(alice, iid).locator("[data-flag=supervisor]", has_text="joined").wait_for()
        until_hears(party, SAM_HZ, present=True)
        until_hears(alice_party, SAM_HZ, present=True)
        until_hears(party, ALICE_HZ, present=True)

        # Force release, confirmed: every phone gets a BYE, alice wraps up.
        sam.once("dialog", lambda dialog: dialog.accept())
        sam.locator(f"#call-row-{iid} [data-mode=release]").click()
        assert caller_sipp.wait(30) == 0, caller_sipp.errors()
        assert phone_a.wait(30) == 0, phone_a.errors()
        assert phone_s.wait(30) == 0, phone_s.errors()
        close_wrapup(alice)
        sam.locator(f"#call-row-{iid}").wait_for(state="detached")

        actions = [
            a
            for (a,) in query(
                voice.db,
                "SELECT action FROM auditentry WHERE entity = 'interaction' AND entity_id = ?"
                " ORDER BY id",
                str(iid),
            )
        ]
        assert actions == ["call.listen", "call.whisper", "call.barge", "call.force_release"]
        assert control_kinds(voice, iid) == [
            "supervisor_join",
            "supervisor_mode",
            "supervisor_mode",
            "force_release",
            "supervisor_leave",
        ]
        wait_for(
            voice.db,
            "SELECT 1 FROM interactionsegment WHERE interaction_id = ? AND role = 'supervisor'"
            " AND mode = 'barge' AND ended_at IS NOT NULL",
            iid,
        )
        legs = query(voice.db, "SELECT kind FROM callleg WHERE interaction_id = ? ORDER BY id", iid)
        assert [k for (k,) in legs].count("supervisor") == 1
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        context.close()
        sam_context.close()


def transfer_details(voice: Voice, iid: int) -> list[dict[str, Any]]:
    rows = query(
        voice.db,
        "SELECT detail FROM controlevent WHERE interaction_id = ? AND kind = 'transfer'"
        " ORDER BY id",
        iid,
    )
    return [json.loads(d) for (d,) in rows]


def talk_until_the_external_party_hangs_up(
    voice: Voice, iid: int, party: RtpParty, trunk: Sipp, caller_sipp: Sipp
) -> None:
    """After a blind transfer out: the caller and the external party hear each other until
    it hangs up; the caller then gets a BYE and no leg of the call is left open."""
    until_hears(party, EXTERNAL_HZ, present=True)
    until_hears(voice.parties["external"], CALLER_HZ, present=True)
    assert trunk.wait(60) == 0, trunk.errors()
    assert caller_sipp.wait(30) == 0, caller_sipp.errors()
    wait_for(
        voice.db,
        "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM callleg"
        " WHERE interaction_id = ? AND ended_at IS NULL)",
        iid,
    )


def test_blind_transfer_to_an_external_number_through_the_trunk(
    voice: Voice, chromium, tmp_path: Path
) -> None:
    """The agent wraps up at once; caller and the external party talk until it hangs up."""
    caller = "+15551239004"
    party = RtpParty(CALLER_HZ)
    context = chromium.new_context()
    sipps: list[Sipp] = []
    try:
        alice = log_in(context, voice.base, "alice")
        iid, phone_a, caller_sipp = connected_to_alice(voice, alice, tmp_path, caller, party)
        sipps += [phone_a, caller_sipp]
        trunk = voice.phone("external", tmp_path, "phone_hangs_up.xml", pause_ms=6000)
        sipps.append(trunk)
        box = card(alice, iid)
        box.locator("summary", has_text="Transfer to a number").click()
        box.locator("details.transfer-out input[name=number]").fill("(415) 555-0123")
        box.locator("details.transfer-out").get_by_role("button", name="Transfer").click()
        assert phone_a.wait(30) == 0, phone_a.errors()
        close_wrapup(alice)  # the agent is free while the call goes on
        talk_until_the_external_party_hangs_up(voice, iid, party, trunk, caller_sipp)
        legs = query(
            voice.db,
            "SELECT kind, remote_uri FROM callleg WHERE interaction_id = ? ORDER BY id",
            iid,
        )
        assert [k for k, _ in legs] == ["customer", "agent", "external"]
        assert "+14155550123@" in legs[2][1]
        assert query(voice.db, "SELECT state FROM interaction WHERE id = ?", iid) == [("closed",)]
        assert transfer_details(voice, iid) == [
            {"to": "external", "number": "+14155550123"},
            {"connected": "+14155550123"},
        ]
        # counted against the trunk's limits like every call out
        assert query(
            voice.db, "SELECT kind, number, allowed FROM callout WHERE interaction_id = ?", iid
        ) == [("transfer", "+14155550123", 1)]
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        context.close()


def test_consult_an_external_number_then_complete_the_transfer_to_it(
    voice: Voice, chromium, tmp_path: Path
) -> None:
    """The caller waits on hold while alice talks with the number (through the trunk, counted
    as a call out); on complete alice wraps up and the caller talks with the number."""
    caller = "+15551239008"
    party, external = RtpParty(CALLER_HZ), voice.parties["external"]
    alice_party = voice.parties["alice"]
    context = chromium.new_context()
    sipps: list[Sipp] = []
    try:
        alice = log_in(context, voice.base, "alice")
        iid, phone_a, caller_sipp = connected_to_alice(voice, alice, tmp_path, caller, party)
        sipps += [phone_a, caller_sipp]
        trunk = voice.phone("external", tmp_path, "phone_hangs_up.xml", pause_ms=40000)
        sipps.append(trunk)
        box = card(alice, iid)
        box.locator("summary", has_text="Consult a number").click()
        box.locator("details.consult-out input[name=number]").fill("(415) 555-0188")
        box.locator("details.consult-out").get_by_role("button", name="Call").click()
        box.locator("[data-flag=consulting]", has_text="+14155550188").wait_for()
        box.locator("[data-control=complete]").wait_for()
        hears_moh(party)
        until_hears(alice_party, EXTERNAL_HZ, present=True)
        until_hears(external, ALICE_HZ, present=True)
        until_hears(external, CALLER_HZ, present=False)

        box.locator("[data-control=complete]").click()
        assert phone_a.wait(30) == 0, phone_a.errors()
        close_wrapup(alice)  # the agent is free while the call goes on
        until_hears(party, EXTERNAL_HZ, present=True)
        until_hears(external, CALLER_HZ, present=True)
        assert trunk.wait(90) == 0, trunk.errors()  # it hung up: the caller gets a BYE
        assert caller_sipp.wait(30) == 0, caller_sipp.errors()
        assert control_kinds(voice, iid) == ["consult", "consult_complete"]
        wait_for(
            voice.db,
            "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM callleg"
            " WHERE interaction_id = ? AND ended_at IS NULL)",
            iid,
        )
        legs = query(voice.db, "SELECT kind FROM callleg WHERE interaction_id = ? ORDER BY id", iid)
        assert [k for (k,) in legs] == ["customer", "agent", "external"]
        assert query(
            voice.db, "SELECT kind, number, allowed FROM callout WHERE interaction_id = ?", iid
        ) == [("consult", "+14155550188", 1)]
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        context.close()


def test_the_agents_own_phone_holding_by_re_invite_shows_on_the_card(
    voice: Voice, chromium, tmp_path: Path
) -> None:
    caller = "+15551239005"
    party = RtpParty(CALLER_HZ)
    context = chromium.new_context()
    sipps: list[Sipp] = []
    try:
        alice = log_in(context, voice.base, "alice")
        iid, phone_a, caller_sipp = connected_to_alice(
            voice, alice, tmp_path, caller, party, scenario="phone_holds.xml", pause_ms=8000
        )
        sipps += [phone_a, caller_sipp]
        box = card(alice, iid)
        box.locator("[data-flag=phone-held]").wait_for(timeout=30_000)
        box.locator("[data-flag=phone-held]").wait_for(state="detached", timeout=30_000)
        until_hears(party, ALICE_HZ, present=True)  # resumed: they talk again
        box.locator("[data-control=hangup]").click()
        assert phone_a.wait(30) == 0, phone_a.errors()
        assert caller_sipp.wait(30) == 0, caller_sipp.errors()
        close_wrapup(alice)
        assert control_kinds(voice, iid) == ["remote_hold", "remote_resume"]
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        context.close()


def test_consult_cancelled_back_to_the_caller_then_conference_then_completed(
    voice: Voice, chromium, tmp_path: Path
) -> None:
    caller = "+15551239006"
    party = RtpParty(CALLER_HZ)
    alice_party, bob_party = voice.parties["alice"], voice.parties["bob"]
    context, bob_context = chromium.new_context(), chromium.new_context()
    sipps: list[Sipp] = []
    try:
        alice = log_in(context, voice.base, "alice")
        iid, phone_a, caller_sipp = connected_to_alice(voice, alice, tmp_path, caller, party)
        sipps += [phone_a, caller_sipp]
        bob = log_in(bob_context, voice.base, "bob")
        go_ready(bob)
        phone_b = voice.phone("bob", tmp_path, calls=2)
        sipps.append(phone_b)
        alice.goto(f"{voice.base}/console?interaction={iid}")  # bob is now a consult target
        box = card(alice, iid)
        box.locator("[data-control=hold]").wait_for()

        def consult_bob(pick: str = "Bob Okafor") -> None:
            tool = alice.locator(f"#actions-{iid} details", has_text="Consult")
            if tool.get_attribute("open") is None:
                tool.locator("summary").click()
            form = alice.locator(f"#actions-{iid} form", has=alice.locator("select[name=agent_id]"))
            form.locator("select[name=agent_id]").select_option(label=pick)
            form.locator("input[name=note]").fill("Billing question, see the account")
            form.get_by_role("button", name="Call").click()
            box.locator("[data-control=complete]").wait_for()

        # 1. consult the General queue (bob is its free agent): the caller hears music; alice
        # and bob talk; bob hears nothing of the caller
        consult_bob("General")
        box.locator("[data-flag=consulting]", has_text="Bob Okafor").wait_for()
        hears_moh(party)
        until_hears(alice_party, BOB_HZ, present=True)
        until_hears(bob_party, ALICE_HZ, present=True)
        until_hears(bob_party, CALLER_HZ, present=False)
        until_hears(alice_party, CALLER_HZ, present=False)
        # cancelled: back to the caller
        box.locator("[data-control=drop]").click()
        box.locator("[data-flag=consulting]").wait_for(state="detached")
        until_hears(party, ALICE_HZ, present=True)
        until_hears(alice_party, CALLER_HZ, present=True)
        until_hears(alice_party, BOB_HZ, present=False)

        # 2. consult again, then a three-way conference
        consult_bob()
        box.locator("[data-control=conference]").click()
        box.locator("[data-flag=conference]").wait_for()
        until_hears(party, BOB_HZ, present=True)
        until_hears(party, ALICE_HZ, present=True)
        until_hears(bob_party, CALLER_HZ, present=True)

        # 3. complete: alice leaves, bob keeps the caller (one interaction, note attached)
        box.locator("[data-control=complete]").click()
        assert phone_a.wait(30) == 0, phone_a.errors()
        voice.active_call(caller, "bob")
        until_hears(party, BOB_HZ, present=True)
        until_hears(party, ALICE_HZ, present=False)
        bob.goto(f"{voice.base}/console?interaction={iid}")
        bob.locator(".messages", has_text="Billing question, see the account").wait_for()
        card(bob, iid).locator("[data-control=hangup]").click()
        assert caller_sipp.wait(30) == 0, caller_sipp.errors()
        assert phone_b.wait(30) == 0, phone_b.errors()
        close_wrapup(bob, "offline")
        assert control_kinds(voice, iid) == [
            "consult",
            "consult_cancel",
            "consult",
            "conference",
            "consult_complete",
        ]
        wait_for(
            voice.db,
            "SELECT 1 FROM interactionsegment WHERE interaction_id = ? GROUP BY interaction_id"
            " HAVING COUNT(*) = 4 AND COUNT(ended_at) = 4",
            iid,
        )
        rows = query(
            voice.db,
            "SELECT u.username, s.role, s.end_reason FROM interactionsegment s"
            " JOIN agent a ON a.id = s.agent_id JOIN user u ON u.id = a.user_id"
            " WHERE s.interaction_id = ? ORDER BY s.id",
            iid,
        )
        assert rows == [
            ("alice", "agent", "transferred"),
            ("bob", "consult", "consult cancelled"),
            ("bob", "consult", "took the call"),
            ("bob", "agent", "call ended"),
        ]
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        context.close()
        bob_context.close()


def final_notify(phone: Sipp) -> list[str]:
    """The sipfrag statuses of the final NOTIFYs the phone logged (``phone_refers.xml``)."""
    return phone.logged(r"final NOTIFY: (\d{3})")


def test_the_agents_phone_transfer_key_hands_the_caller_to_another_agents_extension(
    voice: Voice, chromium, tmp_path: Path
) -> None:
    """alice's desk phone dials bob's extension on its transfer key (REFER): the hub offers
    the call to bob, answers the REFER with 200 and releases alice's phone."""
    caller = "+15551239007"
    party = RtpParty(CALLER_HZ)
    context, bob_context = chromium.new_context(), chromium.new_context()
    sipps: list[Sipp] = []
    try:
        alice = log_in(context, voice.base, "alice")
        iid, phone_a, caller_sipp = connected_to_alice(
            voice,
            alice,
            tmp_path,
            caller,
            party,
            scenario="phone_refers.xml",
            pause_ms=10_000,
            refer_to=PHONES["bob"],
        )
        sipps += [phone_a, caller_sipp]
        bob = log_in(bob_context, voice.base, "bob")
        go_ready(bob)  # after alice has the call: it is not offered to bob first
        phone_b = voice.phone("bob", tmp_path)
        sipps.append(phone_b)

        assert phone_a.wait(60) == 0, phone_a.errors()
        assert final_notify(phone_a) == ["200"]
        alice.locator("#popups .popup", has_text="Your phone transferred the call to").wait_for()
        voice.active_call(caller, "bob")
        until_hears(party, BOB_HZ, present=True)
        until_hears(voice.parties["bob"], CALLER_HZ, present=True)
        bob.goto(f"{voice.base}/console?interaction={iid}")
        card(bob, iid).locator("[data-control=hangup]").click()
        assert caller_sipp.wait(30) == 0, caller_sipp.errors()
        assert phone_b.wait(30) == 0, phone_b.errors()
        close_wrapup(bob, then="offline")  # takes no more calls in this module
        [detail] = transfer_details(voice, iid)
        assert detail["by"] == "phone" and detail["to"] == "agent"
        assert query(
            voice.db,
            "SELECT u.username, s.role FROM interactionsegment s"
            " JOIN agent a ON a.id = s.agent_id JOIN user u ON u.id = a.user_id"
            " WHERE s.interaction_id = ? ORDER BY s.id",
            iid,
        ) == [("alice", "agent"), ("bob", "agent")]
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        context.close()
        bob_context.close()


def test_the_agents_phone_transfer_key_to_a_number_goes_through_the_trunk(
    voice: Voice, chromium, tmp_path: Path
) -> None:
    """A number dialled on the phone's transfer key: checked and counted like every call out,
    the phone released, alice in wrap-up, the caller bridged to the external party."""
    caller = "+15551239009"
    party = RtpParty(CALLER_HZ)
    context = chromium.new_context()
    sipps: list[Sipp] = []
    try:
        alice = log_in(context, voice.base, "alice")
        trunk = voice.phone("external", tmp_path, "phone_hangs_up.xml", pause_ms=6000)
        sipps.append(trunk)
        iid, phone_a, caller_sipp = connected_to_alice(
            voice,
            alice,
            tmp_path,
            caller,
            party,
            scenario="phone_refers.xml",
            pause_ms=3000,
            refer_to="4155550124",
        )
        sipps += [phone_a, caller_sipp]
        assert phone_a.wait(60) == 0, phone_a.errors()
        assert final_notify(phone_a) == ["200"]
        close_wrapup(alice)  # the agent is free while the call goes on
        talk_until_the_external_party_hangs_up(voice, iid, party, trunk, caller_sipp)
        assert transfer_details(voice, iid) == [
            {"to": "external", "number": "+14155550124", "by": "phone"},
            {"connected": "+14155550124"},
        ]
        assert query(
            voice.db, "SELECT kind, number, allowed FROM callout WHERE interaction_id = ?", iid
        ) == [("transfer", "+14155550124", 1)]
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        context.close()


def test_the_agents_phone_transfer_to_nobody_is_refused_and_the_call_stays(
    voice: Voice, chromium, tmp_path: Path
) -> None:
    caller = "+15551239008"
    party = RtpParty(CALLER_HZ)
    context = chromium.new_context()
    sipps: list[Sipp] = []
    try:
        alice = log_in(context, voice.base, "alice")
        iid, phone_a, caller_sipp = connected_to_alice(
            voice,
            alice,
            tmp_path,
            caller,
            party,
            scenario="phone_refers.xml",
            pause_ms=3000,
            refer_to="nobody%20here",
        )
        sipps += [phone_a, caller_sipp]
        popup = alice.locator("#popups .popup", has_text="Your phone's transfer was not made")
        popup.wait_for()
        assert "nobody here is not an agent's extension, a queue or a phone number" in (
            popup.inner_text()
        )
        until_hears(party, ALICE_HZ, present=True)  # the call stays as it was
        card(alice, iid).locator("[data-control=hangup]").click()
        assert phone_a.wait(30) == 0, phone_a.errors()
        assert final_notify(phone_a) == ["404"]
        assert caller_sipp.wait(30) == 0, caller_sipp.errors()
        close_wrapup(alice)
        assert control_kinds(voice, iid) == ["transfer"]
        assert transfer_details(voice, iid)[0]["refused"].startswith("sip:nobody%20here@")
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        context.close()
