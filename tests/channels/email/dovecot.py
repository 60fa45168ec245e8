"""A real IMAP server for tests: Debian's dovecot, configured in a temporary directory."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.ports import free_port
from tests.support import unavailable

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


class Dovecot:
    """Plain IMAP on ``port``; with ``tls`` (PEM paths of a certificate chain and its key)
    implicit TLS only (IMAPS, RFC 8314 §3.3) on that port instead."""

    def __init__(
        self,
        password: str = "secret",  # noqa: S107 - a throwaway server
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.password = password
        self.tls = tls
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="dc", dir="/tmp"))  # short socket paths
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not Path(binary).exists():
            unavailable("dovecot is not installed (Debian: dovecot-imapd)")
        self.port = free_port()
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir()
        self.root.chmod(0o755)
        shutil.chown(self.root / "home", "nobody", "nogroup")
        config = self.root / "dovecot.conf"
        if self.tls is None:
            ssl, imap_port, imaps_port = "ssl = no", self.port, 0
        else:
            cert, key = self.tls
            ssl = f"ssl = required\nssl_cert = <{cert}\nssl_key = <{key}"
            imap_port, imaps_port = 0, self.port
        config.write_text(
            CONFIG.format(
                root=self.root,
                ssl=ssl,
                imap_port=imap_port,
                imaps_port=imaps_port,
                password=self.password,
            )
        )
        self.process = subprocess.Popen(
            [binary, "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while loop.time() < deadline:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise AssertionError(f"dovecot did not start: {self.log()}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
