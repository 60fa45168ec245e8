"""The browser softphone through the running hub.

SIPp signals as the caller's gateway; the caller's media is an ``RtpParty`` sending one
tone. The agent takes the call in headless Chromium whose fake microphone plays another
tone from a WAV file: the hub's worker process is the browser's WebRTC peer and bridges
it to the media engine. Each side must hear the other: checked on the caller's RTP and,
in the page, by WebAudio analysis (an AnalyserNode's FFT peak) of the remote track.
"""

from __future__ import annotations

import math
import os
import signal
import struct
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import CHROMIUM_ARGS, fake_mic_args
from tests.e2e.hub_process import free_sip_port, hub_server, voice_env
from tests.e2e.rtp_party import ABSENT, RtpParty, hears_moh
from tests.e2e.test_call_controls import card, close_wrapup, party_caller
from tests.e2e.test_console_browser import go_ready, log_in
from tests.e2e.test_voice_calls import Sipp, query, sipp_args, wait_for
from tests.support import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.sipp]

CALLER_HZ, BROWSER_HZ, SAM_HZ, EXTERNAL_HZ = 1000.0, 1400.0, 2200.0, 2600.0
BROWSER_PRESENT = 600.0

LEVEL_JS = """async (freq) => {
  const stream = window.softphone && window.softphone.remoteStream;
  if (!stream) return null;
  const ac = new AudioContext();
  const analyser = ac.createAnalyser();
  analyser.fftSize = 4096;
  ac.createMediaStreamSource(stream).connect(analyser);
  await new Promise((r) => setTimeout(r, 700));
  const data = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(data);
  const hz = ac.sampleRate / analyser.fftSize;
  const at = Math.round(freq / hz);
  let peak = 1;
  for (let i = 2; i < data.length; i++) if (data[i] > data[peak]) peak = i;
  const near = Math.max(...data.slice(at - 2, at + 3));
  await ac.close();
  return {db: Number.isFinite(near) ? near : -200, peak_hz: peak * hz};
}"""


def until_hears(party: RtpParty, freq: float, *, present: bool, within: float = 20.0) -> None:
    """As ``rtp_party.until_hears``, with a lower bar for "present": Chrome's noise
    suppression (on for agents, against their room) damps a steady test tone to about
    half (level ~950 where a direct party gives ~1,800)."""
    deadline = time.monotonic() + within
    last: float | None = None
    while time.monotonic() < deadline:
        last = party.level(freq)
        if last is not None and (last > BROWSER_PRESENT if present else last < ABSENT):
            return
        time.sleep(0.2)
    what = "hear" if present else "stop hearing"
    raise AssertionError(f"the caller did not {what} {freq:.0f} Hz (level {last})")


