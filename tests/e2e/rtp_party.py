"""A call party's media for the end-to-end tests: SIPp signals, this socket talks.

Each party sends its own tone (PCMU, 20 ms packets, symmetric RTP: back to where the hub's
packets come from) and keeps every packet it receives, so a test can tell who hears whom
by frequency: the caller's tone, an agent's, a supervisor's, or the music on hold.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from speech.g711 import ulaw_decode, ulaw_encode
from tests.channels.voice.helpers import level_at

MOH_HZ = (440.0, 660.0)  # the built-in music on hold's chime
PRESENT = 1200.0  # a party's tone arrives at about 9,800 (level 0.3); mixing keeps it
ABSENT = 250.0
WINDOW_S = 1.0


@dataclass
class Packet:
    at: float
    payload_type: int
    payload: bytes


class RtpParty:
    """One UDP socket: sends a tone at ``freq`` (while ``talking``) and records what it gets."""

    def __init__(self, freq: float, level: float = 0.3) -> None:
        self.freq = freq
        self.amplitude = level
        self.talking = True
        self.packets: list[Packet] = []
        self.peer: tuple[str, int] | None = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self._lock = threading.Lock()
        self._keys: list[str] = []  # RFC 4733 digits waiting to be sent
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._receive, daemon=True),
            threading.Thread(target=self._send, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
            except (TimeoutError, OSError):
                continue
            if len(data) < 12:
                continue
            self.peer = addr
            with self._lock:
                self.packets.append(Packet(time.monotonic(), data[1] & 0x7F, data[12:]))

    def _send(self) -> None:
        ssrc = int.from_bytes(os.urandom(4), "big")
        seq = 0
        start = time.monotonic()
        while not self._stop.is_set():
            peer = self.peer
            if peer is not None and self._keys:
                seq = self._send_key(peer, ssrc, seq)
                start = time.monotonic() - seq * 0.02
                continue
            if peer is not None:
                pcm = self._frame(seq)
                header = struct.pack(
                    "!BBHII", 0x80, 0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc
                )
                try:
                    self.sock.sendto(header + ulaw_encode(pcm), peer)
                except OSError:
                    return
            seq += 1
            time.sleep(max(0.0, start + seq * 0.02 - time.monotonic()))

    def _frame(self, seq: int) -> npt.NDArray[np.int16]:
        """The 20 ms frame numbered ``seq``: the party's tone, or silence."""
        n = np.arange(seq * 160, (seq + 1) * 160) / 8000
        level = self.amplitude if self.talking else 0.0
        return (np.sin(2 * np.pi * self.freq * n) * level * 32767).astype(np.int16)

    def send_dtmf(self, digits: str) -> None:
        """Key ``digits`` as RFC 4733 telephone-events (payload type 101), in place of the
        tone while each key lasts."""
        with self._lock:
            self._keys.extend(digits)

    def _send_key(self, peer: tuple[str, int], ssrc: int, seq: int) -> int:
        """One key: 5 packets of 20 ms with a growing duration, then the end bit three
        times (RFC 4733 §2.5.1.4), all with the key's own timestamp; then 100 ms of the
        tone's silence. Returns the next sequence number."""
        with self._lock:
            digit = self._keys.pop(0)
        code = "0123456789*#ABCD".index(digit)
        stamp = (seq * 160) & 0xFFFFFFFF
        packets = [(False, 160 * (i + 1)) for i in range(5)] + [(True, 800)] * 3
        for index, (end, duration) in enumerate(packets):
            marker = 0x80 if index == 0 else 0
            header = struct.pack("!BBHII", 0x80, marker | 101, seq & 0xFFFF, stamp, ssrc)
            body = struct.pack("!BBH", code, (0x80 if end else 0) | 10, duration)
            with contextlib.suppress(OSError):
                self.sock.sendto(header + body, peer)
            seq += 1
            time.sleep(0.02)
        for _ in range(5):  # a gap of silence between keys
            header = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc)
            with contextlib.suppress(OSError):
                self.sock.sendto(header + ulaw_encode(np.zeros(160, np.int16)), peer)
            seq += 1
            time.sleep(0.02)
        return seq

    def audio(self, since: float) -> npt.NDArray[np.int16]:
        with self._lock:
            chunks = [
                ulaw_decode(p.payload)
                for p in self.packets
                if p.at >= since and p.payload_type == 0
            ]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    def events_since(self, since: float) -> list[int]:
        """RFC 4733 telephone-event codes received (payload type 101)."""
        with self._lock:
            return sorted(
                {
                    p.payload[0]
                    for p in self.packets
                    if p.at >= since and p.payload_type == 101 and p.payload
                }
            )

    def level(self, freq: float, window: float = WINDOW_S) -> float | None:
        """The level of ``freq`` in the last ``window`` seconds (None: too few packets)."""
        pcm = self.audio(time.monotonic() - window)
        if pcm.shape[0] < int(window * 8000 * 0.8):
            return None
        return level_at(pcm, freq)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self.sock.close()


def until_hears(party: RtpParty, freq: float, *, present: bool, within: float = 20.0) -> None:
    """Wait until ``party`` hears ``freq`` (or stops hearing it); bounded, not timed."""
    deadline = time.monotonic() + within
    last: float | None = None
    while time.monotonic() < deadline:
        last = party.level(freq)
        if last is not None and (last > PRESENT if present else last < ABSENT):
            return
        time.sleep(0.2)
    what = "hear" if present else "stop hearing"
    raise AssertionError(f"party {party.freq:.0f} Hz did not {what} {freq:.0f} Hz (level {last})")


def hears_moh(party: RtpParty, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        # the chime plays 0.6 s of every second: a 2 s window always holds some
        levels = [party.level(f, window=2.0) or 0.0 for f in MOH_HZ]
        if min(levels) > PRESENT / 4:
            return
        time.sleep(0.2)
    raise AssertionError(f"party {party.freq:.0f} Hz did not hear the music on hold")


class SpeechParty(RtpParty):
    """A party that speaks: what ``say`` is given is sent in 20 ms frames, silence between."""

    def __init__(self) -> None:
        self._speech = np.zeros(0, dtype=np.int16)
        super().__init__(freq=0.0)

    def _frame(self, seq: int) -> npt.NDArray[np.int16]:
        with self._lock:
            frame, self._speech = self._speech[:160], self._speech[160:]
        return np.pad(frame, (0, 160 - frame.shape[0]))

    def say(self, pcm: npt.NDArray[np.int16]) -> None:
        """Speak ``pcm`` (8 kHz) and return once the last of it has been sent."""
        with self._lock:
            self._speech = np.concatenate([self._speech, pcm.astype(np.int16)])
        while True:
            with self._lock:
                if not self._speech.shape[0]:
                    break
            time.sleep(0.02)
        time.sleep(0.04)
