"""When nobody can answer, through the running hub: SIPp callers keying by SIP INFO, SIPp
as the agent's phone and as the SIP trunk, Chromium driving the console.

- the queue's maximum wait sends the caller to voicemail; the message is recorded, a job
  transcribes it with faster-whisper, it is offered to the agent, who plays it and calls
  back with one click;
- a caller asks for a callback with a keyed-in number and hangs up; the request keeps the
  call's place; the first try is not answered, the retry connects agent and customer.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.hub_process import free_sip_port, hub_server, sip_password, voice_env
from tests.e2e.scripted_caller import Script, scripted_call
from tests.e2e.test_click_to_dial import invite_seen_by, trunk
from tests.e2e.test_console_browser import go_ready, log_in
from tests.e2e.test_voice_calls import (
    WAIT_S,
    Sipp,
    query,
    register_phone,
    start_phone,
    states_of,
    wait_for,
)
from tests.e2e.test_voice_ivr import spoken_pcap
from tests.support import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.sipp]

MESSAGE = "Hello, this is Dana. Please call me back about my order."
VOICEMAIL_CALLER = "+14152593847"  # valid numbers: the hub calls them back
CALLBACK_CALLER = "+14155550177"
KEYED = "4152693817"  # the number keyed for the callback (read in the default region, US)


def configure(db: Path, **queue: object) -> None:
    """The demo data, changed as an admin would: the Phone inbox answers without its
    dialog (calls queue at once), and the General queue's "when nobody answers" fields."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute("UPDATE inbox SET dialog_id = NULL WHERE kind = 'voice'")
            sets = ", ".join(f"{name} = ?" for name in queue)
            conn.execute(f"UPDATE queue SET {sets} WHERE name = 'General'", tuple(queue.values()))  # noqa: S608
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the copy the hub gets has it all
    finally:
        conn.close()


def close_wrap_up(page) -> None:
    wrapup = page.locator("form.wrapup")
    wrapup.locator("select[name=disposition_id]").select_option(index=1)
    wrapup.get_by_role("button", name="Close conversation").click()
    wrapup.wait_for(state="detached")


def wait_for_speech(var: Path, within: float = 240.0) -> None:
    """The hub loads its speech engines in the background at start; callers who came
    earlier would wait for the prompts (so a scripted caller's timing would be off)."""
    deadline = time.monotonic() + within
    while "IVR speech loaded" not in (var / "server.log").read_text(errors="replace"):
        assert time.monotonic() < deadline, "the hub's speech engines did not load"
        time.sleep(0.3)


def go_offline(page) -> None:
    page.select_option("#presence-select", "offline")
    page.locator("#presence-state").filter(has_text="Offline").wait_for()


@pytest.fixture(scope="module")
def nobody_hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[tuple]:
    """(base, SIP port, db, var, trunk port) of a hub whose General queue sends callers
    to voicemail after 4 s, takes a callback on key 9, and retries callbacks after 2 s."""
    require_tool("sipp")
    root = tmp_path_factory.mktemp("nobody")
    seeded = root / "seeded.sqlite3"
    shutil.copyfile(seeded_db, seeded)
    configure(
        seeded,
        max_wait_seconds=4,
        max_wait_action="voicemail",
        callback_key="9",
        callback_retry_seconds=2,
        callback_max_tries=3,
    )
    trunk_port = free_sip_port()
    env = {
        **voice_env(),
        "HUB_VOICE_TRUNK_HOST": "127.0.0.1",
        "HUB_VOICE_TRUNK_PORT": str(trunk_port),
        "HUB_DIAL_TIMEOUT_SECONDS": "4",
        "HUB_VOICEMAIL_SILENCE_SECONDS": "1.2",
        "HUB_VOICEMAIL_NO_SPEECH_SECONDS": "20",
        "HUB_VOICEMAIL_MAX_SECONDS": "30",
        "HUB_NOBODY_POLL_SECONDS": "0.2",
        "HUB_CALLBACK_POLL_SECONDS": "0.3",
        "HUB_CALLBACK_DIGITS_TIMEOUT_SECONDS": "15",
        "HUB_JOBS_POLL_SECONDS": "0.5",
        "HUB_IVR_ENABLED": "1",  # the speech engines load (and prompts render) at start
    }
    var = root / "var"
    with hub_server(var, seeded, **env) as (base, _process):
        wait_for_speech(var)
        yield base, int(env["HUB_VOICE_BIND_PORT"]), var / "hub.sqlite3", var, trunk_port