def tone_wav(path: Path, freq: float, seconds: float = 10.0, rate: int = 48000) -> Path:
    """A 16-bit mono sine for Chromium's fake microphone (it loops the file)."""
    frames = b"".join(
        struct.pack("<h", int(0.3 * 32767 * math.sin(2 * math.pi * freq * i / rate)))
        for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


def browser_hears(page, freq: float, *, present: bool, within: float = 20.0) -> None:
    """Wait until the remote track carries ``freq`` (or no longer does), by an
    AnalyserNode's FFT in the page: a tone is about -40 dB there, silence below -100."""
    deadline = time.monotonic() + within
    last = None
    while time.monotonic() < deadline:
        last = page.evaluate(LEVEL_JS, freq)
        if last is not None and (last["db"] > -60 if present else last["db"] < -80):
            return
        time.sleep(0.3)
    what = "hear" if present else "stop hearing"
    raise AssertionError(f"the browser did not {what} {freq:.0f} Hz ({last})")


class Hub:
    def __init__(self, base: str, env: dict[str, str], var: Path, pid: int) -> None:
        self.base, self.var, self.pid = base, var, pid
        self.db = var / "hub.sqlite3"
        self.sip_port = int(env["HUB_VOICE_BIND_PORT"])
        self.trunk_port = int(env["HUB_VOICE_TRUNK_PORT"])

    def call(self, tmp: Path, caller: str, party: RtpParty) -> Sipp:
        return party_caller(tmp, self.sip_port, caller, party)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[Hub]:
    require_tool("sipp")
    tmp = tmp_path_factory.mktemp("softphone")
    env = voice_env()
    low = int(env["HUB_VOICE_RTP_PORT_MAX"]) + 2  # the ICE range: beside this hub's RTP
    env |= {
        "HUB_IVR_ENABLED": "0",
        "HUB_VOICE_TRUNK_HOST": "127.0.0.1",  # an agent's external number is called here
        "HUB_VOICE_TRUNK_PORT": str(free_sip_port()),
        "HUB_SOFTPHONE_PORT_MIN": str(low),
        "HUB_SOFTPHONE_PORT_MAX": str(low + 99),
    }
    with hub_server(tmp / "var", seeded_db, **env) as (base, process):
        yield Hub(base, env, tmp / "var", process.pid)


@pytest.fixture(scope="module")
def playwright() -> Iterator[object]:
    require_tool("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


def launch_with_tone(playwright, tmp: Path, freq: float):
    """Chromium whose microphone plays ``freq`` (and grants it without asking)."""
    executable = require_tool("chromium")
    wav = tone_wav(tmp / f"tone-{freq:.0f}.wav", freq)
    return playwright.chromium.launch(executable_path=executable, args=fake_mic_args(wav))


@pytest.fixture(scope="module")
def mic_browser(playwright, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    browser = launch_with_tone(playwright, tmp_path_factory.mktemp("tone"), BROWSER_HZ)
    yield browser
    browser.close()


def connected(page, within: float = 30.0) -> None:
    """The page's peer connection to the hub is up (polled: the CSP forbids eval)."""
    deadline = time.monotonic() + within
    while not page.evaluate("() => !!(window.softphone && window.softphone.connected)"):
        status = page.locator("#softphone .sp-status").inner_text()
        error = page.locator("#softphone .sp-error").inner_text()
        assert time.monotonic() < deadline, f"the softphone did not connect: {status} {error}"
        time.sleep(0.2)


def choose_device(page, device: str) -> None:
    panel = page.locator("#softphone")
    panel.locator("select[name=device]").select_option(device)
    panel.get_by_role("button", name="Save").click()
    page.locator(f"#softphone[data-device={device}]").wait_for()


def browser_accepts(hub: Hub, page, tmp_path: Path, caller: str, party: RtpParty) -> Sipp:
    """The agent on ``page`` takes calls in the browser and is ready; ``caller`` calls and
    the agent accepts in the page; returns the caller's SIPp once the page's peer is up."""
    page.goto(f"{hub.base}/console")
    choose_device(page, "browser")
    go_ready(page)
    caller_sipp = hub.call(tmp_path, caller, party)
    page.locator("#offers .offer[data-channel=voice]").get_by_role("button", name="Accept").click()
    connected(page)
    return caller_sipp


def active_call_of(hub: Hub, extension: str) -> int:
    (iid,) = wait_for(
        hub.db,
        "SELECT i.id FROM interaction i JOIN agent a ON a.id = i.agent_id"
        " WHERE a.extension = ? AND i.state = 'active'",
        extension,
    )[0]
    return iid


def test_an_agent_on_an_external_number_is_called_through_the_trunk(
    hub: Hub, mic_browser, tmp_path: Path
) -> None:
    """carol takes calls on her mobile: the offer makes the hub call it through the trunk;
    picking up accepts, and caller and mobile hear each other."""
    caller = "+15551239300"
    party, mobile = RtpParty(CALLER_HZ), RtpParty(EXTERNAL_HZ)
    context = mic_browser.new_context()
    sipps: list[Sipp] = []
    try:
        carol = log_in(context, hub.base, "carol")
        carol.goto(f"{hub.base}/console")
        panel = carol.locator("#softphone")
        panel.locator("select[name=device]").select_option("external")
        panel.locator("input[name=number]").fill("not a number")
        panel.get_by_role("button", name="Save").click()
        carol.locator("#toasts", has_text="Not a phone number").wait_for()
        panel.locator("input[name=number]").fill("+1 415 555 0188")
        panel.get_by_role("button", name="Save").click()
        carol.locator("#softphone[data-device=external]").wait_for()
        assert "+14155550188" in carol.locator("#softphone .device-name").inner_text()
        assert query(
            hub.db, "SELECT device, device_number FROM agent WHERE extension = '1003'"
        ) == [("external", "+14155550188")]
        go_ready(carol)
        args = sipp_args("party_phone.xml", local_port=hub.trunk_port, calls=1, timeout=240)
        sipps.append(Sipp(tmp_path / "mobile", [*args, "-key", "rtp_port", str(mobile.port)]))
        sipps.append(hub.call(tmp_path, caller, party))
        until_hears(party, EXTERNAL_HZ, present=True)
        until_hears(mobile, CALLER_HZ, present=True)
        iid = active_call_of(hub, "1003")
        carol.goto(f"{hub.base}/console?interaction={iid}")
        card(carol, iid).locator("[data-control=hangup]").click()
        for sipp in sipps:
            assert sipp.wait(30) == 0, sipp.errors()
        close_wrapup(carol, then="offline")
    finally:
        for sipp in sipps:
            sipp.stop()
        party.close()
        mobile.close()
        context.close()


def test_agent_answers_in_the_browser_both_hear_hold_and_hang_up(
    hub: Hub, mic_browser, tmp_path: Path
) -> None:
    caller = "+15551239301"
    party = RtpParty(CALLER_HZ)
    context = mic_browser.new_context(permissions=["microphone"])
    caller_sipp = None
    try:
        agent = log_in(context, hub.base, "alice")
        agent.goto(f"{hub.base}/console")
        # the device is chosen in the console and kept per agent
        assert "your SIP phone" in agent.locator("#softphone .device-name").inner_text()
        choose_device(agent, "browser")
        assert query(hub.db, "SELECT device FROM agent WHERE extension = '1001'") == [("browser",)]
        agent.reload()
        assert agent.locator("#softphone .device-name").inner_text() == "this browser"
        go_ready(agent)

        caller_sipp = hub.call(tmp_path, caller, party)
        # the offer rings in the page (visible; the ring tone plays through WebAudio)
        agent.locator("#softphone .sp-ring").wait_for()
        offer = agent.locator("#offers .offer[data-channel=voice]")
        offer.get_by_role("button", name="Accept").click()
        connected(agent)
        assert agent.locator("#softphone .sp-ring").is_hidden()

        # each side hears the other: the caller's RTP, and the page's remote track
        until_hears(party, BROWSER_HZ, present=True)
        browser_hears(agent, CALLER_HZ, present=True)
        iid = active_call_of(hub, "1001")
        legs = query(
            hub.db,
            "SELECT remote_uri FROM callleg WHERE interaction_id = ? AND kind = 'agent'",
            iid,
        )
        assert legs and legs[0][0].startswith("browser:")

        # a reloaded page negotiates a new peer connection for the same leg (aiortc has no
        # ICE restart); the caller is held meanwhile and taken off hold once it connects
        agent.goto(f"{hub.base}/console?interaction={iid}")
        connected(agent)
        until_hears(party, BROWSER_HZ, present=True)
        browser_hears(agent, CALLER_HZ, present=True)
        held = wait_for(
            hub.db,
            "SELECT kind FROM controlevent WHERE interaction_id = ? AND kind = 'resume'",
            iid,
        )
        assert held == [("resume",)]

        # hold from the call card: the caller hears music, the browser no longer the caller
        box = card(agent, iid)
        box.locator("[data-control=hold]").click()
        box.locator("[data-flag=held]").wait_for()
        hears_moh(party)
        until_hears(party, BROWSER_HZ, present=False)
        browser_hears(agent, CALLER_HZ, present=False)
        box.locator("[data-control=resume]").click()
        box.locator("[data-flag=held]").wait_for(state="detached")
        until_hears(party, BROWSER_HZ, present=True)

        # hang up: the caller gets a BYE, the agent wraps up, the page says so
        box.locator("[data-control=hangup]").click()
        assert caller_sipp.wait(30) == 0, caller_sipp.errors()
        wait_for(hub.db, "SELECT 1 FROM interaction WHERE id = ? AND state = 'wrap_up'", iid)
        agent.locator("#softphone .sp-status", has_text="Call ended").wait_for()
        close_wrapup(agent)
    finally:
        if caller_sipp is not None:
            caller_sipp.stop()
        party.close()
        context.close()


def test_a_refused_microphone_says_what_to_do(hub: Hub, playwright) -> None:
    """Without the fake UI flag and with no permission granted, Chromium refuses."""
    executable = require_tool("chromium")
    args = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream"]
    browser = playwright.chromium.launch(executable_path=executable, args=args)
    try:
        context = browser.new_context()
        page = log_in(context, hub.base, "bob")
        page.goto(f"{hub.base}/console")
        choose_device(page, "browser")
        page.locator("#softphone .sp-check").click()
        error = page.locator("#softphone .sp-error")
        error.wait_for()
        assert "microphone is blocked" in error.inner_text()
        assert "Allow" in error.inner_text()
    finally:
        browser.close()


def test_a_supervisor_listens_whispers_and_barges_from_the_browser(
    hub: Hub, mic_browser, playwright, tmp_path: Path
) -> None:
    """alice takes the call in her browser; sam supervises from his, with another tone."""
    caller = "+15551239302"
    party = RtpParty(CALLER_HZ)
    sam_browser = launch_with_tone(playwright, tmp_path, SAM_HZ)
    context = mic_browser.new_context(permissions=["microphone"])
    caller_sipp = None
    try:
        sam = log_in(sam_browser.new_context(permissions=["microphone"]), hub.base, "sam")
        sam.goto(f"{hub.base}/supervisor/")
        choose_device(sam, "browser")
        alice = log_in(context, hub.base, "alice")
        caller_sipp = browser_accepts(hub, alice, tmp_path, caller, party)
        until_hears(party, BROWSER_HZ, present=True)
        iid = active_call_of(hub, "1001")

        # listen: sam's browser hears the caller and alice; nobody hears sam
        row = sam.locator(f"#call-row-{iid}")
        row.locator("[data-mode=listen]").click()
        sam.locator(f"#call-row-{iid} .sup-mode", has_text="listen").wait_for()
        connected(sam)
        browser_hears(sam, CALLER_HZ, present=True)
        browser_hears(sam, BROWSER_HZ, present=True)
        until_hears(party, SAM_HZ, present=False)
        browser_hears(alice, SAM_HZ, present=False)

        # whisper: alice hears sam, the caller does not
        sam.locator(f"#call-row-{iid} [data-mode=whisper]").click()
        sam.locator(f"#call-row-{iid} .sup-mode", has_text="whisper").wait_for()
        browser_hears(alice, SAM_HZ, present=True)
        until_hears(party, SAM_HZ, present=False)

        # barge: the caller hears sam too
        sam.locator(f"#call-row-{iid} [data-mode=barge]").click()
        sam.locator(f"#call-row-{iid} .sup-mode", has_text="barge").wait_for()
        until_hears(party, SAM_HZ, present=True)

        card(alice, iid).locator("[data-control=hangup]").click()
        assert caller_sipp.wait(30) == 0, caller_sipp.errors()
        sam.locator("#softphone .sp-status", has_text="Call ended").wait_for()
        close_wrapup(alice)
    finally:
        if caller_sipp is not None:
            caller_sipp.stop()
        party.close()
        context.close()
        sam_browser.close()


def test_an_insecure_origin_says_to_use_https(hub: Hub, playwright) -> None:
    """Reached by a name other than localhost over plain HTTP, the page has no secure
    context, so no microphone: the panel says how to fix it."""
    executable = require_tool("chromium")
    port = hub.base.rsplit(":", 1)[1]
    args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP hub.example 127.0.0.1"]
    browser = playwright.chromium.launch(executable_path=executable, args=args)
    try:
        page = log_in(browser.new_context(), f"http://hub.example:{port}", "carol")
        page.goto(f"http://hub.example:{port}/console")
        choose_device(page, "browser")
        error = page.locator("#softphone .sp-error")
        error.wait_for()
        assert "not a secure origin" in error.inner_text()
        assert "HTTPS" in error.inner_text()
    finally:
        browser.close()


def test_a_blind_transfer_moves_the_call_to_a_second_agents_browser(
    hub: Hub, mic_browser, tmp_path: Path
) -> None:
    caller = "+15551239303"
    party = RtpParty(CALLER_HZ)
    context = mic_browser.new_context(permissions=["microphone"])
    bob_context = mic_browser.new_context(permissions=["microphone"])
    caller_sipp = None
    try:
        alice = log_in(context, hub.base, "alice")
        caller_sipp = browser_accepts(hub, alice, tmp_path, caller, party)
        iid = active_call_of(hub, "1001")
        until_hears(party, BROWSER_HZ, present=True)

        bob = log_in(bob_context, hub.base, "bob")
        bob.goto(f"{hub.base}/console")
        choose_device(bob, "browser")
        go_ready(bob)
        # alice's transfer list was drawn before bob was ready: she opens the call again
        # (her page negotiates its leg again, as after any reload)
        alice.goto(f"{hub.base}/console?interaction={iid}")
        connected(alice)
        alice.locator(f"#actions-{iid} summary").get_by_text("Transfer", exact=True).click()
        form = alice.locator(f"#actions-{iid} form", has=alice.locator("select[name=target]"))
        form.locator("select[name=target]").select_option(label="Bob Okafor (ready)")
        form.get_by_role("button", name="Transfer").click()
        # alice's browser leg ends; the offer rings in bob's page and he accepts it there
        alice.locator("#softphone .sp-status", has_text="Call ended").wait_for()
        bob.locator("#softphone .sp-ring").wait_for()
        bob.locator("#offers .offer[data-channel=voice]").get_by_role(
            "button", name="Accept"
        ).click()
        connected(bob)
        browser_hears(bob, CALLER_HZ, present=True)
        until_hears(party, BROWSER_HZ, present=True)
        wait_for(
            hub.db,
            "SELECT 1 FROM interaction i JOIN agent a ON a.id = i.agent_id"
            " WHERE i.id = ? AND a.extension = '1002' AND i.state = 'active'",
            iid,
        )
        card(bob, iid).locator("[data-control=hangup]").click()
        assert caller_sipp.wait(30) == 0, caller_sipp.errors()
        close_wrapup(bob, then="offline")
    finally:
        if caller_sipp is not None:
            caller_sipp.stop()
        party.close()
        context.close()
        bob_context.close()


def softphone_workers(hub: Hub) -> list[int]:
    """The pids of the hub's softphone worker processes."""
    import psutil

    return [
        child.pid
        for child in psutil.Process(hub.pid).children(recursive=True)
        if "hub.softphone.worker" in " ".join(child.cmdline())
    ]


def test_a_killed_worker_is_started_again_and_the_browser_reconnects(
    hub: Hub, mic_browser, tmp_path: Path
) -> None:
    """The softphone worker dies mid-call (killed, as a crash would end it): the page loses
    its peer, negotiates a new one, the hub starts a new worker for it and points the
    engine at the new bridge, and both sides hear each other again."""
    caller = "+15551239304"
    party = RtpParty(CALLER_HZ)
    context = mic_browser.new_context(permissions=["microphone"])
    caller_sipp = None
    try:
        agent = log_in(context, hub.base, "alice")
        caller_sipp = browser_accepts(hub, agent, tmp_path, caller, party)
        until_hears(party, BROWSER_HZ, present=True)
        (old,) = softphone_workers(hub)

        os.kill(old, signal.SIGKILL)
        until_hears(party, BROWSER_HZ, present=False)  # the bridge went with the worker
        until_hears(party, BROWSER_HZ, present=True, within=40.0)
        browser_hears(agent, CALLER_HZ, present=True)
        assert softphone_workers(hub) not in ([], [old])
        iid = active_call_of(hub, "1001")
        agent.goto(f"{hub.base}/console?interaction={iid}")
        card(agent, iid).locator("[data-control=hangup]").click()
        assert caller_sipp.wait(30) == 0, caller_sipp.errors()
        close_wrapup(agent)
    finally:
        if caller_sipp is not None:
            caller_sipp.stop()
        party.close()
        context.close()
