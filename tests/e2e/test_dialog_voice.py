"""A dialog by voice, in Chromium against a real hub with its SIP endpoint and speech engines:

- recorded prompts: an admin imports a bilingual dialog whose Spanish prompt has no text,
  sees it named missing, uploads a text file renamed .wav (refused, with the reason), then a
  stereo 44.1 kHz tone (converted to 8 kHz mono), plays it in the page, publishes (the
  recording counts as the Spanish prompt), and a SIPp caller on the phone inbox hears the
  1 kHz tone where the voice would have spoken; the deletion brings the problem back, and
  both changes are in the audit log;
- the simulator's voice mode: the menu's audio is real speech (faster-whisper reads it
  back), a keypad key selects Billing, and a spoken answer made by Piper and uploaded as a
  WAV is recognized and routes to Billing too.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.channels.voice.helpers import level_at
from tests.e2e.hub_process import hub_server, voice_env
from tests.e2e.rtp_party import RtpParty, until_hears
from tests.e2e.test_call_controls import party_caller
from tests.e2e.test_console_browser import log_in
from tests.e2e.test_voice_calls import query, wait_for
from tests.support import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.sipp, pytest.mark.slow]

TIMEOUT_MS = 30_000  # the speech engines load in the background after the hub starts
TONE_HZ = 1000.0
BILINGUAL = """\
dialog: tone_line
description: A line whose Spanish greeting exists only as a recording.
languages: [es, en]
start: main
nodes:
  main:
    type: menu
    prompt: {en: "For billing, press 1."}
    timeout_s: 3
    options:
      - digit: "1"
        next: bye
    no_input: {retries: 0, fallback: bye}
    no_match: {retries: 0, fallback: bye}
  bye:
    type: hangup
    prompt: {en: "Goodbye.", es: "Adiós."}
"""


@pytest.fixture(scope="module")
def voice_hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[dict]:
    """One hub for the module, SIP and the IVR's engines on."""
    require_tool("sipp")
    var = tmp_path_factory.mktemp("dialog-voice") / "var"
    env = voice_env()
    with hub_server(var, seeded_db, HUB_IVR_ENABLED="1", **env) as (base, _process):
        yield {"base": base, "sip_port": int(env["HUB_VOICE_BIND_PORT"]), "db": var / "hub.sqlite3"}


def _admin_page(chromium, base: str):
    context = chromium.new_context()
    return context, log_in(context, base, "admin", TIMEOUT_MS)


def tone_wav(rate: int, channels: int, seconds: float) -> bytes:
    from speech.audio import Audio, wav_bytes

    t = np.arange(int(rate * seconds)) / rate
    wave = np.sin(2 * np.pi * TONE_HZ * t) * 32767
    left, right = (wave * 0.6).astype(np.int16), (wave * 0.4).astype(np.int16)
    samples = np.stack([left, right], axis=1) if channels == 2 else left
    return wav_bytes(Audio(samples, rate))


