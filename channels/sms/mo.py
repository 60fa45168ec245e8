"""Mobile-originated messages: text decoding, reassembly of concatenated parts, and a
stable ``source_id`` for idempotency.

SMPP 3.4 gives an MO ``deliver_sm`` no message id (§4.6.1), and sequence numbers restart
with every session, so neither survives an SMSC's redelivery. What does survive is the
content: (source, destination, data_coding, user data and, for a concatenated message, its
UDH reference and part count). ``source_id`` is a digest of those plus the *first-seen
window*: the same content within ``window_seconds`` is the same message (a redelivery),
the same "Yes" an hour later is a new one. When the SMSC sends a vendor message id TLV
(``receipted_message_id`` on an MO, as some do), that id wins.

First-seen times are kept in a small journal beside the part spool, so the SMSC's
redelivery after a crash (committed, resp never sent) gets the same id and dedupes. The
price of a content key: two identical texts from one number within the window are one
message; the default window (10 min) is long against SMSC retry timers and short against
a customer repeating themself.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from channels.sms import gsm7
from channels.sms.dlr import TAG_RECEIPTED_MESSAGE_ID
from channels.sms.pdu import ShortMessage
from channels.sms.udh import ESM_UDHI, Concat, UdhError, parse_concat, split_udh

TON_INTERNATIONAL = 1  # §5.2.5


def decode_text(data: bytes, data_coding: int) -> tuple[str, tuple[str, ...]]:
    """(text, problems) for SMPP data_coding (§5.2.19) and GSM DCS 0xF0..0xF3.

    A NUL (UCS-2 0x0000, or a 0x00 octet in Latin-1) is replaced by U+FFFD with a note:
    PostgreSQL's text cannot hold it, and a commit that always fails would have the SMSC
    redeliver the message forever.
    """
    text, problems = _decode(data, data_coding)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
        problems += ("NUL characters in the text are shown as \ufffd",)
    return text, problems


def _decode(data: bytes, data_coding: int) -> tuple[str, tuple[str, ...]]:
    if data_coding in (0x00, 0xF0, 0xF1, 0xF2, 0xF3):
        if any(b > 0x7F for b in data):  # an SMSC that hands Latin-1 as "default"
            return data.decode("latin-1"), ("default alphabet with 8-bit octets read as Latin-1",)
        return gsm7.decode(data), ()
    if data_coding == 0x01:
        return data.decode("ascii", errors="replace"), ()
    if data_coding == 0x03:
        return data.decode("latin-1"), ()
    if data_coding == 0x06:
        return data.decode("iso8859-5", errors="replace"), ()
    if data_coding == 0x07:
        return data.decode("iso8859-8", errors="replace"), ()
    if data_coding == 0x08:
        if len(data) % 2:
            return data[:-1].decode("utf-16-be", errors="replace"), ("odd-length UCS-2",)
        return data.decode("utf-16-be", errors="replace"), ()
    return data.decode("latin-1"), (f"data_coding 0x{data_coding:02x} shown as Latin-1",)


def source_number(message: ShortMessage) -> str:
    """The sender as dialled: ``+`` prefixed when the TON says international."""
    addr = message.source_addr.strip()
    if message.source_addr_ton == TON_INTERNATIONAL and not addr.startswith("+"):
        return "+" + addr
    return addr


@dataclass(frozen=True, slots=True)
class MoText:
    """A complete MO (single or reassembled), ready to become an InboundMessage."""

    source: str
    destination: str
    text: str
    data_coding: int
    digest: str
    vendor_id: str | None
    parts: int
    problems: tuple[str, ...] = ()
    spool_key: str | None = None  # discard with Reassembler.finished() after the commit


def _digest(*fields: object) -> str:
    h = hashlib.sha256()
    for f in fields:
        h.update(repr(f).encode())
        h.update(b"\x1f")
    return h.hexdigest()[:40]


class DedupeWindow:
    """Gives the same ``source_id`` to the same content seen again within a window.

    With a ``journal`` file, first-seen times are appended (written, not fsynced, before
    the ingest) and reloaded at start-up, so a process killed between commit and resp
    gives the SMSC's redelivery the same id. A power cut may lose the last lines; the
    database's own last commits are then at the same risk.
    """

    def __init__(
        self,
        window_seconds: float = 600.0,
        clock: Callable[[], float] = time.time,
        max_entries: int = 50_000,
        journal: Path | None = None,
    ) -> None:
        self.window = window_seconds
        self._clock = clock
        self._max = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()  # digest -> first seen
        self._journal = journal
        self._appended = 0
        if journal is not None:
            self._load(journal)

    def _load(self, journal: Path) -> None:
        """Keep the entries still inside a window and rewrite the file with only them."""
        now = self._clock()
        self._seen.clear()
        self._appended = 0
        if journal.exists():
            for line in journal.read_text(errors="replace").splitlines():
                digest, _, first = line.partition(" ")
                try:
                    seen = float(first)
                except ValueError:
                    continue  # a torn last line
                if now - seen <= self.window:
                    self._seen[digest] = seen
        journal.parent.mkdir(parents=True, exist_ok=True)
        tmp = journal.with_suffix(".tmp")
        tmp.write_text("".join(f"{d} {t!r}\n" for d, t in self._seen.items()))
        tmp.replace(journal)

    def source_id(self, mo: MoText) -> str:
        if mo.vendor_id:
            return f"smsc:{mo.vendor_id}"
        now = self._clock()
        first = self._seen.get(mo.digest)
        if first is None or now - first > self.window:
            first = now
            self._seen[mo.digest] = first
            self._seen.move_to_end(mo.digest)
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
            if self._journal is not None:
                with open(self._journal, "a") as fh:
                    fh.write(f"{mo.digest} {first!r}\n")
                self._appended += 1
                if self._appended > self._max:  # compact now and then
                    self._load(self._journal)
        return f"mo:{mo.digest}:{int(first // self.window)}"


class PartSpool:
    """Parts of concatenated MOs that arrived before their siblings.

    A part is written (fsync, rename) before its ``deliver_sm_resp``, so acknowledging it
    loses nothing when the process dies before the last part comes. With ``root=None`` the
    parts live in memory (tests of the sans-IO rules).
    """

    def __init__(self, root: Path | None = None, max_age_seconds: float = 24 * 3600) -> None:
        self.root = root
        self.max_age = max_age_seconds
        self._memory: dict[str, dict[int, bytes]] = {}
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)

    def add(self, key: str, seq: int, data: bytes) -> dict[int, bytes]:
        """Store one part; returns every part of ``key`` held so far."""
        if self.root is None:
            parts = self._memory.setdefault(key, {})
            parts[seq] = data
            return dict(parts)
        folder = self.root / key
        folder.mkdir(exist_ok=True)
        tmp = folder / f".{seq}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(folder / f"{seq}.part")
        return {int(p.stem): p.read_bytes() for p in folder.glob("*.part") if p.stem.isdigit()}

    def discard(self, key: str) -> None:
        if self.root is None:
            self._memory.pop(key, None)
            return
        folder = self.root / key
        for p in folder.glob("*"):
            p.unlink(missing_ok=True)
        if folder.exists():
            folder.rmdir()

    def expire(self, now: float | None = None) -> int:
        """Drop groups whose last part never came (or a stray redelivered part)."""
        if self.root is None:
            return 0
        now = now or time.time()
        dropped = 0
        for folder in self.root.iterdir():
            if folder.is_dir() and now - folder.stat().st_mtime > self.max_age:
                self.discard(folder.name)
                dropped += 1
        return dropped


class Reassembler:
    """Turns deliver_sm user data into complete texts (TS 23.040 §9.2.3.24.1)."""

    def __init__(self, spool: PartSpool) -> None:
        self.spool = spool

    def feed(self, message: ShortMessage) -> MoText | None:
        """The complete MO, or None while parts are missing (the part is then spooled)."""
        data = message.payload
        problems: tuple[str, ...] = ()
        concat: Concat | None = None
        if message.esm_class & ESM_UDHI:
            try:
                udh, data = split_udh(data)
                concat = parse_concat(udh)
            except UdhError as exc:
                problems = (f"bad UDH ({exc}); shown without it",)
        vendor = message.tlvs.get(TAG_RECEIPTED_MESSAGE_ID, b"").rstrip(b"\0").decode("latin-1")
        source, dest = source_number(message), message.destination_addr
        if concat is None or concat.total == 1:
            text, more = decode_text(data, message.data_coding)
            digest = _digest(source, dest, message.data_coding, data)
            return MoText(
                source, dest, text, message.data_coding, digest, vendor or None, 1, problems + more
            )
        key = _digest(source, dest, concat.ref, concat.total, message.data_coding)
        parts = self.spool.add(key, concat.seq, data)
        if len(parts) < concat.total:
            return None
        whole = b"".join(parts[i] for i in sorted(parts))
        text, more = decode_text(whole, message.data_coding)
        # The spooled parts stay until the caller has committed the whole message.
        return MoText(
            source,
            dest,
            text,
            message.data_coding,
            _digest(key, whole),
            None,
            concat.total,
            problems + more,
            key,
        )

    def finished(self, mo: MoText) -> None:
        if mo.spool_key:
            self.spool.discard(mo.spool_key)
