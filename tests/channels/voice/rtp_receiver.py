"""An RTP receiver whose arrival times come from the kernel, not from Python.

Each packet is stamped by the kernel as it reaches the socket (``SO_TIMESTAMPNS``, wall
clock), so when this receiver's own thread or process gets to read it does not change the
times: a test can block the loop (or hold the GIL) of the process that sends, and still see
when each frame really left. Used as a thread by the media-thread test and as a child
process by ``bench/media_clock.py``::

    python -m tests.channels.voice.rtp_receiver --port 0 --idle 2
    # prints "port N", then, after ``--idle`` s without packets (or SIGTERM),
    # one JSON line: {"ssrc": [[arrival_s, seq], ...], ...}
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import struct
import sys
import threading
import time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python does not export it
_TIMESPEC = struct.Struct("@qq")


class StampedReceiver:
    """A UDP socket on 127.0.0.1 recording (kernel arrival time, SSRC, seq) per packet."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.packets: list[tuple[float, int, int]] = []  # (arrival, ssrc, seq)
        self.last_at = 0.0  # monotonic, when the last packet was read
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def receive(self) -> None:
        """Read until :meth:`stop`."""
        space = socket.CMSG_SPACE(_TIMESPEC.size)
        while not self._stop.is_set():
            try:
                data, ancdata, _flags, _addr = self.sock.recvmsg(2048, space)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) < 12:
                continue
            arrival = time.time()
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack(cdata[: _TIMESPEC.size])
                    arrival = sec + nsec / 1e9
            seq, _ts, ssrc = struct.unpack_from("!HII", data, 2)
            self.packets.append((arrival, ssrc, seq))
            self.last_at = time.monotonic()

    def start(self) -> StampedReceiver:
        self._thread = threading.Thread(target=self.receive, name="rtp-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self.sock.close()

    def between(self, start: float, end: float) -> int:
        """Packets that arrived in [start, end] (``time.time()`` values)."""
        return sum(1 for at, _, _ in self.packets if start <= at <= end)

    def by_ssrc(self) -> dict[int, list[tuple[float, int]]]:
        streams: dict[int, list[tuple[float, int]]] = {}
        for at, ssrc, seq in self.packets:
            streams.setdefault(ssrc, []).append((at, seq))
        return streams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--idle", type=float, default=2.0, help="stop after this long quiet")
    args = parser.parse_args()
    receiver = StampedReceiver(args.port)
    signal.signal(signal.SIGTERM, lambda *_: receiver._stop.set())
    print(f"port {receiver.port}", flush=True)
    receiver.start()
    while not receiver._stop.is_set():
        time.sleep(0.1)
        if receiver.packets and time.monotonic() - receiver.last_at > args.idle:
            break
    receiver.stop()
    json.dump({str(k): v for k, v in receiver.by_ssrc().items()}, sys.stdout)
    print(flush=True)


if __name__ == "__main__":
    main()
