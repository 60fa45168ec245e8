"""Ports for test parties and hubs, safe when pytest-xdist runs the suite in several workers.

A port picked here is free now but stays unbound until the hub or SIPp under test binds it,
so nothing stops the next pick (in this process or another worker) from returning it again.
So each worker owns a slice of the test ports (one per worker): free ports come from the
slice's lower half, picked at random and never handed out twice, and RTP ranges from its upper
half. (The kernel's own choice, ``bind(0)``, cannot be steered into a slice: it even keeps to
one parity for TCP.)

The test ports stay out of the kernel's ephemeral range (``ip_local_port_range``): every
outgoing connection (a browser's, an HTTP client's, a database driver's) takes its local port
from there, so a port picked there could be taken before the hub binds it. CI once failed on
exactly that: a hub's SIP port, picked free, was in use a moment later.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

RTP_SPAN = 200
LOWEST = 10_000  # below it: well-known services (PostgreSQL, Redis, RabbitMQ, NATS, ...)


def _ephemeral() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default


def _test_ports() -> range:
    """The larger run of ports from LOWEST up that the kernel never hands out on its own."""
    low, high = _ephemeral()
    below, above = range(LOWEST, max(LOWEST, low)), range(max(LOWEST, high + 1), 65_536)
    return max(below, above, key=len)


TEST_PORTS = _test_ports()

_HANDED_OUT: set[int] = set()
_RANDOM = random.Random()  # its own: a test seeding `random` must not steer the picks


def worker() -> tuple[int, int]:
    """(this worker's index, the number of workers); (0, 1) without xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return int(name.removeprefix("gw") or 0) % count, count


def _halves() -> tuple[range, range]:
    """(free ports, RTP ports) of this worker's slice."""
    index, count = worker()
    width = len(TEST_PORTS) // count
    low = TEST_PORTS.start + index * width
    middle = low + width // 2
    return range(low, middle), range(middle, low + width)


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free now for both TCP and UDP on 127.0.0.1, from this worker's slice, never
    handed out before in this process."""
    ports, _ = _halves()
    while True:
        port = _RANDOM.choice(ports)
        if port in _HANDED_OUT:
            continue
        if _bindable(port, socket.SOCK_STREAM) and _bindable(port, socket.SOCK_DGRAM):
            _HANDED_OUT.add(port)
            return port


def media_ports() -> int:
    """The base of four consecutive free ports for SIPp's ``-mp``: it binds the base for
    audio RTP, base+1 for RTCP and base+2, base+3 for video, so one free port is not enough
    (a caller once failed on "Unable to bind video RTP socket": a hub's web port was
    base+2). All four are handed out."""
    ports, _ = _halves()
    while True:
        base = _RANDOM.randrange(ports.start, ports.stop - 4)
        block = range(base, base + 4)
        if any(port in _HANDED_OUT for port in block):
            continue
        if all(_bindable(p, socket.SOCK_STREAM) and _bindable(p, socket.SOCK_DGRAM) for p in block):
            _HANDED_OUT.update(block)
            return base


def rtp_range() -> tuple[int, int]:
    """An even-based RTP port range in this worker's slice (the hub's port pool skips a
    port that is taken anyway). The span after it is in the slice too: a softphone hub puts
    its ICE range there."""
    _, ports = _halves()
    base = _RANDOM.randrange(ports.start, ports.stop - 2 * RTP_SPAN)
    base -= base % 2
    return base, base + RTP_SPAN
