"""`contacthub run` serves HTTPS when settings give a certificate and key (the softphone's
microphone needs a secure origin away from localhost)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import trustme

from tests.e2e.hub_process import ROOT, free_port


def _run(tmp: Path, port: int, **env: str) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    clean.update(
        HUB_VAR_DIR=str(tmp / "var"),
        HUB_SECRET_KEY="https-test",
        HUB_VOICE_ENABLED="0",
        HUB_QA_TRANSCRIBE_CALLS="0",
        HUB_SEED_DEMO="0",
        **env,
    )
    contacthub = Path(sys.executable).parent / "contacthub"
    return subprocess.Popen(
        [str(contacthub), "run", "--host", "127.0.0.1", "--port", str(port), "--no-seed"],
        cwd=ROOT,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_run_serves_https_with_a_certificate_and_key(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    process = _run(tmp_path, port, HUB_TLS_CERTFILE=str(cert_file), HUB_TLS_KEYFILE=str(key_file))
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stdout.read().decode()[-2000:]  # type: ignore[union-attr]
            try:
                response = httpx.get(f"https://127.0.0.1:{port}/health", verify=str(ca_file))
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "no HTTPS answer within 90 s"
                time.sleep(0.3)
        assert response.status_code == 200
        # plain HTTP on the same port is not served
        try:
            plain = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code
        except httpx.HTTPError:
            plain = None
        assert plain != 200
    finally:
        process.terminate()
        process.wait(30)


def test_a_certificate_without_its_key_is_refused_with_the_reason(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    process = _run(tmp_path, free_port(), HUB_TLS_CERTFILE=str(cert))
    out, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert b"HUB_TLS_CERTFILE and HUB_TLS_KEYFILE" in out
