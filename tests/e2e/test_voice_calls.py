"""Phone calls through the running hub: SIPp as the caller's gateway and as the agent's
registered desk phone, Chromium driving the console, proven by what the database holds,
the stereo recording, and the recording played back with a range request."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.hub_process import (
    ROOT,
    free_port,
    free_sip_port,
    hub_server,
    sip_password,
    voice_env,
)
from tests.e2e.test_console_browser import go_ready, log_in
from tests.ports import media_ports
from tests.support import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.sipp]

SIPP_DIR = Path(__file__).parent / "sipp"
PCAPS = Path("/usr/share/sip-tester")
DID = "+15550100"
CALLER = "+15551230001"
WAIT_S = 30.0


# --------------------------------------------------------------------------- helpers


class Sipp:
    """One SIPp process (a caller, or the agent's phone) in a folder with the pcaps."""

    def __init__(self, workdir: Path, args: list[str]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        if not (workdir / "pcap").exists():
            (workdir / "pcap").symlink_to(PCAPS)
        self.workdir = workdir
        self.log = open(workdir / "sipp.out", "wb")  # noqa: SIM115 (closed in wait)
        self.process = subprocess.Popen(
            ["sipp", *args, "-nostdin", "-trace_err", "-timeout_error"],
            cwd=workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def logged(self, pattern: str) -> list[str]:
        """What ``pattern``'s group matched in the scenario's own log lines (``-trace_logs``)."""
        text = "".join(p.read_text() for p in self.workdir.glob("*_logs.log"))
        return re.findall(pattern, text)

    def errors(self) -> str:
        logs = sorted(self.workdir.glob("*errors.log"))
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in logs)


def sipp_args(scenario: str, *, local_port: int, calls: int, timeout: int) -> list[str]:
    source = (
        ["-sn", scenario[3:]] if scenario.startswith("sn:") else ["-sf", str(SIPP_DIR / scenario)]
    )
    return [
        *source,
        "-i",
        "127.0.0.1",
        "-p",
        str(local_port),
        "-mp",
        str(media_ports()),
        "-m",
        str(calls),
        "-timeout",
        f"{timeout}s",
    ]


def register_phone(tmp: Path, sip_port: int, ext: str, password: str, phone_port: int) -> None:
    reg = Sipp(
        tmp / f"register-{ext}",
        [
            *sipp_args("agent_register.xml", local_port=free_sip_port(), calls=1, timeout=15),
            f"127.0.0.1:{sip_port}",
            "-key",
            "ext",
            ext,
            "-key",
            "phone_port",
            str(phone_port),
            "-au",
            ext,
            "-ap",
            password,
        ],
    )
    assert reg.wait(30) == 0, reg.errors()


def start_phone(tmp: Path, phone_port: int, calls: int, scenario: str = "agent_phone.xml") -> Sipp:
    phone = Sipp(
        tmp / "phone", sipp_args(scenario, local_port=phone_port, calls=calls, timeout=120)
    )
    deadline = time.monotonic() + 10
    while not _udp_bound(phone_port):
        assert phone.process.poll() is None, phone.errors()
        assert time.monotonic() < deadline, "the phone's SIPp did not start"
        time.sleep(0.05)
    return phone


def _udp_bound(port: int) -> bool:
    with open("/proc/net/udp") as table:
        return any(int(line.split()[1].rsplit(":", 1)[1], 16) == port for line in list(table)[1:])


def call(
    tmp: Path,
    sip_port: int,
    scenario: str,
    *,
    caller: str = CALLER,
    dnis: str = DID,
    hang_up_after_ms: int | None = None,
) -> Sipp:
    """One SIPp call to the hub; ``hang_up_after_ms`` shortens caller_hangs_up.xml's wait
    before its BYE (20 s in the file)."""
    workdir = tmp / f"caller-{uuid.uuid4().hex[:6]}"
    if hang_up_after_ms is not None:
        assert scenario == "caller_hangs_up.xml"
        workdir.mkdir(parents=True)
        xml = (SIPP_DIR / scenario).read_text()
        assert xml.count('<pause milliseconds="20000"/>') == 1
        scenario = str(workdir / scenario)  # absolute: sipp_args' SIPP_DIR / it is this path
        Path(scenario).write_text(
            xml.replace(
                '<pause milliseconds="20000"/>', f'<pause milliseconds="{hang_up_after_ms}"/>'
            )
        )
    return Sipp(
        workdir,
        [
            *sipp_args(scenario, local_port=free_sip_port(), calls=1, timeout=90),
            f"127.0.0.1:{sip_port}",
            "-s",
            dnis,
            "-key",
            "caller",
            caller,
        ],
    )


def query(db: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def wait_for(db: Path, sql: str, *params: object, within: float = WAIT_S) -> list[tuple]:
    """Poll the hub's database until ``sql`` returns rows (bounded, not a timing check)."""
    deadline = time.monotonic() + within
    while True:
        rows = query(db, sql, *params)
        if rows:
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing matched within {within} s: {sql} {params}")
        time.sleep(0.2)


def sip_request(port: int, text: str, transport: str = "udp") -> str:
    """Send one SIP request and return the first final (>= 200) response's status line."""
    data = text.replace("\n", "\r\n").encode()
    if transport == "tcp":
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            local = sock.getsockname()[1]
            sock.sendall(data.replace(b"LOCALPORT", str(local).encode()))
            buf = b""
            while b"\r\n\r\n" not in buf or buf.startswith(b"SIP/2.0 1"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                buf += chunk
                if buf.startswith(b"SIP/2.0 1") and b"\r\n\r\n" in buf:
                    buf = buf.split(b"\r\n\r\n", 1)[1]
            return buf.split(b"\r\n", 1)[0].decode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        local = sock.getsockname()[1]
        sock.sendto(data.replace(b"LOCALPORT", str(local).encode()), ("127.0.0.1", port))
        while True:
            reply = sock.recv(65535).split(b"\r\n", 1)[0].decode()
            if not reply.startswith("SIP/2.0 1"):
                return reply


def options(port: int, transport: str) -> str:
    return sip_request(
        port,
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\n"
        f"Via: SIP/2.0/{transport.upper()} 127.0.0.1:LOCALPORT;branch=z9hG4bK{uuid.uuid4().hex}\n"
        f"From: <sip:probe@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\n"
        f"To: <sip:127.0.0.1:{port}>\n"
        f"Call-ID: {uuid.uuid4().hex}@127.0.0.1\n"
        "CSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n",
        transport,
    )


def recorded_audio(db: Path, var: Path, interaction_id: int) -> bytes:
    """The interaction's complete recording, as the hub holds it at this moment.

    Transcription replaces the file by its redacted copy whenever it finishes: the new path
    is committed first, then the original deleted. A file gone between the query and the
    read therefore means the row has a new path, which the next query returns."""
    deadline = time.monotonic() + WAIT_S
    while True:
        (path,) = wait_for(
            db,
            "SELECT path FROM recording WHERE interaction_id = ? AND complete = 1",
            interaction_id,
        )[0]
        try:
            return (var / path).read_bytes()
        except FileNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def channel_rms(audio: bytes) -> tuple[float, float]:
    """The RMS of each side of a recording (the caller left, the hub's side right)."""
    with wave.open(io.BytesIO(audio)) as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == 8000
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    left, right = pcm[:, 0].astype(np.float64), pcm[:, 1].astype(np.float64)
    return float(np.sqrt(np.mean(left**2))), float(np.sqrt(np.mean(right**2)))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def voice_hub(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[tuple]:
    """One hub process for the module: (base URL, SIP port, database path, var dir)."""
    require_tool("sipp")
    var = tmp_path_factory.mktemp("voice") / "var"
    env = voice_env()
    with hub_server(var, seeded_db, **env) as (base, _process):
        yield base, int(env["HUB_VOICE_BIND_PORT"]), var / "hub.sqlite3", var


# --------------------------------------------------------------------------- tests


def test_contacthub_run_answers_sip_options_on_udp_and_tcp(tmp_path: Path) -> None:
    """`contacthub run` with nothing but a var dir and free ports opens its SIP endpoint."""
    sip_port, http_port = free_sip_port(), free_port()
    env = {
        **os.environ,
        "HUB_VAR_DIR": str(tmp_path / "var"),
        "HUB_PORT": str(http_port),
        "HUB_VOICE_BIND_PORT": str(sip_port),
        **{k: v for k, v in voice_env().items() if k != "HUB_VOICE_BIND_PORT"},
    }
    env.pop("HUB_DATABASE_URL", None)
    env.pop("HUB_REDIS_URL", None)
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-c", "from hub.cli import main; main()", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        import httpx

        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "contacthub run did not start"
            time.sleep(0.3)
        assert options(sip_port, "udp").startswith("SIP/2.0 200")
        assert options(sip_port, "tcp").startswith("SIP/2.0 200")
        printed = (tmp_path / "run.log").read_text()
        logins = json.loads((tmp_path / "var" / "demo-logins.json").read_text())
        alice = next(login for login in logins if login["username"] == "alice")
        # the SIP login is printed beside the web login
        assert f"SIP {alice['sip_extension']} / {alice['sip_password']}" in printed
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_unknown_dnis_gets_404(voice_hub: tuple) -> None:
    _base, sip_port, db, _var = voice_hub
    before = query(db, "SELECT count(*) FROM interaction WHERE channel = 'voice'")[0][0]
    status = invite(sip_port, "+15559999999")
    assert status.startswith("SIP/2.0 404")
    after = query(db, "SELECT count(*) FROM interaction WHERE channel = 'voice'")[0][0]
    assert after == before  # nothing was stored for a number nobody answers


def test_caller_who_hangs_up_while_queued_is_abandoned(voice_hub: tuple, tmp_path: Path) -> None:
    """Nobody is ready: the caller hears music on hold, then hangs up (uac_pcap's BYE)."""
    _base, sip_port, db, var = voice_hub
    caller = call(tmp_path, sip_port, "sn:uac_pcap", caller="+15551230002")
    assert caller.wait(60) == 0, caller.errors()
    rows = wait_for(
        db,
        "SELECT i.id, i.closed_at FROM interaction i JOIN callleg l ON l.interaction_id = i.id"
        " WHERE i.state = 'abandoned' AND l.kind = 'customer' AND l.ended_at IS NOT NULL"
        " AND i.channel = 'voice'",
    )
    interaction_id, closed_at = rows[-1]
    assert closed_at is not None
    states = [
        s
        for (s,) in query(
            db,
            "SELECT to_state FROM interactionevent WHERE interaction_id = ? ORDER BY id",
            interaction_id,
        )
    ]
    assert states == ["self_service", "queued", "abandoned"]
    # the caller heard something while waiting: music on hold on the recording's right side
    left, right = channel_rms(recorded_audio(db, var, interaction_id))
    assert left > 100 and right > 100


def test_call_offered_accepted_in_console_bridged_recorded_and_played_back(
    voice_hub: tuple, chromium, tmp_path: Path
) -> None:
    base, sip_port, db, var = voice_hub
    phone_port = free_sip_port()
    # The first INVITE rings until the console accepts (then CANCEL, 487); the second,
    # with answer-after=0, is answered at once.
    phone = start_phone(tmp_path, phone_port, calls=2)
    caller: Sipp | None = None
    context = chromium.new_context()
    try:
        register_phone(tmp_path, sip_port, "1001", sip_password("alice"), phone_port)
        agent = log_in(context, base, "alice")
        go_ready(agent)
        caller = call(tmp_path, sip_port, "caller.xml")

        offer = agent.locator("#offers .offer", has_text=CALLER)
        offer.wait_for(timeout=WAIT_S * 1000)
        assert "voice" in offer.inner_text()
        (interaction_id,) = wait_for(
            db,
            "SELECT i.id FROM interaction i JOIN contactidentity c ON c.contact_id = i.contact_id"
            " WHERE c.address = ? AND i.state = 'offered'",
            CALLER,
        )[0]
        # the agent's phone is ringing (an agent leg was started for the offer)
        offer.get_by_role("button", name="Accept").click()
        agent.locator(".conv-head", has_text=CALLER).wait_for()

        # accepting made the hub call the phone again, which answered: caller and agent talk
        wait_for(
            db,
            "SELECT id FROM callleg WHERE interaction_id = ? AND kind = 'agent'"
            " AND answered_at IS NOT NULL",
            interaction_id,
        )
        time.sleep(2)  # let them talk, so the recording holds the conversation

        agent.get_by_role("button", name="End conversation").click()
        agent.locator("form.wrapup").wait_for()
        assert caller.wait(30) == 0, caller.errors()  # the hub hung up on the caller
        assert phone.wait(30) == 0, phone.errors()  # and on the agent's phone
        wait_for(  # the hub closes the legs right after its BYEs
            db,
            "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM callleg"
            " WHERE interaction_id = ? AND ended_at IS NULL)",
            interaction_id,
        )
        legs = query(
            db,
            "SELECT kind, sip_call_id, answered_at, ended_at, end_reason, rtp, agent_id"
            " FROM callleg WHERE interaction_id = ? ORDER BY id",
            interaction_id,
        )
        assert [leg[0] for leg in legs] == ["customer", "agent", "agent"]
        customer, rung, answered = legs
        assert customer[2] and customer[3] and json.loads(customer[5])["packets_received"] > 0
        assert rung[2] is None and rung[3] is not None  # rang, cancelled by the accept
        assert answered[2] and answered[3] and json.loads(answered[5])["packets_received"] > 0
        # the audio the hub itself lost (its media clock stalled, a burst overflowed) is kept
        # beside the network's loss, so a recording with a gap says why
        assert {"packets_lost", "frames_late", "frames_dropped"} <= json.loads(customer[5]).keys()
        assert len({leg[1] for leg in legs}) == 3  # three SIP dialogs
        states = [
            s
            for (s,) in query(
                db,
                "SELECT to_state FROM interactionevent WHERE interaction_id = ? ORDER BY id",
                interaction_id,
            )
        ]
        assert states == ["self_service", "queued", "offered", "active", "wrap_up"]

        recording_id, path, duration, legs_json = wait_for(
            db,
            "SELECT id, path, duration_seconds, legs FROM recording"
            " WHERE interaction_id = ? AND complete = 1",
            interaction_id,
        )[0]
        # over 2 s were talked; a media clock stalled by a starved CPU re-anchors instead of
        # bursting (channels/voice/media_engine.py), so the file may hold a little less
        assert duration > 1
        assert len(json.loads(legs_json)) == 2  # the caller and the agent who answered
        audio = recorded_audio(db, var, interaction_id)
        left, right = channel_rms(audio)
        assert left > 100 and right > 100  # the caller on the left, the hub's side right

        # The agent plays the recording in the browser, seeking with a range request.
        agent.goto(f"{base}/console?interaction={interaction_id}")
        agent.locator(f"#recording-{recording_id} audio").wait_for(state="attached")
        size = len(audio)  # the redacted copy, once written, is the same size
        part = agent.request.get(
            f"{base}/recordings/{recording_id}", headers={"Range": "bytes=0-99"}
        )
        assert part.status == 206
        assert part.headers["content-range"] == f"bytes 0-99/{size}"
        assert part.body()[:4] == b"RIFF" and len(part.body()) == 100
        tail = agent.request.get(
            f"{base}/recordings/{recording_id}", headers={"Range": f"bytes={size - 10}-"}
        )
        assert tail.status == 206 and len(tail.body()) == 10
        assert (
            query(
                db,
                "SELECT count(*) FROM auditentry"
                " WHERE action = 'recording.download' AND entity_id = ?",
                str(recording_id),
            )[0][0]
            >= 2
        )
        # another agent may not play it; QA may
        other = chromium.new_context()
        bob = log_in(other, base, "bob")
        assert bob.request.get(f"{base}/recordings/{recording_id}").status == 403
        other.close()
        other = chromium.new_context()
        quinn = log_in(other, base, "quinn")
        assert quinn.request.get(f"{base}/recordings/{recording_id}").status == 200
        other.close()

        # after hang-up the running hub transcribed the call in a worker process of its own,
        # and (by the inbox's default policy) kept only the redacted copy of the audio
        status, error = wait_for(
            db,
            "SELECT status, error FROM transcript WHERE recording_id = ?"
            " AND status IN ('done', 'failed')",
            recording_id,
            within=300,
        )[0]
        assert status == "done", error
        ((redacted,),) = query(db, "SELECT path FROM recording WHERE id = ?", recording_id)
        assert redacted.endswith(".redacted.wav") and (var / redacted).is_file()
        assert not (var / path).exists()
        agent.goto(f"{base}/console?interaction={interaction_id}")
        agent.locator(f'#transcript-{recording_id}[data-status="done"]').wait_for()
    finally:
        context.close()
        phone.stop()
        if caller is not None:
            caller.stop()


def interaction_of(db: Path, caller: str, state: str) -> int:
    return wait_for(
        db,
        "SELECT i.id FROM interaction i JOIN contactidentity c ON c.contact_id = i.contact_id"
        " WHERE c.address = ? AND i.state = ? ORDER BY i.id DESC",
        caller,
        state,
    )[0][0]


def states_of(db: Path, interaction_id: int) -> list[str]:
    return [
        s
        for (s,) in query(
            db,
            "SELECT to_state FROM interactionevent WHERE interaction_id = ? ORDER BY id",
            interaction_id,
        )
    ]


def test_picking_up_the_phone_accepts_the_offer(voice_hub: tuple, chromium, tmp_path: Path) -> None:
    base, sip_port, db, _var = voice_hub
    number = "+15551230003"
    phone_port = free_sip_port()
    phone = start_phone(tmp_path, phone_port, calls=1, scenario="agent_pickup.xml")
    caller: Sipp | None = None
    context = chromium.new_context()
    try:
        register_phone(tmp_path, sip_port, "1002", sip_password("bob"), phone_port)
        agent = log_in(context, base, "bob")
        go_ready(agent)
        caller = call(tmp_path, sip_port, "caller.xml", caller=number)
        # Bob lifts the handset after 1 s of ringing instead of clicking: the offer is taken,
        # no click needed. (Whether the card showed in that second depends on the machine's
        # load; the offer card itself is checked by the tests that click it.)
        interaction_id = interaction_of(db, number, "active")
        agent.locator("#offers .offer", has_text=number).wait_for(state="detached")
        wait_for(
            db,
            "SELECT id FROM callleg WHERE interaction_id = ? AND kind = 'agent'"
            " AND answered_at IS NOT NULL",
            interaction_id,
        )
        assert states_of(db, interaction_id) == ["self_service", "queued", "offered", "active"]
        agent.goto(f"{base}/console?interaction={interaction_id}")
        agent.get_by_role("button", name="End conversation").click()
        agent.locator("form.wrapup").wait_for()
        assert caller.wait(30) == 0, caller.errors()
        assert phone.wait(30) == 0, phone.errors()
        assert query(db, "SELECT state FROM interaction WHERE id = ?", interaction_id) == [
            ("wrap_up",)
        ]
    finally:
        context.close()
        phone.stop()
        if caller is not None:
            caller.stop()


@dataclass
class Ringing:
    """A caller's call offered to an agent whose SIP phone rings (and is never picked up)."""

    agent: Any  # the agent's console page
    offer: Any  # the offer card
    interaction_id: int
    phone: Sipp
    caller: Sipp


@contextmanager
def ringing_offer(
    tmp: Path,
    chromium,
    base: str,
    sip_port: int,
    db: Path,
    username: str,
    ext: str,
    number: str,
    hang_up_after_ms: int = 11_000,
) -> Iterator[Ringing]:
    """``username`` registers a phone that rings until CANCELled, goes Ready, and a caller
    who hangs up ``hang_up_after_ms`` + 1 s after the answer is offered to them (the offer
    rings within a second or two of the answer)."""
    require_tool("sipp")
    phone_port = free_sip_port()
    phone = start_phone(tmp, phone_port, calls=1)
    caller: Sipp | None = None
    context = chromium.new_context()
    try:
        register_phone(tmp, sip_port, ext, sip_password(username), phone_port)
        agent = log_in(context, base, username)
        go_ready(agent)
        caller = call(
            tmp, sip_port, "caller_hangs_up.xml", caller=number, hang_up_after_ms=hang_up_after_ms
        )
        offer = agent.locator("#offers .offer", has_text=number)
        offer.wait_for(timeout=WAIT_S * 1000)
        yield Ringing(agent, offer, interaction_of(db, number, "offered"), phone, caller)
    finally:
        context.close()
        phone.stop()
        if caller is not None:
            caller.stop()


def assert_agent_leg_unanswered(db: Path, interaction_id: int) -> None:
    """The hub writes the agent's leg once its ringing has ended; nobody answered it."""
    (leg,) = wait_for(
        db,
        "SELECT answered_at FROM callleg"
        " WHERE interaction_id = ? AND kind = 'agent' AND ended_at IS NOT NULL",
        interaction_id,
    )
    assert leg[0] is None


REOFFERED_THEN_ABANDONED = ["self_service", "queued", "offered", "queued", "abandoned"]


def test_a_rejected_offer_stops_the_phone_and_the_call_waits_again(
    voice_hub: tuple, chromium, tmp_path: Path
) -> None:
    base, sip_port, db, _var = voice_hub
    number = "+15551230004"
    with ringing_offer(tmp_path, chromium, base, sip_port, db, "carol", "1003", number) as ring:
        ring.offer.get_by_role("button", name="Reject").click()
        assert ring.phone.wait(30) == 0, ring.phone.errors()  # CANCEL, 487, ACK: it stopped
        assert_agent_leg_unanswered(db, ring.interaction_id)
        # the caller waits again (music on hold) until hanging up: abandoned
        assert ring.caller.wait(60) == 0, ring.caller.errors()
        interaction_of(db, number, "abandoned")
        assert states_of(db, ring.interaction_id) == REOFFERED_THEN_ABANDONED


def test_a_blocked_caller_hears_the_block_prompt_and_the_call_is_kept(
    voice_hub: tuple, tmp_path: Path
) -> None:
    _base, sip_port, db, var = voice_hub
    number = "+15551230005"
    with sqlite3.connect(db, timeout=10) as conn:
        contact_id = conn.execute(
            "INSERT INTO contact (name, vip_level, blocked, notes, known, created_at)"
            " VALUES ('Spammer', 0, 1, '', 1, '2026-01-01 00:00:00')"
        ).lastrowid
        conn.execute(
            "INSERT INTO contactidentity (contact_id, kind, address, created_at)"
            " VALUES (?, 'phone', ?, '2026-01-01 00:00:00')",
            (contact_id, number),
        )
    caller = call(tmp_path, sip_port, "caller.xml", caller=number)
    assert caller.wait(90) == 0, caller.errors()  # answered, told, hung up by the hub
    interaction_id = interaction_of(db, number, "closed")
    assert query(
        db,
        "SELECT reason FROM interactionevent WHERE interaction_id = ? AND to_state = 'closed'",
        interaction_id,
    ) == [("contact is blocked",)]
    audio = recorded_audio(db, var, interaction_id)  # closed after the legs, once the call ended
    assert query(
        db,
        "SELECT kind, ended_at IS NOT NULL FROM callleg WHERE interaction_id = ?",
        interaction_id,
    ) == [("customer", 1)]
    _left, right = channel_rms(audio)
    assert right > 100  # the prompt was played to the caller


def test_calls_left_by_a_killed_hub_are_marked_dropped_and_their_recordings_play(
    tmp_path: Path, seeded_db: Path
) -> None:
    require_tool("sipp")
    var = tmp_path / "var"
    env = voice_env()
    sip_port = int(env["HUB_VOICE_BIND_PORT"])
    db = var / "hub.sqlite3"
    number = "+15551230006"
    with hub_server(var, seeded_db, **env) as (_base, process):
        caller = call(tmp_path, sip_port, "caller.xml", caller=number)
        try:
            interaction_id = interaction_of(db, number, "queued")
            (path,) = wait_for(
                db, "SELECT path FROM recording WHERE interaction_id = ?", interaction_id
            )[0]
            deadline = time.monotonic() + WAIT_S
            while not (var / path).exists() or (var / path).stat().st_size < 64_000:
                assert time.monotonic() < deadline, "the recording did not grow"
                time.sleep(0.2)
            process.kill()  # the process carrying the media dies mid-call
            process.wait()
        finally:
            caller.stop()
    assert query(db, "SELECT ended_at FROM callleg WHERE interaction_id = ?", interaction_id) == [
        (None,)
    ]
    with hub_server(var, None, **env):
        rows = wait_for(
            db,
            "SELECT end_reason, ended_at FROM callleg WHERE interaction_id = ?"
            " AND ended_at IS NOT NULL",
            interaction_id,
        )
        assert rows[0][0] == "dropped"
        # the interaction ends in a commit of its own, after the legs' (hub/calls.recover)
        wait_for(
            db, "SELECT 1 FROM interaction WHERE id = ? AND state = 'abandoned'", interaction_id
        )
        (duration, complete) = query(
            db,
            "SELECT duration_seconds, complete FROM recording WHERE interaction_id = ?",
            interaction_id,
        )[0]
        assert complete == 1 and duration >= 1.5
        audio = recorded_audio(db, var, interaction_id)
        with wave.open(io.BytesIO(audio)) as wav:  # the header matches what was written
            frames = wav.getnframes()
        assert abs(frames / 8000 - duration) < 0.01
        left, right = channel_rms(audio)
        assert left > 100 and right > 100


def invite(port: int, dnis: str = DID) -> str:
    sdp = "v=0\no=x 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 40000 RTP/AVP 0\n"
    return sip_request(
        port,
        f"INVITE sip:{dnis}@127.0.0.1:{port} SIP/2.0\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:LOCALPORT;branch=z9hG4bK{uuid.uuid4().hex}\n"
        f"From: <sip:{CALLER}@127.0.0.1>;tag=abc\n"
        f"To: <sip:{dnis}@127.0.0.1:{port}>\n"
        f"Call-ID: {uuid.uuid4().hex}@127.0.0.1\n"
        "CSeq: 1 INVITE\nContact: <sip:caller@127.0.0.1:LOCALPORT>\nMax-Forwards: 70\n"
        f"Content-Type: application/sdp\nContent-Length: {len(sdp) + sdp.count(chr(10))}\n\n" + sdp,
    )


def test_a_clean_shutdown_refuses_new_calls_and_waits_for_active_ones(
    tmp_path: Path, seeded_db: Path
) -> None:
    """SIGTERM: new calls get 503 (OPTIONS too, for load balancers), the active call goes on
    until the drain limit (HUB_VOICE_DRAIN_SECONDS), then ends cleanly with a BYE."""
    require_tool("sipp")
    var = tmp_path / "var"
    env = {**voice_env(), "HUB_VOICE_DRAIN_SECONDS": "4"}
    sip_port = int(env["HUB_VOICE_BIND_PORT"])
    db = var / "hub.sqlite3"
    number = "+15551230007"
    with hub_server(var, seeded_db, **env) as (_base, process):
        caller = call(tmp_path, sip_port, "caller.xml", caller=number)
        try:
            interaction_id = interaction_of(db, number, "queued")
            process.terminate()
            deadline = time.monotonic() + WAIT_S
            while not options(sip_port, "udp").startswith("SIP/2.0 503"):
                assert time.monotonic() < deadline, "the hub never started draining"
                time.sleep(0.1)
            assert invite(sip_port).startswith("SIP/2.0 503")
            assert caller.process.poll() is None  # the active call still goes on
            assert caller.wait(30) == 0, caller.errors()  # then the hub said BYE
            process.wait(30)
        finally:
            caller.stop()
    (end_reason, ended_at) = query(
        db, "SELECT end_reason, ended_at FROM callleg WHERE interaction_id = ?", interaction_id
    )[0]
    assert ended_at is not None and end_reason != "dropped"
    assert query(db, "SELECT state FROM interaction WHERE id = ?", interaction_id) == [
        ("abandoned",)
    ]
    (complete,) = query(
        db, "SELECT complete FROM recording WHERE interaction_id = ?", interaction_id
    )[0]
    assert complete == 1


def test_ring_no_answer_stops_the_phone_and_the_call_waits_again(
    tmp_path: Path, seeded_db: Path, chromium
) -> None:
    """The queue's offer timeout (shortened here) passes while the phone rings: the phone
    is CANCELled, the agent is set not ready (missed), and the caller waits again."""
    number = "+15551230008"
    with (
        hub_with_offer_timeout(tmp_path, seeded_db, 3) as (base, sip_port, db),
        ringing_offer(tmp_path, chromium, base, sip_port, db, "dave", "1004", number) as ring,
    ):
        assert ring.phone.wait(30) == 0, ring.phone.errors()  # nobody answered: CANCEL
        assert query(
            db, "SELECT outcome FROM offer WHERE interaction_id = ?", ring.interaction_id
        ) == [("timeout",)]
        assert_agent_leg_unanswered(db, ring.interaction_id)
        assert ring.caller.wait(60) == 0, ring.caller.errors()
        interaction_of(db, number, "abandoned")
        assert states_of(db, ring.interaction_id) == REOFFERED_THEN_ABANDONED


def test_a_caller_who_hangs_up_while_the_phone_rings_cancels_the_ringing(
    tmp_path: Path, seeded_db: Path, chromium
) -> None:
    """The caller gives up while the agent's phone rings: that ringing leg is CANCELled
    (RFC 3261 §9.1), the offer is withdrawn, and the call ends as abandoned."""
    number = "+15551230009"
    with (  # a long offer timeout: only the caller can end the ringing here
        hub_with_offer_timeout(tmp_path, seeded_db, 300) as (base, sip_port, db),
        ringing_offer(tmp_path, chromium, base, sip_port, db, "dave", "1004", number) as ring,
    ):
        assert ring.caller.wait(60) == 0, ring.caller.errors()  # its BYE, while ringing
        assert ring.phone.wait(30) == 0, ring.phone.errors()  # the phone got CANCEL
        interaction_of(db, number, "abandoned")
        (outcome,) = query(
            db, "SELECT outcome FROM offer WHERE interaction_id = ?", ring.interaction_id
        )
        assert outcome[0] not in ("timeout", "pending")
        assert_agent_leg_unanswered(db, ring.interaction_id)
        ring.offer.wait_for(state="detached", timeout=WAIT_S * 1000)


@contextmanager
def hub_with_offer_timeout(
    tmp: Path, seeded_db: Path, seconds: int
) -> Iterator[tuple[str, int, Path]]:
    """A hub of its own whose queues ring an offer for ``seconds``: (base, SIP port, db)."""
    var = tmp / "var"
    var.mkdir()
    db = var / "hub.sqlite3"
    shutil.copyfile(seeded_db, db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE queue SET offer_timeout_seconds = ?", (seconds,))
    env = voice_env()
    with hub_server(var, None, **env) as (base, _process):
        yield base, int(env["HUB_VOICE_BIND_PORT"]), db


def test_a_waiting_caller_hears_their_place_in_the_queue_between_the_music(
    tmp_path: Path, seeded_db: Path
) -> None:
    """The queue announces every 2 s (``announce_seconds``): the caller's side of the
    recording, transcribed by faster-whisper, holds the announcement."""
    require_tool("sipp")
    from speech.asr import WhisperRecognizer, normalize_phrase
    from speech.audio import read_wav, split_stereo

    var = tmp_path / "var"
    var.mkdir()
    db = var / "hub.sqlite3"
    shutil.copyfile(seeded_db, db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE queue SET announce_seconds = 2")
    env = voice_env()
    sip_port = int(env["HUB_VOICE_BIND_PORT"])
    with hub_server(var, None, **env):
        caller = call(tmp_path, sip_port, "sn:uac_pcap")  # SIPp's own caller, no number
        assert caller.wait(60) == 0, caller.errors()
        (interaction_id,) = wait_for(
            db, "SELECT id FROM interaction WHERE channel = 'voice' AND state = 'abandoned'"
        )[0]
        audio = recorded_audio(db, var, interaction_id)
    _caller_side, hub_side = split_stereo(read_wav(audio))
    heard = normalize_phrase(WhisperRecognizer().transcribe(hub_side).text)
    assert "in the queue" in heard and ("number one" in heard or "number 1" in heard), heard
