"""The demo phone menu answers calls in the running hub: SIPp as the caller's gateway (keys
by RFC 4733, a spoken answer synthesized by Piper and played as RTP), the hub's own demo
account endpoint for the lookup, and the agent's console in Chromium. Proven by what the
caller heard (the recording's right channel, read by faster-whisper), what the database
holds and what the agent sees."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.hub_process import free_sip_port, hub_server, sip_password, voice_env
from tests.e2e.test_console_browser import go_ready, log_in
from tests.e2e.test_voice_calls import (
    PCAPS,
    WAIT_S,
    Sipp,
    interaction_of,
    query,
    recorded_audio,
    register_phone,
    start_phone,
    states_of,
    wait_for,
)
from tests.support import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.sipp, pytest.mark.slow]

DID = "+15550100"


# --------------------------------------------------------------------------- helpers


def rtp_pcap(path: Path, payload: bytes, payload_type: int = 8) -> None:
    """A pcap of RTP packets (20 ms of G.711 each) for SIPp's ``play_pcap_audio``:
    Ethernet, IPv4 and UDP headers around RTP (RFC 3550 §5.1)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for index in range(len(payload) // 160):
        chunk = payload[index * 160 : (index + 1) * 160]
        rtp = struct.pack(
            "!BBHII",
            0x80,
            payload_type | (0x80 if index == 0 else 0),
            1000 + index,
            160 * index,
            0x1234ABCD,
        )
        udp = struct.pack("!HHHH", 40000, 40002, 8 + len(rtp) + len(chunk), 0) + rtp + chunk
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            index,
            0,
            64,
            17,
            0,
            bytes([127, 0, 0, 1]),
            bytes([127, 0, 0, 1]),
        )
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        usec = index * 20_000
        out.append(
            struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame))
        )
        out.append(frame)
    path.write_bytes(b"".join(out))


def spoken_pcap(path: Path, text: str) -> None:
    """``text`` said by Piper, as A-law RTP with silence after it (the caller stops talking)."""
    from speech.audio import resample
    from speech.g711 import alaw_encode
    from speech.tts import Synthesizer

    said = Synthesizer().synthesize(text)
    pcm = resample(said.samples, said.sample_rate, 8000)
    silence = np.zeros(8000 * 2, np.int16)
    rtp_pcap(path, alaw_encode(np.concatenate([np.zeros(1600, np.int16), pcm, silence])))


def ivr_call(tmp: Path, sip_port: int, scenario: str, choice: Path, caller: str) -> Sipp:
    """A caller who answers the menu with ``choice`` (a pcap), then keys 123456#."""
    from tests.e2e.test_voice_calls import sipp_args

    workdir = tmp / f"caller-{caller[-4:]}"
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "choice.pcap").exists():
        (workdir / "choice.pcap").symlink_to(choice)
    return Sipp(
        workdir,
        [
            *sipp_args(scenario, local_port=free_sip_port(), calls=1, timeout=120),
            f"127.0.0.1:{sip_port}",
            "-s",
            DID,
            "-key",
            "caller",
            caller,
        ],
    )


def heard_by_caller(var: Path, db: Path, interaction_id: int) -> str:
    """What the hub said to the caller, read from the recording's right channel."""
    from speech.asr import WhisperRecognizer, normalize_phrase
    from speech.audio import read_wav, split_stereo

    _caller, hub_side = split_stereo(read_wav(recorded_audio(db, var, interaction_id)))
    return normalize_phrase(WhisperRecognizer().transcribe(hub_side).text)


def ivr_data(db: Path, interaction_id: int) -> dict:
    return json.loads(query(db, "SELECT data FROM interaction WHERE id = ?", interaction_id)[0][0])


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ivr_hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[tuple]:
    """One hub for the module, with the IVR on: (base URL, SIP port, database, var dir)."""
    require_tool("sipp")
    var = tmp_path_factory.mktemp("ivr") / "var"
    env = voice_env()
    with hub_server(var, seeded_db, HUB_IVR_ENABLED="1", **env) as (base, _process):
        yield base, int(env["HUB_VOICE_BIND_PORT"]), var / "hub.sqlite3", var


# --------------------------------------------------------------------------- tests


def test_the_demo_account_endpoint_answers_loopback_without_a_login(ivr_hub: tuple) -> None:
    import httpx

    base = ivr_hub[0]
    found = httpx.get(f"{base}/demo/accounts/123456", timeout=5)
    assert found.status_code == 200
    assert found.json()["name"] == "Ada Lovelace"
    assert httpx.get(f"{base}/demo/accounts/000000", timeout=5).status_code == 404


