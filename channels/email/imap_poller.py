"""IMAP polling with IDLE for existing mailboxes (RFC 3501, RFC 2177), via aioimaplib.

Each round: ``UID SEARCH UNSEEN``, then for each message ``UID FETCH (BODY.PEEK[])`` (PEEK
leaves ``\\Seen`` alone), hand it to the intake, and only after the intake returned (the
commit) ``UID STORE +FLAGS (\\Seen)``. A crash between commit and STORE fetches the message
again next time, and its Message-ID dedupes it. Between rounds the poller IDLEs until the
server pushes ``EXISTS`` (or ``imap_idle_seconds`` pass, under the 29-minute rule of
RFC 2177 §3; the timeout also bounds the delay for mail that slipped in between the last
search and the IDLE command), and reconnects with backoff when the connection drops.

A message we cannot attribute (no From) stays in the mailbox unseen-but-flagged with the
keyword ``$ContactHubRefused``, so it is neither lost nor fetched forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

import aioimaplib

from channels.email.intake import EmailIntake
from channels.email.mime import MalformedMessage, header, parse_bytes
from channels.email.recipients import InboxTarget
from channels.email.settings import EmailSettings
from hub.tasks import cancel_and_wait

log = logging.getLogger(__name__)
REFUSED_KEYWORD = "$ContactHubRefused"
_FETCH_UID = re.compile(rb"UID (\d+)")


def _as_bytes(line: object) -> bytes:
    return bytes(line) if isinstance(line, bytes | bytearray) else str(line).encode()


class ImapError(RuntimeError):
    pass


def _ok(response: aioimaplib.Response, what: str) -> aioimaplib.Response:
    if response.result != "OK":
        raise ImapError(f"IMAP {what} failed: {response.result} {response.lines[-1:]!r}")
    return response


def fetched_messages(response: aioimaplib.Response) -> list[tuple[int | None, bytes]]:
    """(uid, raw bytes) pairs from a FETCH response: each literal follows its header line."""
    found: list[tuple[int | None, bytes]] = []
    lines = response.lines
    for index, line in enumerate(lines):
        if isinstance(line, bytearray) and index > 0:
            previous = bytes(lines[index - 1])
            uid = _FETCH_UID.search(previous)
            found.append((int(uid.group(1)) if uid else None, bytes(line)))
    return found


class ImapPoller:
    def __init__(self, settings: EmailSettings, intake: EmailIntake, target: InboxTarget) -> None:
        self.settings = settings
        self.intake = intake
        self.target = target
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0  # completed fetch rounds, for tests and health

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="imap-poller")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _connect(self) -> aioimaplib.IMAP4:
        s = self.settings
        if s.imap_ssl:  # implicit TLS on 993 (RFC 8314 §3.3)
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
                host=s.imap_host, port=s.imap_port, timeout=60, ssl_context=s.tls_context()
            )
        else:
            client = aioimaplib.IMAP4(host=s.imap_host, port=s.imap_port, timeout=60)
        await client.wait_hello_from_server()
        _ok(await client.login(s.imap_username, s.imap_password), "LOGIN")
        _ok(await client.select(s.imap_mailbox), "SELECT")
        return client

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            client = None
            try:
                client = await self._connect()
                backoff = 1.0
                while True:
                    if await self.poll_once(client) == 0:
                        # IDLE only after a search that found nothing: mail that arrived
                        # while we were busy was announced outside IDLE and would be missed.
                        await self._idle(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "IMAP %s: %s; reconnecting in %.0fs", self.settings.imap_host, exc, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 300.0)
            finally:
                if client is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(client.logout(), 5)

    async def poll_once(self, client: aioimaplib.IMAP4) -> int:
        """Fetch and commit every unseen message; returns how many unseen it found."""
        search = _ok(await client.uid_search("UNSEEN", "UNKEYWORD", REFUSED_KEYWORD), "UID SEARCH")
        uids = [int(u) for u in bytes(search.lines[0]).split() if u.isdigit()]
        for uid in uids:
            response = _ok(await client.uid("fetch", str(uid), "(UID FLAGS BODY.PEEK[])"), "FETCH")
            for fetched_uid, raw in fetched_messages(response):
                if fetched_uid is not None and fetched_uid != uid:
                    continue
                await self._commit(client, uid, raw)
        self.rounds += 1
        return len(uids)

    async def _commit(self, client: aioimaplib.IMAP4, uid: int, raw: bytes) -> None:
        return_path = header(parse_bytes(raw), "Return-Path")
        try:
            await self.intake.receive(raw, [self.target], return_path or None, transport="imap")
        except MalformedMessage as exc:
            log.warning("IMAP message %s refused: %s", uid, exc)
            await client.uid("store", str(uid), "+FLAGS", f"({REFUSED_KEYWORD})")
            return
        # Committed: only now may the mailbox forget that we still owe it.
        _ok(await client.uid("store", str(uid), "+FLAGS", r"(\Seen)"), "STORE")

    async def _idle(self, client: aioimaplib.IMAP4) -> None:
        if not client.has_capability("IDLE"):
            await asyncio.sleep(min(self.settings.imap_idle_seconds, 60.0))
            return
        idle = await client.idle_start(timeout=self.settings.imap_idle_seconds)
        try:
            while True:
                push = await client.wait_server_push(timeout=self.settings.imap_idle_seconds)
                if push == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                lines = push if isinstance(push, list) else [push]
                if any(b"EXISTS" in _as_bytes(line) for line in lines):
                    break
        except TimeoutError:
            pass
        finally:
            client.idle_done()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(idle, 10)