def test_a_recorded_prompt_is_checked_converted_and_heard_by_a_caller(
    voice_hub: dict, chromium, tmp_path: Path
) -> None:
    from speech.audio import read_wav

    base, db = voice_hub["base"], voice_hub["db"]
    context, page = _admin_page(chromium, base)
    page.on("dialog", lambda d: d.accept())
    source = tmp_path / "tone_line.yaml"
    source.write_text(BILINGUAL)
    page.goto(f"{base}/admin/dialogs")
    page.set_input_files("#import-dialog input[type=file]", str(source))
    page.click("#import-dialog button[type=submit]")
    page.wait_for_url(re.compile(r"/admin/dialogs/\d+$"))
    dialog_id = int(page.url.rsplit("/", 1)[1])
    page.locator("#check-problems").get_by_text("no prompt in 'es'").wait_for()

    # The prompts page: the Spanish greeting has no text, and is named missing.
    page.click("#prompts-link")
    page.locator("#missing-prompts").get_by_text("no prompt in 'es'").wait_for()
    row = page.locator(
        "table.prompts[data-language=es] tr.prompt-row", has_text="For billing, press 1."
    )
    assert "No text in es" in row.inner_text()

    # A text file named .wav is refused with the reason, and nothing is stored.
    fake = tmp_path / "greeting.wav"
    fake.write_text("For billing, press 1.\n" * 10)
    row.locator("input[type=file]").set_input_files(str(fake))
    row.get_by_role("button", name="Upload").click()
    page.locator("#toasts .toast").get_by_text(
        "greeting.wav: not a WAV file this hub can read"
    ).wait_for()
    assert query(db, "SELECT count(*) FROM promptrecording") == [(0,)]

    # A stereo 44.1 kHz tone is converted to telephony audio and stored.
    tone = tmp_path / "tone.wav"
    tone.write_bytes(tone_wav(44100, 2, 2.0))
    row.locator("input[type=file]").set_input_files(str(tone))
    row.get_by_role("button", name="Upload").click()
    page.locator("#saved").get_by_text(
        "converted from 44100 Hz, 2 channels to 8 kHz mono"
    ).wait_for()
    page.locator("#no-missing-prompts").wait_for()
    src = row.locator("audio").get_attribute("src")
    stored = read_wav(page.request.get(f"{base}{src}").body())
    assert (stored.sample_rate, stored.channels) == (8000, 1)
    assert abs(stored.duration - 2.0) < 0.01
    # the page's player plays it (Chromium decodes the stored WAV)
    player = "document.querySelector('tr.prompt-row audio')"
    page.evaluate(f"() => {{ const a = {player}; a.preload = 'auto'; a.load(); }}")
    page.wait_for_function(f"() => {player}.duration > 1.9")

    # With the recording the dialog is complete: version 1 is published.
    page.goto(f"{base}/admin/dialogs/{dialog_id}")
    page.locator("#no-problems").wait_for()
    page.locator("#version-1 button.publish").click()
    page.locator("#saved").get_by_text("Version 1 is published.").wait_for()

    # The phone inbox answers with it: the caller hears the tone, not the Spanish voice.
    with sqlite3.connect(db) as conn:
        (before,) = conn.execute("SELECT dialog_id FROM inbox WHERE kind = 'voice'").fetchone()
        conn.execute("UPDATE inbox SET dialog_id = ? WHERE kind = 'voice'", (dialog_id,))
    number = "+15551237001"
    party = RtpParty(300.0)
    party.talking = False  # a silent caller: the menu times out and the dialog hangs up
    caller = party_caller(tmp_path, voice_hub["sip_port"], number, party)
    try:
        until_hears(party, TONE_HZ, present=True, within=60)
        assert caller.wait(60) == 0, caller.errors()
    finally:
        caller.stop()
        party.close()
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE inbox SET dialog_id = ? WHERE kind = 'voice'", (before,))
    (data,) = wait_for(
        db,
        "SELECT i.data FROM interaction i JOIN contactidentity c ON c.contact_id = i.contact_id"
        " WHERE c.address = ? AND i.data LIKE '%\"ivr\"%'",
        number,
    )[0]
    prompts = json.loads(data)["ivr"]["voice"]["prompts"]
    assert prompts[0]["text"] == "For billing, press 1." and prompts[0]["recorded"] == "es"
    assert "recorded" not in prompts[1]  # "Adiós." has a text: spoken by the voice

    # The simulator's voice mode plays the recording too, where a caller would hear it.
    page.goto(f"{base}/admin/dialogs/{dialog_id}/simulate?mode=voice")
    greeting = page.locator("#sim-lines .sim-dialog").first
    greeting.get_by_text("For billing, press 1.").wait_for()
    played, _src = _audio_of(page, base, greeting)
    assert abs(played.duration - 2.0) < 0.01 and level_at(played.samples, TONE_HZ) > 5000

    # Deleted: the Spanish prompt is missing again; upload and deletion are audited.
    page.goto(f"{base}/admin/dialogs/{dialog_id}/prompts")
    row.locator("button.delete-recording").click()
    page.locator("#saved").get_by_text("Deleted the recording").wait_for()
    page.locator("#missing-prompts").get_by_text("no prompt in 'es'").wait_for()
    assert "spoken by the voice" in row.inner_text()
    audited = query(
        db,
        "SELECT action, before, after FROM auditentry WHERE entity = 'prompt_recording'"
        " ORDER BY id",
    )
    assert [a for a, _b, _c in audited] == ["upload", "delete"]
    uploaded = json.loads(audited[0][2])
    assert (uploaded["language"], uploaded["text"]) == ("es", "For billing, press 1.")
    assert uploaded["original_format"] == "44100 Hz, 2 channels"
    assert json.loads(audited[1][1])["filename"] == "tone.wav"
    assert query(db, "SELECT count(*) FROM promptrecording") == [(0,)]
    context.close()