def test_caller_presses_2_keys_an_account_and_the_agent_sees_the_lookup(
    ivr_hub: tuple, chromium, tmp_path: Path
) -> None:
    base, sip_port, db, var = ivr_hub
    number = "+15551239001"
    phone_port = free_sip_port()
    phone = start_phone(tmp_path, phone_port, calls=2)  # rings, then answers the accept
    caller: Sipp | None = None
    context = chromium.new_context()
    try:
        register_phone(tmp_path, sip_port, "1003", sip_password("carol"), phone_port)
        agent = log_in(context, base, "carol")
        go_ready(agent)
        caller = ivr_call(tmp_path, sip_port, "caller_ivr.xml", PCAPS / "dtmf_2833_2.pcap", number)
        offer = agent.locator("#offers .offer", has_text=number)
        offer.wait_for(timeout=WAIT_S * 2000)
        card = offer.inner_text()
        # The offer card: what the caller chose, and what the lookup found.
        assert "pressed 2" in card and "keyed 123456" in card, card
        assert "queued to billing" in card, card
        assert "Ada Lovelace" in card and "Fibre 500" in card and "42.50" in card, card
        interaction_id = interaction_of(db, number, "offered")
        (queue,) = query(
            db,
            "SELECT q.name FROM interaction i JOIN queue q ON q.id = i.queue_id WHERE i.id = ?",
            interaction_id,
        )[0]
        assert queue == "Billing"
        trace = ivr_data(db, interaction_id)["ivr"]
        assert trace["outcome"] == "queued"
        assert trace["nodes"] == ["main", "ask_account", "lookup_account", "billing_queue"]
        assert trace["variables"]["customer"] == "Ada Lovelace"
        assert trace["version"] == {"dialog": "demo_phone_menu", "number": 1}
        # the menu was rendered at start, before this first caller: played from the cache
        assert trace["voice"]["prompts"][0]["cached"] is True

        offer.get_by_role("button", name="Accept").click()
        agent.locator(".conv-head", has_text=number).wait_for()
        # The screen pop: the IVR path and the attached data.
        path = agent.locator(".ivr-path").first
        path.wait_for()
        assert "keyed 123456" in path.inner_text()
        attached = agent.locator("dl.kv", has_text="Ada Lovelace").first
        assert "Fibre 500" in attached.inner_text()
        wait_for(
            db,
            "SELECT id FROM callleg WHERE interaction_id = ? AND kind = 'agent'"
            " AND answered_at IS NOT NULL",
            interaction_id,
        )
        agent.get_by_role("button", name="End conversation").click()
        agent.locator("form.wrapup").wait_for()
        assert caller.wait(30) == 0, caller.errors()
        assert phone.wait(30) == 0, phone.errors()
        assert states_of(db, interaction_id)[:4] == ["self_service", "queued", "offered", "active"]
        # The caller heard the menu and the account question (the recording's right side).
        heard = heard_by_caller(var, db, interaction_id)
        assert "thank you for calling" in heard, heard  # the menu, cut short by the "2"
        assert "account number" in heard, heard
    finally:
        context.close()
        phone.stop()
        if caller is not None:
            caller.stop()


def test_a_spoken_billing_reaches_billing_too(ivr_hub: tuple, tmp_path: Path) -> None:
    _base, sip_port, db, var = ivr_hub
    number = "+15551239002"
    workdir = tmp_path / f"caller-{number[-4:]}"
    workdir.mkdir(parents=True)
    spoken_pcap(workdir / "choice.pcap", "Billing.")
    caller = ivr_call(tmp_path, sip_port, "caller_ivr_leaves.xml", workdir / "choice.pcap", number)
    try:
        interaction_id = interaction_of(db, number, "queued")
        assert caller.wait(60) == 0, caller.errors()
    finally:
        caller.stop()
    interaction_of(db, number, "abandoned")
    data = ivr_data(db, interaction_id)
    trace = data["ivr"]
    assert trace["inputs"][0]["node"] == "main"
    assert trace["inputs"][0]["event"] == "speech"
    assert trace["inputs"][0]["value"]["text"] == "billing"
    assert trace["voice"]["recognitions"][0]["chosen"] == "billing"
    assert trace["nodes"][:3] == ["main", "ask_account", "lookup_account"]
    assert "said “billing”" in trace["summary"]
    assert data["customer"] == "Ada Lovelace" and data["account"] == "123456"
    (queue,) = query(
        db,
        "SELECT q.name FROM interaction i JOIN queue q ON q.id = i.queue_id WHERE i.id = ?",
        interaction_id,
    )[0]
    assert queue == "Billing"
    assert states_of(db, interaction_id)[0:2] == ["self_service", "queued"]
    assert states_of(db, interaction_id)[-1] == "abandoned"
    heard = heard_by_caller(var, db, interaction_id)
    # the menu until the caller talked over it (barge-in), then the account question
    assert "thank you for calling" in heard and "general questions" in heard, heard
    assert trace["voice"]["prompts"][0]["outcome"] == "barge_in"
    assert "account number" in heard, heard


def test_an_inbox_without_a_dialog_queues_the_call_directly(ivr_hub: tuple, tmp_path: Path) -> None:
    """An admin unlinks the Phone inbox's dialog: the next call goes straight to its queue
    (music on hold, no menu) and carries no IVR trace."""
    import sqlite3

    from tests.e2e.test_voice_calls import call

    _base, sip_port, db, _var = ivr_hub
    with sqlite3.connect(db) as conn:
        (dialog_id,) = conn.execute("SELECT dialog_id FROM inbox WHERE kind = 'voice'").fetchone()
        (before,) = conn.execute("SELECT coalesce(max(id), 0) FROM interaction").fetchone()
        conn.execute("UPDATE inbox SET dialog_id = NULL WHERE kind = 'voice'")
    try:
        caller = call(tmp_path, sip_port, "sn:uac_pcap")  # talks, then hangs up
        assert caller.wait(60) == 0, caller.errors()
        (interaction_id,) = wait_for(
            db,
            "SELECT id FROM interaction WHERE id > ? AND channel = 'voice' AND state = 'abandoned'",
            before,
        )[0]
    finally:
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE inbox SET dialog_id = ? WHERE kind = 'voice'", (dialog_id,))
    assert states_of(db, interaction_id) == ["self_service", "queued", "abandoned"]
    assert "ivr" not in ivr_data(db, interaction_id)