def test_maximum_wait_leads_to_voicemail_transcribed_offered_played_and_called_back(
    nobody_hub: tuple, chromium, tmp_path: Path
) -> None:
    base, sip_port, db, var, trunk_port = nobody_hub
    pcap = tmp_path / "message.pcap"
    spoken_pcap(pcap, MESSAGE)  # Piper's voice, then 2 s of silence
    # Nobody is ready: the caller waits 4 s, hears the greeting and the tone, and talks
    # (the message again and again) until the hub thanks them and hangs up.
    caller = scripted_call(
        tmp_path,
        sip_port,
        Script().end_talking_until_bye("message.pcap", every_ms=7000),
        caller=VOICEMAIL_CALLER,
        files={"message.pcap": pcap},
    )
    phone_port = free_sip_port()
    phone: Sipp | None = None
    answering: Sipp | None = None
    context = chromium.new_context()
    try:
        assert caller.wait(90) == 0, caller.errors()
        (interaction_id, vm_seconds, ended_by, reason) = wait_for(
            db,
            "SELECT v.interaction_id, v.duration_seconds, v.ended_by, v.reason FROM voicemail v"
            " JOIN contactidentity c ON c.address = ?"
            " JOIN interaction i ON i.id = v.interaction_id AND i.contact_id = c.contact_id",
            VOICEMAIL_CALLER,
        )[0]
        assert reason == "max_wait" and ended_by == "silence" and vm_seconds > 1
        # the job transcribed it (the caller's words), then queued it for an agent
        text = " ".join(
            t
            for (t,) in wait_for(
                db,
                "SELECT s.text FROM transcriptsegment s JOIN transcript t ON t.id = s.transcript_id"
                " WHERE s.interaction_id = ? AND s.speaker = 'customer' AND t.status = 'done'",
                interaction_id,
                within=60,
            )
        ).lower()
        assert "order" in text, text
        wait_for(db, "SELECT 1 FROM interaction WHERE id = ? AND state = 'queued'", interaction_id)
        assert states_of(db, interaction_id) == ["self_service", "queued", "voicemail", "queued"]
        data = json.loads(
            query(db, "SELECT data FROM interaction WHERE id = ?", interaction_id)[0][0]
        )
        assert data["kind"] == "voicemail"
        (vm_path,) = query(
            db,
            "SELECT r.path FROM recording r JOIN voicemail v ON v.recording_id = r.id"
            " WHERE v.interaction_id = ?",
            interaction_id,
        )[0]
        assert (var / vm_path).is_file()

        # The agent is offered the message, reads its transcript and plays it.
        phone = start_phone(tmp_path, phone_port, calls=1)
        register_phone(tmp_path, sip_port, "1001", sip_password("alice"), phone_port)
        agent = log_in(context, base, "alice")
        go_ready(agent)
        offer = agent.locator("#offers .offer", has_text=VOICEMAIL_CALLER)
        offer.wait_for(timeout=WAIT_S * 1000)
        offer.get_by_role("button", name="Accept").click()
        section = agent.locator(f"#voicemail-{interaction_id}")
        section.wait_for()
        assert "order" in section.locator(".transcript").inner_text().lower()
        played = agent.evaluate(
            """async () => {
                const audio = document.querySelector('.voicemail-player');
                audio.muted = true;
                await audio.play();
                await new Promise(r => setTimeout(r, 500));
                return audio.currentTime > 0 || !audio.paused;
            }"""
        )
        assert played
        wait_for(
            db,
            "SELECT 1 FROM auditentry WHERE action = 'recording.download'"
            " AND entity_id = (SELECT CAST(recording_id AS TEXT) FROM voicemail"
            " WHERE interaction_id = ?)",
            interaction_id,
        )

        # One click calls the customer back: the agent's phone, then the trunk.
        answering = trunk(tmp_path, trunk_port, "trunk_answer.xml")
        section.get_by_role("button", name=f"Call back {VOICEMAIL_CALLER}").click()
        agent.locator(".conv-head", has_text=f"outbound to {VOICEMAIL_CALLER}").wait_for()
        (back,) = wait_for(
            db,
            "SELECT i.id FROM interaction i JOIN callleg l ON l.interaction_id = i.id"
            " WHERE i.id > ? AND l.kind = 'customer' AND l.answered_at IS NOT NULL",
            interaction_id,
        )[0]
        assert f"sip:{VOICEMAIL_CALLER}@" in invite_seen_by(answering).splitlines()[0]
        agent.get_by_role("button", name="End conversation").click()
        agent.locator("form.wrapup").wait_for()
        assert answering.wait(30) == 0, answering.errors()
        assert phone.wait(30) == 0, phone.errors()
        assert query(
            db, "SELECT kind, allowed FROM callout WHERE number = ?", VOICEMAIL_CALLER
        ) == [("dial", 1)]
        assert back > interaction_id
        close_wrap_up(agent)
        # the voicemail is done with too
        agent.goto(f"{base}/console?interaction={interaction_id}")
        agent.locator(f"#voicemail-{interaction_id}").wait_for()
        agent.get_by_role("button", name="End conversation").click()
        close_wrap_up(agent)
        wait_for(db, "SELECT 1 FROM interaction WHERE id = ? AND state = 'closed'", interaction_id)
        go_offline(agent)
    finally:
        context.close()
        caller.stop()
        for sipp in (phone, answering):
            if sipp is not None:
                sipp.stop()


