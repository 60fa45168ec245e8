"""Server-side SIP digest authentication (RFC 3261 §22.4, RFC 7616, RFC 2617), sans-IO.

Client-side answers come from :func:`aiosipua.build_credentials`. Here we issue challenges
and verify answers. Nonces are stateless: ``<timestamp>.<hmac(secret, timestamp)>``, so a
nonce cannot be forged and is rejected once stale.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field

from aiosipua import parse_auth

_HASHERS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


@dataclass(slots=True)
class DigestAuthority:
    """Issues and checks digest challenges for one realm."""

    realm: str
    nonce_lifetime: float = 300.0
    secret: bytes = field(default_factory=lambda: os.urandom(16))

    def _sign(self, stamp: str) -> str:
        return hmac.new(self.secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]

    def new_nonce(self, now: float | None = None) -> str:
        stamp = str(int((time.time() if now is None else now) * 1000))
        return f"{stamp}.{self._sign(stamp)}"

    def nonce_valid(self, nonce: str, now: float | None = None) -> bool:
        stamp, _, sig = nonce.partition(".")
        if not stamp.isdigit() or not hmac.compare_digest(sig, self._sign(stamp)):
            return False
        age = (time.time() if now is None else now) - int(stamp) / 1000
        return 0 <= age <= self.nonce_lifetime

    def challenge(self, stale: bool = False, algorithm: str = "MD5") -> str:
        """A ``WWW-Authenticate`` value (RFC 3261 §22.4, qop=auth per RFC 7616 §3.3)."""
        value = (
            f'Digest realm="{self.realm}", nonce="{self.new_nonce()}", '
            f'algorithm={algorithm}, qop="auth"'
        )
        return value + (", stale=true" if stale else "")

    def verify(
        self, authorization: str, method: str, passwords: dict[str, str]
    ) -> tuple[str | None, bool]:
        """Check an ``Authorization`` header value.

        Returns ``(username, stale)``: ``username`` is set when the answer is right;
        ``stale`` is true when only the nonce was too old (the client should retry
        without asking the user again, RFC 7616 §3.3).
        """
        try:
            creds = parse_auth(authorization)
        except Exception:
            return None, False
        if creds.scheme.lower() != "digest":
            return None, False
        p = creds.params
        username = p.get("username", "")
        password = passwords.get(username)
        hasher = _HASHERS.get(p.get("algorithm", "MD5").upper())
        if password is None or hasher is None or p.get("realm") != self.realm:
            return None, False
        nonce, uri, response = p.get("nonce", ""), p.get("uri", ""), p.get("response", "")

        def h(data: str) -> str:
            return hasher(data.encode()).hexdigest()

        ha1 = h(f"{username}:{self.realm}:{password}")
        ha2 = h(f"{method}:{uri}")
        if p.get("qop"):
            if p["qop"].lower() != "auth":
                return None, False
            expected = h(f"{ha1}:{nonce}:{p.get('nc', '')}:{p.get('cnonce', '')}:auth:{ha2}")
        else:
            expected = h(f"{ha1}:{nonce}:{ha2}")
        if not hmac.compare_digest(expected, response.lower()):
            return None, False
        if not self.nonce_valid(nonce):
            return None, True
        return username, False
