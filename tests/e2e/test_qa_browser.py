"""The QA page in Debian Chromium against a real hub: search a call's transcript, open it,
play the recording, and a click on a segment (or the timeline) seeks there while the
transcript follows."""

from __future__ import annotations

import math
import shutil
import sqlite3
import struct
import time
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.hub_process import hub_server
from tests.e2e.test_console_browser import TIMEOUT_MS, log_in

pytestmark = pytest.mark.browser

SEGMENTS = [
    ("agent", 0, 4000, "Thank you for calling, this call is recorded."),
    ("customer", 5000, 9000, "My parcel never arrived and I want a refund."),
    ("agent", 10000, 14000, "I am sorry, the refund goes to your [CARD] today."),
]


def stereo_wav(path: Path, seconds: float = 16.0, rate: int = 8000) -> None:
    """A tone on each channel: something the browser can decode and play."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = bytearray()
    for n in range(int(seconds * rate)):
        left = int(8000 * math.sin(2 * math.pi * 440 * n / rate))
        right = int(8000 * math.sin(2 * math.pi * 660 * n / rate))
        frames += struct.pack("<hh", left, right)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


def add_call(database: Path, var_dir: Path) -> int:
    """A finished call with its recording and transcript, written as the pipeline would."""
    stereo_wav(var_dir / "recordings" / "qa-e2e.wav")
    now = datetime.now(UTC).isoformat(sep=" ")
    db = sqlite3.connect(database)
    try:
        agent = db.execute(
            "SELECT agent.id FROM agent JOIN user ON user.id = agent.user_id "
            "WHERE user.username = 'alice'"
        ).fetchone()[0]
        inbox = db.execute("SELECT id FROM inbox WHERE kind = 'voice'").fetchone()[0]
        contact = db.execute(
            "INSERT INTO contact (name, vip_level, blocked, blocked_reason, notes, known, "
            "created_at) VALUES ('Caller', 0, 0, '', '', 0, ?)",
            (now,),
        ).lastrowid
        interaction = db.execute(
            "INSERT INTO interaction (inbox_id, contact_id, channel, state, priority, "
            "required_skills, data, agent_id, wrapup_notes, overflowed, created_at, "
            "answered_at) VALUES (?, ?, 'voice', 'closed', 0, '{}', '{}', ?, '', 0, ?, ?)",
            (inbox, contact, agent, now, now),
        ).lastrowid
        recording = db.execute(
            "INSERT INTO recording (interaction_id, path, duration_seconds, legs, started_at, "
            "complete) VALUES (?, 'recordings/qa-e2e.wav', 16.0, '[]', ?, 1)",
            (interaction, now),
        ).lastrowid
        transcript = db.execute(
            "INSERT INTO transcript (interaction_id, recording_id, status, language, metrics, "
            "created_at) VALUES (?, ?, 'done', 'en', '{}', ?)",
            (interaction, recording, now),
        ).lastrowid
        for speaker, start, end, text in SEGMENTS:
            db.execute(
                "INSERT INTO transcriptsegment (transcript_id, interaction_id, speaker, "
                "agent_id, start_ms, end_ms, text, words) VALUES (?, ?, ?, ?, ?, ?, ?, '[]')",
                (
                    transcript,
                    interaction,
                    speaker,
                    agent if speaker == "agent" else None,
                    start,
                    end,
                    text,
                ),
            )
        db.commit()
    finally:
        db.close()
    return interaction


def wait_until(page, expression: str, timeout_s: float = 15.0) -> None:
    """Poll ``expression`` in the page (the page's CSP forbids wait_for_function's eval)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s} s: {expression}")
        page.wait_for_timeout(100)


def current_time(page) -> float:
    return page.evaluate("document.querySelector('audio[data-qa-player]').currentTime")


def test_search_open_play_and_click_to_seek(tmp_path: Path, seeded_db: Path, chromium) -> None:
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    database = tmp_path / "with-call.sqlite3"
    shutil.copyfile(seeded_db, database)
    interaction = add_call(database, var_dir)
    with hub_server(var_dir, database) as (hub, _process):
        context = chromium.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        try:
            page = log_in(context, hub, "quinn")
            assert page.url.endswith("/qa")
            # the hub's indexer picks the transcript up within a second or two
            hit = page.locator(f"a[href^='/qa/interactions/{interaction}?doc=']")
            for _ in range(30):
                page.fill("input[name=q]", "parcel NEAR/3 arrived")
                page.select_option("select[name=speaker]", "customer")
                page.click("form.qa-search button[type=submit]")
                page.wait_for_load_state("load")
                if hit.count():
                    break
                page.wait_for_timeout(500)
            assert hit.locator("mark").first.inner_text().lower() == "parcel"
            hit.click()
            page.wait_for_url(f"**/qa/interactions/{interaction}?doc=*")

            segments = page.locator(".qa-transcript .qa-seg")
            assert segments.count() == 3
            assert "focus" in (segments.nth(1).get_attribute("class") or "")
            audio = page.locator("audio[data-qa-player]")
            wait_until(page, "document.querySelector('audio[data-qa-player]').readyState >= 1")
            # opened at the hit: the player starts where the customer said it
            wait_until(
                page,
                "Math.abs(document.querySelector('audio[data-qa-player]').currentTime - 5) < 0.5",
            )

            # a click on the third segment seeks to 10 s and plays; it is highlighted
            segments.nth(2).click()
            assert current_time(page) >= 9.9
            wait_until(page, "document.querySelector('audio[data-qa-player]').currentTime > 10.3")
            assert "playing" in (segments.nth(2).get_attribute("class") or "")
            assert "playing" not in (segments.nth(0).get_attribute("class") or "")

            # back to the first one
            segments.nth(0).click()
            assert current_time(page) < 1.0
            wait_until(
                page,
                "document.querySelector('.qa-transcript .qa-seg').classList.contains('playing')",
            )

            # the timeline seeks too: its middle is the middle of the call
            box = page.locator(".qa-timeline").bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            assert 7.0 <= current_time(page) <= 9.5
            wait_until(
                page,
                "document.querySelectorAll('.qa-transcript .qa-seg')[1]"
                ".classList.contains('playing')",
            )
            assert audio.evaluate("a => a.paused") is False
        finally:
            context.close()
