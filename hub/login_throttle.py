"""Login throttling: per account, growing delays and then a temporary lock; per client
address, only a slow-down.

Why two rules: a password guesser aims at accounts, so an account is what gets locked (the
lock is audited, admins see and lift it). A contact-center floor often sits behind one NAT
address, so an address is never locked: forty agents must not be shut out by one of them
mistyping, or by a guesser among them. Guessing from one address is only made slow.

The decisions are pure functions over counters and clocks (no I/O), so they are tested
directly; ``hub.login`` keeps the account counters on ``User`` rows and the address
counters in memory.
"""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    free_attempts: int = 5  # wrong passwords in a row before any delay
    lock_after: int = 10  # wrong passwords in a row that lock the account
    lock_seconds: float = 900.0
    first_delay_seconds: float = 1.0  # doubled for each further wrong password
    max_delay_seconds: float = 60.0
    address_free_failures: int = 20  # per address, in the window, before slowing down
    address_window_seconds: float = 600.0
    address_max_delay_seconds: float = 5.0


def account_wait(
    failed: int,
    last_failed_at: datetime | None,
    locked_until: datetime | None,
    now: datetime,
    policy: ThrottlePolicy,
) -> float:
    """Seconds before this account may try a password again (0: now). A lock that has run
    out leaves a fresh start: the caller clears the counter then (``hub.login``)."""
    if locked_until is not None:
        return max(0.0, (locked_until - now).total_seconds())
    if failed < policy.free_attempts or last_failed_at is None:
        return 0.0
    delay = min(
        policy.max_delay_seconds,
        policy.first_delay_seconds * 2 ** (failed - policy.free_attempts),
    )
    return max(0.0, (last_failed_at + timedelta(seconds=delay) - now).total_seconds())


def lock_for_failure(failed: int, now: datetime, policy: ThrottlePolicy) -> datetime | None:
    """The lock's end when the ``failed``-th wrong password in a row locks the account."""
    if failed >= policy.lock_after:
        return now + timedelta(seconds=policy.lock_seconds)
    return None


class AddressThrottle:
    """Wrong passwords per client address in a sliding window, and the delay they earn."""

    def __init__(self, policy: ThrottlePolicy) -> None:
        self.policy = policy
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.get(address)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.policy.address_window_seconds:
            failures.popleft()
        if not failures:
            del self._failures[address]
        return failures

    def delay(self, address: str, now: float | None = None) -> float:
        """How long to hold this address's next login answer (0 for most)."""
        now = time.monotonic() if now is None else now
        excess = len(self._recent(address, now)) - self.policy.address_free_failures
        if excess < 0:
            return 0.0
        return min(self.policy.address_max_delay_seconds, 0.25 * 2 ** min(excess, 16))

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._recent(address, now)
        self._failures.setdefault(address, deque()).append(now)
        if len(self._failures) > 100_000:  # a spray from many addresses: forget the oldest
            self._failures.pop(next(iter(self._failures)))


def client_address(peer: str, forwarded_for: str, trusted_proxies: str) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the
    right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy. Entries left
    of that are the client's to write, so they are never believed."""
    networks = []
    for item in trusted_proxies.split(","):
        if item.strip():
            networks.append(ipaddress.ip_network(item.strip(), strict=False))

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    if not trusted(peer):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not trusted(hop):
            return hop
    return peer
