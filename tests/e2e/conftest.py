"""Browser tests: Debian Chromium through Playwright against a real hub process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.hub_process import hub_server, seed_database
from tests.support import require_tool, unavailable

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def fake_mic_args(wav: Path) -> list[str]:
    """Chromium flags for a page whose microphone plays ``wav`` (granted without a prompt)
    and whose audio plays without a user gesture."""
    return [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("e2e-seed") / "hub.sqlite3"
    seed_database(path)
    return path


@pytest.fixture
def hub(tmp_path: Path, seeded_db: Path) -> Iterator[str]:
    with hub_server(tmp_path / "var", seeded_db) as (base, _process):
        yield base


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One browser per module: Playwright's sync API keeps an event loop installed in this
    thread while it runs, so it must stop before tests that start their own loops."""
    executable = require_tool("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
