"""The README's first command, as a newcomer runs it: `./dev.sh run` on a fresh copy.

The test suite's own venv holds the test extras (playwright brings greenlet, for one), so a
package the hub imports but does not declare would pass every other test and still crash a
newcomer's first start. This test copies the tracked tree to a temp dir, lets `./dev.sh run`
build its run-only venv from the lock (`requirements.txt`, no test extras), and then uses the
hub as a person would: health, the login page, and a demo login printed at start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.hub_process import ROOT, free_port

pytestmark = pytest.mark.slow

START_TIMEOUT = 600  # a cold pip cache downloads the whole run lock


def _copy_tracked_tree(dest: Path) -> None:
    """What a fresh clone holds: the files git tracks (plus untracked, unignored ones, so a
    file not yet committed is not silently missing from the copy)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def fresh_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """(base URL, var dir, console output) of `./dev.sh run` started on a fresh copy."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files a clone holds")
    clone = tmp_path_factory.mktemp("fresh-clone")
    _copy_tracked_tree(clone)
    var_dir = clone / "var"
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HUB_", "VIRTUAL_ENV", "PYTHON"))
    }
    env.update(
        HUB_VAR_DIR=str(var_dir),
        HUB_VOICE_BIND_PORT=str(free_port()),
        PATH=os.environ["PATH"],
        # Speed only, the same packages: pip skips byte-compiling every installed module
        # (most of the install's CPU time; Python compiles what the hub imports as it
        # starts), and npm takes what its cache holds without asking the registry again.
        PIP_COMPILE="0",  # pip install --no-compile
        npm_config_prefer_offline="true",
    )
    log_path = clone / "run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["./dev.sh", "run", "--port", str(port)],
            cwd=clone,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"./dev.sh run exited {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no /health within {START_TIMEOUT} s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield base, var_dir, log_path.read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_run_venv_has_no_test_extras(fresh_hub: tuple[str, Path, str]) -> None:
    """The venv the run command built is the run lock alone: what a newcomer gets."""
    _, var_dir, _ = fresh_hub
    python = var_dir.parent / ".venv" / "bin" / "python"
    missing = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('pytest'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert missing == "None"


def test_the_first_start_prints_no_error(fresh_hub: tuple[str, Path, str]) -> None:
    """An error, a traceback or a warning in the first screenful (the install's included)
    reads as a failed start, even when it comes from a library and changes nothing."""
    _, _, output = fresh_hub
    errors = [
        line
        for line in output.splitlines()
        if line.startswith(("ERROR", "CRITICAL", "Traceback")) or "Warning:" in line
    ]
    assert errors == [], output[-4000:]


def test_health_and_login_page(fresh_hub: tuple[str, Path, str]) -> None:
    base, _, _ = fresh_hub
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    page = httpx.get(f"{base}/login")
    assert page.status_code == 200
    assert 'name="password"' in page.text
    icon = httpx.get(f"{base}/static/icon.svg")  # no 404 in the browser's console
    assert icon.status_code == 200 and 'rel="icon" href="/static/icon.svg"' in page.text


def test_a_printed_demo_login_opens_the_console(fresh_hub: tuple[str, Path, str]) -> None:
    base, var_dir, output = fresh_hub
    logins = json.loads((var_dir / "demo-logins.json").read_text())
    alice = next(item for item in logins if item["username"] == "alice")
    assert alice["password"] in output, "the start-up output prints the demo logins"
    with httpx.Client(base_url=base, follow_redirects=True) as client:
        client.get("/login")
        response = client.post(
            "/login",
            data={
                "username": "alice",
                "password": alice["password"],
                "_csrf_token": client.cookies.get("csrftoken", ""),
            },
        )
        assert response.status_code == 200
        assert str(response.url).endswith("/console")
        assert "alice" in response.text.lower()