def test_callback_keyed_number_keeps_its_place_retried_after_no_answer_then_connects(
    nobody_hub: tuple, chromium, tmp_path: Path
) -> None:
    base, sip_port, db, _var, trunk_port = nobody_hub
    # Queued, the caller presses 9, then 2 ("another number"), keys it with #, and waits
    # for the hub's goodbye.
    caller = scripted_call(
        tmp_path,
        sip_port,
        Script()
        .pause(1500)
        .keys("9")
        .pause(1500)
        .keys("2")
        .keys(KEYED + "#")
        .end_waiting_for_bye(),
        caller=CALLBACK_CALLER,
    )
    phone_port = free_sip_port()
    phone: Sipp | None = None
    rings: Sipp | None = None
    answering: Sipp | None = None
    context = chromium.new_context()
    try:
        assert caller.wait(90) == 0, caller.errors()
        (interaction_id, number, state, tries) = wait_for(
            db,
            "SELECT r.interaction_id, r.number, r.state, r.tries FROM callbackrequest r"
            " JOIN interaction i ON i.id = r.interaction_id"
            " JOIN contactidentity c ON c.contact_id = i.contact_id WHERE c.address = ?",
            CALLBACK_CALLER,
        )[0]
        assert (number, state, tries) == ("+1" + KEYED, "waiting", 0)
        # its place is kept: the same interaction, still queued since the call came in
        first_queued = query(
            db,
            "SELECT at FROM interactionevent WHERE interaction_id = ? AND to_state = 'queued'",
            interaction_id,
        )[0][0]
        state, queued_at = query(
            db, "SELECT state, queued_at FROM interaction WHERE id = ?", interaction_id
        )[0]
        assert state == "queued" and queued_at == first_queued
        wait_for(  # the caller's leg ended, and the call was not counted as abandoned
            db,
            "SELECT 1 FROM callleg WHERE interaction_id = ? AND kind = 'customer'"
            " AND ended_at IS NOT NULL",
            interaction_id,
        )
        assert "abandoned" not in states_of(db, interaction_id)

        phone = start_phone(tmp_path, phone_port, calls=2)
        register_phone(tmp_path, sip_port, "1001", sip_password("alice"), phone_port)
        rings = trunk(tmp_path, trunk_port, "trunk_rings.xml")
        agent = log_in(context, base, "alice")
        go_ready(agent)

        # First try: the agent accepts, the phone answers, the customer does not.
        offer = agent.locator("#offers .offer", has_text=CALLBACK_CALLER)
        offer.wait_for(timeout=WAIT_S * 1000)
        offer.get_by_role("button", name="Accept").click()
        wait_for(
            db,
            "SELECT 1 FROM callbackattempt WHERE interaction_id = ? AND outcome = 'no answer'",
            interaction_id,
        )
        assert rings.wait(30) == 0, rings.errors()

        # The retry puts it back in the queue at its old place; the second try connects.
        answering = trunk(tmp_path, trunk_port, "trunk_answer.xml")
        offer = agent.locator("#offers .offer", has_text=CALLBACK_CALLER)
        offer.wait_for(timeout=WAIT_S * 1000)
        offer.get_by_role("button", name="Accept").click()
        wait_for(
            db,
            "SELECT 1 FROM callbackrequest WHERE interaction_id = ? AND state = 'connected'",
            interaction_id,
        )
        assert f"sip:+1{KEYED}@" in invite_seen_by(answering).splitlines()[0]
        attempts = query(
            db,
            "SELECT attempt, outcome, agent_id IS NOT NULL FROM callbackattempt"
            " WHERE interaction_id = ? ORDER BY id",
            interaction_id,
        )
        assert attempts == [(1, "no answer", 1), (2, "connected", 1)]
        legs = query(
            db,
            "SELECT kind, answered_at IS NOT NULL FROM callleg WHERE interaction_id = ?"
            " ORDER BY id",
            interaction_id,
        )
        # the caller's own call, then per try: the agent's phone and the customer
        assert legs == [
            ("customer", 1),
            ("agent", 1),
            ("customer", 0),
            ("agent", 1),
            ("customer", 1),
        ]
        agent.get_by_role("button", name="End conversation").click()
        agent.locator("form.wrapup").wait_for()
        assert answering.wait(30) == 0, answering.errors()
        assert phone.wait(30) == 0, phone.errors()
        assert states_of(db, interaction_id)[-4:] == ["queued", "offered", "active", "wrap_up"]
        close_wrap_up(agent)
        go_offline(agent)
    finally:
        context.close()
        caller.stop()
        for sipp in (phone, rings, answering):
            if sipp is not None:
                sipp.stop()