def _audio_of(page, base: str, line) -> tuple[object, str]:
    """The WAV a simulator line plays (fetched with the admin's session) and its URL."""
    from speech.audio import read_wav

    src = line.locator("audio.sim-audio").get_attribute("src")
    response = page.request.get(f"{base}{src}")
    assert response.status == 200, response.text()
    return read_wav(response.body()), src


def test_the_simulator_answers_the_menu_by_voice(voice_hub: dict, chromium, tmp_path: Path) -> None:
    from speech.asr import WhisperRecognizer, normalize_phrase
    from speech.audio import write_wav
    from speech.tts import Synthesizer

    base, db = voice_hub["base"], voice_hub["db"]
    (dialog_id,) = query(db, "SELECT id FROM dialog WHERE name = 'demo_phone_menu'")[0]
    context, page = _admin_page(chromium, base)
    page.goto(f"{base}/admin/dialogs/{dialog_id}/simulate?version=1&mode=voice")

    # The greeting comes with its audio: real speech, which the browser loads too.
    menu = page.locator("#sim-lines .sim-dialog").first
    menu.get_by_text("2. Billing").wait_for()
    audio, _src = _audio_of(page, base, menu)
    assert audio.sample_rate == 8000 and audio.duration > 3.0
    heard = normalize_phrase(WhisperRecognizer().transcribe(audio).text)
    assert "general questions" in heard and "billing" in heard, heard
    page.wait_for_function(
        "() => document.querySelector('#sim-lines audio.sim-audio').duration > 3"
    )

    # A key of the keypad selects Billing; the account keyed one key at a time.
    page.click("#sim-keypad button[data-key='2']")
    page.locator("#sim-lines .sim-caller").get_by_text("pressed 2").wait_for()
    question = page.locator("#sim-lines .sim-dialog", has_text="key in your account number")
    question.wait_for()
    said, _ = _audio_of(page, base, question)
    assert "account number" in normalize_phrase(WhisperRecognizer().transcribe(said).text)
    for key in "123456#":
        count = page.locator("#sim-lines .sim-caller").count()
        page.click(f"#sim-keypad button[data-key='{key}']")
        page.locator("#sim-lines .sim-caller").nth(count).wait_for()
    page.locator("#sim-done").wait_for()
    assert "GET /demo/accounts/123456 → 200" in page.inner_text("#sim-lines")
    assert "main → ask_account → lookup_account → billing_queue" in page.inner_text("#sim-done")

    # A spoken answer, made by Piper and uploaded as a WAV, is recognized and routes.
    page.goto(f"{base}/admin/dialogs/{dialog_id}/simulate?version=1&mode=voice")
    page.locator("#sim-lines .sim-dialog").get_by_text("2. Billing").wait_for()
    spoken = tmp_path / "answer.wav"
    write_wav(spoken, Synthesizer().synthesize("Billing, please."))
    page.set_input_files("#sim-speech", str(spoken))
    page.click("#sim-send")
    page.locator("#sim-lines .sim-caller").get_by_text("billing", exact=False).wait_for()
    page.locator("#sim-lines .sim-dialog", has_text="key in your account number").wait_for()
    assert "said “" in page.locator("#sim-lines .sim-caller").first.inner_text()

    # A file that is not audio gets the reason, and the session goes on.
    junk = tmp_path / "answer2.wav"
    junk.write_text("billing")
    page.set_input_files("#sim-speech", str(junk))
    page.click("#sim-send")
    page.locator("#toasts .toast").get_by_text("The spoken answer is not a WAV file").wait_for()

    # A typed answer in voice mode is taken as recognized speech.
    page.goto(f"{base}/admin/dialogs/{dialog_id}/simulate?version=1&mode=voice")
    page.locator("#sim-lines .sim-dialog").get_by_text("2. Billing").wait_for()
    page.fill("#sim-text", "general questions")
    page.click("#sim-send")
    page.locator("#sim-done").wait_for()
    assert "main → general_queue" in page.inner_text("#sim-done")
    context.close()
