"""Ports for test parties and hubs, safe when pytest-xdist runs the suite in several workers.

A port picked here is free now but stays unbound until the hub or SIPp under test binds it,
so nothing stops the next pick (in this process or another worker) from returning it again.
Each worker therefore takes only ports of its own residue (``port % workers``), never hands
one out twice, and draws RTP ranges from its own slice of 20000–59999.
"""

from __future__ import annotations

import os
import socket
import time

RTP_LOW, RTP_HIGH = 20_000, 60_000
RTP_SPAN = 200

_HANDED_OUT: set[int] = set()


def worker() -> tuple[int, int]:
    """(this worker's index, the number of workers); (0, 1) without xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return int(name.removeprefix("gw") or 0) % count, count


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free now for both TCP and UDP on 127.0.0.1, of this worker's residue, and
    never handed out before in this process."""
    index, count = worker()
    other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
    while True:
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port % count != index or port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, other) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port


def rtp_range() -> tuple[int, int]:
    """An even-based RTP port range in this worker's slice (the hub's port pool skips a
    port that is taken anyway)."""
    index, count = worker()
    width = (RTP_HIGH - RTP_LOW) // count
    low = RTP_LOW + index * width
    base = low + (os.getpid() * 7919 + time.monotonic_ns() // 1000) % (width - RTP_SPAN)
    base -= base % 2
    return base, base + RTP_SPAN
