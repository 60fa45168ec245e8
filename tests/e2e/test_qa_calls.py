"""QA on a call made through the running hub, with Piper speech on both sides.

SIPp signals the caller and alice's desk phone; each side's media is a ``SpeechParty``
speaking its lines of the script (a card number, a phone number, an email address and a
name among them) when its turn comes. The hub records the call in stereo, transcribes it
after hang-up in its niced worker, redacts text and audio, indexes and categorizes it;
then QA finds it by speaker, scores it with a form that answers itself, and alice
disputes the score.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import time
import urllib.parse
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

from speech.g711 import ulaw_decode
from speech.tts import Synthesizer
from tests.e2e.hub_process import free_sip_port, hub_server, sip_password, voice_env
from tests.e2e.rtp_party import SpeechParty
from tests.e2e.test_call_controls import card, party_caller
from tests.e2e.test_console_browser import go_ready, log_in
from tests.e2e.test_voice_calls import Sipp, _udp_bound, query, register_phone, sipp_args, wait_for
from tests.hub.transcription.call_audio import SCRIPT
from tests.support import demo_password, require_tool

pytestmark = [pytest.mark.browser, pytest.mark.sipp]

CALLER = "+15551237001"
LINES = [line for line in SCRIPT if line.speaker != "ivr"]  # the menu is off: no IVR line
FORM = {
    "sections": [
        {
            "title": "Call",
            "questions": [
                {"id": "card", "text": "Took the card update", "auto": {"category": "Card update"}},
                {
                    "id": "pace",
                    "text": "No silence over 30 s",
                    "auto": {"metric": "longest_silence_seconds", "op": "<", "value": 30},
                },
            ],
        }
    ]
}


def http_login(stack: contextlib.ExitStack, base: str, username: str) -> httpx.Client:
    """A logged-in HTTP session, closed with ``stack``."""
    client = httpx.Client(base_url=base, timeout=30)
    stack.callback(client.close)
    client.get("/login")
    done = client.post(
        "/login",
        data={
            "username": username,
            "password": demo_password(username),
            "_csrf_token": client.cookies.get("csrftoken", ""),
        },
    )
    assert done.status_code in (302, 303), done.text[:500]
    return client


def post(client: httpx.Client, url: str, **data: str) -> httpx.Response:
    return client.post(url, data={**data, "_csrf_token": client.cookies.get("csrftoken", "")})


def rms(pcm: np.ndarray, channel: int, start_ms: int, end_ms: int) -> float:
    part = pcm[start_ms * 8 : end_ms * 8, channel].astype(np.float64)
    return float(np.sqrt(np.mean(part**2))) if len(part) else 0.0


def test_a_spoken_call_is_transcribed_redacted_found_by_speaker_tagged_and_scored(
    tmp_path: Path, seeded_db: Path, chromium
) -> None:
    require_tool("sipp")
    tts = Synthesizer()
    speech = [ulaw_decode(tts.telephony(line.text, "pcmu")) for line in LINES]
    env = {**voice_env(), "HUB_IVR_ENABLED": "0"}  # the call goes straight to General
    sip_port = int(env["HUB_VOICE_BIND_PORT"])
    var = tmp_path / "var"
    db = var / "hub.sqlite3"
    caller_party, alice_party = SpeechParty(), SpeechParty()
    context = chromium.new_context()
    sipps: list[Sipp] = []
    with hub_server(var, seeded_db, **env) as (base, _process), contextlib.ExitStack() as stack:
        try:
            admin = http_login(stack, base, "admin")
            made = post(
                admin,
                "/qa/categories",
                name="Card update",
                query="update NEAR/3 car*",  # "card" may be heard as "car"
                speaker="customer",
                match="all",
            )
            assert made.status_code == 303, made.text[:500]
            made = post(admin, "/qa/forms", name="Calls", definition=json.dumps(FORM))
            assert made.status_code == 303, made.text[:500]

            phone_port = free_sip_port()
            register_phone(tmp_path, sip_port, "1001", sip_password("alice"), phone_port)
            alice = log_in(context, base, "alice")
            go_ready(alice)
            args = sipp_args("party_phone.xml", local_port=phone_port, calls=1, timeout=240)
            phone = Sipp(tmp_path / "phone", [*args, "-key", "rtp_port", str(alice_party.port)])
            sipps.append(phone)
            deadline = time.monotonic() + 10
            while not _udp_bound(phone_port):
                assert time.monotonic() < deadline, phone.errors()
                time.sleep(0.05)
            caller = party_caller(tmp_path, sip_port, CALLER, caller_party)
            sipps.append(caller)
            (iid,) = wait_for(
                db,
                "SELECT i.id FROM interaction i JOIN contactidentity c ON c.contact_id ="
                " i.contact_id WHERE c.address = ? AND i.state = 'active'",
                CALLER,
            )[0]
            wait_for(
                db,
                "SELECT 1 FROM callleg WHERE interaction_id = ? AND kind = 'agent'"
                " AND answered_at IS NOT NULL",
                iid,
            )
            deadline = time.monotonic() + 20
            while caller_party.peer is None or alice_party.peer is None:  # media both ways
                assert time.monotonic() < deadline, "the hub sent no media to a party"
                time.sleep(0.1)
            time.sleep(1.0)
            for line, pcm in zip(LINES, speech, strict=True):
                (caller_party if line.speaker == "customer" else alice_party).say(pcm)
                time.sleep(line.pause_after)
            alice.goto(f"{base}/console?interaction={iid}")
            card(alice, iid).locator("[data-control=hangup]").click()
            assert caller.wait(30) == 0, caller.errors()
            assert phone.wait(30) == 0, phone.errors()

            # transcribed after hang-up, per speaker
            (transcript_id, status, error, metrics) = wait_for(
                db,
                "SELECT t.id, t.status, t.error, t.metrics FROM transcript t"
                " WHERE t.interaction_id = ? AND t.status IN ('done', 'failed')",
                iid,
                within=300,
            )[0]
            assert status == "done", error
            segments = query(
                db,
                "SELECT speaker, agent_id, start_ms, end_ms, text, original_text"
                " FROM transcriptsegment WHERE transcript_id = ? ORDER BY start_ms",
                transcript_id,
            )
            (alice_id,) = query(
                db,
                "SELECT a.id FROM agent a JOIN user u ON u.id = a.user_id"
                " WHERE u.username = 'alice'",
            )[0]
            # what Whisper heard, and what the hub says of the legs' audio (on a starved
            # machine its media clock drops frames, and then Whisper hears less than was said)
            said = (
                [(s, t) for s, _a, _b, _e, t, _o in segments],
                query(db, "SELECT kind, rtp FROM callleg WHERE interaction_id = ?", iid),
            )
            talk = [s for s in segments if s[0] != "ivr"]
            turns = [k for k, _ in itertools.groupby(s[0] for s in talk)]
            assert turns == [line.speaker for line in LINES], said
            assert all(s[1] == alice_id for s in talk if s[0] == "agent"), said
            # what the hub played before alice answered (hold prompt, music) is never hers
            (answered_ms,) = query(
                db,
                "SELECT CAST((julianday(a.answered_at) - julianday(r.started_at))"
                " * 86400000 AS INTEGER) FROM callleg a JOIN recording r"
                " ON r.interaction_id = a.interaction_id WHERE a.interaction_id = ?"
                " AND a.kind = 'agent' AND a.answered_at IS NOT NULL",
                iid,
            )[0]
            assert all(s[0] != "agent" for s in segments if s[3] < answered_ms), said

            # every personal item redacted in the text, nothing original kept
            text = " ".join(s[4] for s in segments)
            assert not re.search(r"smith|\d", text, re.I), said
            customer = " ".join(s[4] for s in talk if s[0] == "customer")
            assert "[NAME]" in customer, said  # John Smith (and the agent's Dana)
            # Whisper may hear the card's digits as a phone number or a run of digits, and
            # a phone number with a digit dropped as digits: each is still taken out
            assert len(re.findall(r"\[(?:CARD|PHONE|DIGITS)\]", customer)) >= 2, said
            assert "[EMAIL]" in customer, said
            assert all(s[5] is None for s in segments)

            # the audio: only the redacted copy is kept; silence over what was silenced,
            # speech elsewhere
            ((path,),) = query(db, "SELECT path FROM recording WHERE interaction_id = ?", iid)
            assert path.endswith(".redacted.wav")
            assert not list((var / "recordings").glob("*[0-9].wav"))  # the original is gone
            with wave.open(str(var / path)) as wav:
                pcm = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
            silenced = json.loads(metrics)["redaction"]["silenced"]
            assert len([s for s in silenced if s["channel"] == 0]) >= 3, silenced
            for span in silenced:
                assert rms(pcm, span["channel"], span["start_ms"], span["end_ms"]) == 0.0
            update = [s for s in talk if "update my car" in s[4].lower()]
            assert update, said
            assert rms(pcm, 0, update[0][2], update[0][3]) > 300
            for s in talk:
                if s[0] == "agent":
                    assert rms(pcm, 1, s[2], s[3]) > 300, s

            # indexed and categorized: QA finds it by what the customer said, not the agent
            wait_for(
                db,
                "SELECT 1 FROM interactioncategory ic JOIN category c ON c.id = ic.category_id"
                " WHERE ic.interaction_id = ? AND c.name = 'Card update'",
                iid,
            )
            qa = http_login(stack, base, "quinn")
            phrase = urllib.parse.quote("update NEAR/3 car*")
            found = qa.get(f"/qa?q={phrase}&speaker=customer").text
            assert f"/qa/interactions/{iid}?" in found
            assert f"/qa/interactions/{iid}?" not in qa.get(f"/qa?q={phrase}&speaker=agent").text
            assert f"/qa/interactions/{iid}?" not in qa.get("/qa?q=4111").text

            # a form that answers itself from the category and a metric; QA overrides one
            page = qa.get(f"/qa/interactions/{iid}/evaluate").text
            assert page.count("auto: yes") == 2, page
            form_id = re.search(r'name="form_id" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
            sent = post(
                qa,
                f"/qa/interactions/{iid}/evaluations",
                form_id=form_id,
                q_card="yes",
                q_pace="no",
            )
            assert sent.status_code == 303, sent.text[:500]
            evaluation = sent.headers["location"]
            ((answers,),) = query(
                db, "SELECT answers FROM evaluation WHERE interaction_id = ?", iid
            )
            answers = json.loads(answers)
            assert answers["pace"] == {"value": "no", "auto": "yes", "overridden": True}
            assert answers["card"]["overridden"] is False

            # alice sees it and disputes it
            agent = http_login(stack, base, "alice")
            assert evaluation in agent.get("/qa/my-evaluations").text
            post(agent, f"{evaluation}/respond", action="dispute", reason="The pauses were holds.")
            assert query(db, "SELECT status FROM evaluation WHERE interaction_id = ?", iid) == [
                ("disputed",)
            ]
        finally:
            for sipp in sipps:
                sipp.stop()
            caller_party.close()
            alice_party.close()
            context.close()
