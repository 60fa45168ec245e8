"""On-duty forwards, limits on calls out and retention, through the running hub: SIPp
callers, SIPp as the SIP trunk, Chromium for the agent's presence and the audit log.

- a premium-rate callback number is refused with a prompt that says why, and audited;
- with no agent logged in, a call is forwarded to the queue's on-duty number through the
  trunk, recorded like any call; the inbox's daily cap then stops the next forward;
- retention deletes that recording once it is old, and the audit log shows it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.hub_process import free_sip_port, hub_server, voice_env
from tests.e2e.scripted_caller import Script, scripted_call
from tests.e2e.test_click_to_dial import invite_seen_by, trunk
from tests.e2e.test_console_browser import log_in
from tests.e2e.test_nobody_answers import configure, go_offline, wait_for_speech
from tests.e2e.test_voice_calls import (
    channel_rms,
    query,
    recorded_audio,
    states_of,
    wait_for,
)
from tests.e2e.test_voice_ivr import heard_by_caller
from tests.support import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.sipp]

ON_DUTY = "+14155550142"
PREMIUM = "9002534567"  # +1 900: premium rate


@pytest.fixture(scope="module")
def duty_hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[tuple]:
    """(base, SIP port, db, var, trunk port): General forwards to ON_DUTY when nobody is
    logged in, takes callbacks on key 9; one call out per inbox per day; recordings are
    kept 30 days, checked every second."""
    require_tool("sipp")
    root = tmp_path_factory.mktemp("duty")
    seeded = root / "seeded.sqlite3"
    shutil.copyfile(seeded_db, seeded)
    configure(seeded, onduty_number=ON_DUTY, callback_key="9")
    trunk_port = free_sip_port()
    env = {
        **voice_env(),
        "HUB_VOICE_TRUNK_HOST": "127.0.0.1",
        "HUB_VOICE_TRUNK_PORT": str(trunk_port),
        "HUB_DIAL_TIMEOUT_SECONDS": "4",
        "HUB_NOBODY_POLL_SECONDS": "0.2",
        "HUB_CALLBACK_DIGITS_TIMEOUT_SECONDS": "15",
        "HUB_CALLS_OUT_DAILY_CAP_INBOX": "1",
        "HUB_RETENTION_DAYS": "30",
        "HUB_RETENTION_INTERVAL_SECONDS": "1",
        "HUB_JOBS_POLL_SECONDS": "0.5",
        "HUB_IVR_ENABLED": "1",  # the speech engines load (and prompts render) at start
        "HUB_VOICEMAIL_NO_SPEECH_SECONDS": "3",
    }
    var = root / "var"
    with hub_server(var, seeded, **env) as (base, _process):
        wait_for_speech(var)
        yield base, int(env["HUB_VOICE_BIND_PORT"]), var / "hub.sqlite3", var, trunk_port


def test_a_premium_rate_callback_number_is_refused_with_its_prompt(
    duty_hub: tuple, chromium, tmp_path: Path
) -> None:
    base, sip_port, db, var, _trunk_port = duty_hub
    context = chromium.new_context()
    caller = None
    try:
        # An agent is logged in (not ready), so the call waits in the queue.
        agent = log_in(context, base, "alice")
        agent.locator("body[data-live]").wait_for(state="attached")
        agent.select_option("#presence-select", index=1)
        agent.locator("#presence-state").filter(has_text="Not ready").wait_for()
        caller = scripted_call(
            tmp_path,
            sip_port,
            Script()
            .pause(1500)
            .keys("9")
            .pause(1500)
            .keys("2")
            .keys(f"{PREMIUM}#")
            .pause(10000)  # hears the refusal (about 2 s), waits in the queue, gives up
            .end_hanging_up(),
            caller="+14155550191",
        )
        assert caller.wait(90) == 0, caller.errors()
        (interaction_id, reason, allowed) = wait_for(
            db,
            "SELECT interaction_id, reason, allowed FROM callout WHERE kind = 'callback'",
        )[0]
        assert allowed == 0 and "premium-rate" in reason
        entry = query(
            db,
            "SELECT after FROM auditentry WHERE action = 'call_out.refused' AND entity_id = ?",
            str(interaction_id),
        )
        assert entry and json.loads(entry[0][0])["number"] == "+1" + PREMIUM
        assert query(db, "SELECT count(*) FROM callbackrequest")[0][0] == 0
        wait_for(
            db, "SELECT 1 FROM interaction WHERE id = ? AND state = 'abandoned'", interaction_id
        )
        assert "premium" in heard_by_caller(var, db, interaction_id)
        go_offline(agent)
    finally:
        context.close()
        if caller is not None:
            caller.stop()


def test_no_agent_forwards_to_on_duty_a_cap_stops_the_next_and_retention_deletes_it(
    duty_hub: tuple, chromium, tmp_path: Path
) -> None:
    base, sip_port, db, var, trunk_port = duty_hub
    wait_for(db, "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM agent WHERE presence != 'offline')")
    talk_then_hang_up = Script().talk("pcap/g711a.pcap").pause(12000).end_hanging_up()
    on_duty = trunk(tmp_path, trunk_port, "trunk_answer.xml")
    first = scripted_call(tmp_path, sip_port, talk_then_hang_up, caller="+14155550192")
    second = None
    context = chromium.new_context()
    try:
        assert first.wait(90) == 0, first.errors()
        assert on_duty.wait(30) == 0, on_duty.errors()  # the hub hung up on the on-duty phone
        assert f"sip:{ON_DUTY}@" in invite_seen_by(on_duty).splitlines()[0]
        (forwarded, data) = wait_for(
            db,
            "SELECT id, data FROM interaction WHERE json_extract(data, '$.kind') = 'forward'",
        )[0]
        assert json.loads(data)["forwarded_to"] == ON_DUTY
        assert json.loads(data)["forward_reason"] == "no_agents"
        assert states_of(db, forwarded) == ["self_service", "closed"]
        wait_for(
            db,
            "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM callleg WHERE interaction_id = ?"
            " AND ended_at IS NULL)",
            forwarded,
        )
        legs = query(
            db,
            "SELECT kind, answered_at IS NOT NULL FROM callleg WHERE interaction_id = ?"
            " ORDER BY id",
            forwarded,
        )
        assert legs == [("customer", 1), ("external", 1)]
        recording_id, path, legs_json = wait_for(
            db,
            "SELECT id, path, legs FROM recording WHERE interaction_id = ? AND complete = 1",
            forwarded,
        )[0]
        assert len(json.loads(legs_json)) == 2  # both sides are in the recording
        left, right = channel_rms(recorded_audio(db, var, forwarded))
        assert left > 100 and right > 100
        assert query(db, "SELECT allowed FROM callout WHERE kind = 'forward'") == [(1,)]

        # The inbox's cap (1 a day) stops the next forward: voicemail takes the caller.
        second = scripted_call(tmp_path, sip_port, talk_then_hang_up, caller="+14155550193")
        assert second.wait(90) == 0, second.errors()
        (refused, reason) = wait_for(
            db, "SELECT interaction_id, reason FROM callout WHERE kind = 'forward' AND allowed = 0"
        )[0]
        assert "daily cap of 1" in reason
        (data,) = query(db, "SELECT data FROM interaction WHERE id = ?", refused)[0]
        assert "daily cap" in json.loads(data)["forward_refused"]
        assert query(
            db,
            "SELECT count(*) FROM auditentry WHERE action = 'call_out.refused' AND entity_id = ?",
            str(refused),
        ) == [(1,)]
        assert "voicemail" in states_of(db, refused)

        # Retention: the forwarded call's recording, now 40 days old, is deleted.
        conn = sqlite3.connect(db, timeout=10)
        try:
            with conn:
                conn.execute(
                    "UPDATE recording SET started_at = datetime('now', '-40 days') WHERE id = ?",
                    (recording_id,),
                )
        finally:
            conn.close()
        wait_for(
            db, "SELECT 1 FROM recording WHERE id = ? AND deleted_at IS NOT NULL", recording_id
        )
        assert not (var / path).exists()
        assert query(
            db,
            "SELECT count(*) FROM recording WHERE deleted_at IS NOT NULL",
        ) == [(1,)]  # the other, new recordings are kept
        admin = log_in(context, base, "admin")
        admin.goto(f"{base}/admin/audit?entity=recording")
        row = admin.locator("tr", has_text="recording.deleted")
        row.first.wait_for()
        assert str(recording_id) in row.first.inner_text()
    finally:
        context.close()
        for sipp in (on_duty, first, second):
            if sipp is not None:
                sipp.stop()
