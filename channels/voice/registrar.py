"""A registrar for agent extensions (RFC 3261 §10.3), with digest authentication.

Agents register any SIP softphone as ``sip:<extension>@<our host>``. Only the AOR's own
credentials may change its bindings (RFC 3261 §10.3 step 6). The binding remembers the
address the REGISTER came from, so calls reach phones behind NAT (RFC 3581 spirit).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiosipua import SipRequest, SipResponse, generate_tag, parse_address, stringify_uri
from aiosipua.headers import SipUri

from channels.voice.digest import DigestAuthority

MIN_EXPIRES = 60
MAX_EXPIRES = 3600
DEFAULT_EXPIRES = 3600


@dataclass(frozen=True, slots=True)
class Binding:
    extension: str
    contact: str  # the Contact URI the phone registered
    source: tuple[str, int]  # where the REGISTER came from
    expires_at: float
    contact_addr: tuple[str, int] | None = None  # host:port named by the Contact

    @property
    def target(self) -> tuple[str, int]:
        """Where to send INVITEs: the Contact's address when it is the address the
        REGISTER came from (same host), else the source address (a phone behind NAT
        registers a private Contact it cannot be reached on)."""
        if self.contact_addr is not None and self.contact_addr[0] == self.source[0]:
            return self.contact_addr
        return self.source

    @property
    def live(self) -> bool:
        return self.expires_at > time.time()


def delta_seconds(value: str) -> int | None:
    """An ``Expires`` value (RFC 3261 §20.19: delta-seconds, digits only), or ``None``.
    Values beyond 2**32-1 are taken as the largest (§25.1 allows any digit string)."""
    value = value.strip()
    if not value.isdigit() or not value.isascii():
        return None
    digits = value.lstrip("0") or "0"
    return 2**32 - 1 if len(digits) > 10 else min(int(digits), 2**32 - 1)


def is_digest(authorization: str | None) -> bool:
    """Whether an Authorization header uses the Digest scheme (RFC 3261 §22.4)."""
    scheme = (authorization or "").split(None, 1)
    return bool(scheme) and scheme[0].lower() == "digest"


def stateless_response(request: SipRequest, status: int, reason: str) -> SipResponse:
    """A stateless response (RFC 3261 §8.2.6) echoing the request's identifiers."""
    resp = SipResponse(status_code=status, reason_phrase=reason)
    for via in request.headers.get("via"):
        resp.headers.append("Via", via)
    for name in ("From", "Call-ID", "CSeq"):
        value = request.headers.get_first(name)
        if value:
            resp.headers.set_single(name, value)
    to = request.headers.get_first("to") or ""
    if to and ";tag=" not in to:
        to += f";tag={generate_tag()}"
    resp.headers.set_single("To", to)
    return resp


class Registrar:
    def __init__(self, authority: DigestAuthority, passwords: dict[str, str]) -> None:
        self.authority = authority
        self.passwords = passwords
        self._bindings: dict[str, Binding] = {}

    def lookup(self, extension: str) -> Binding | None:
        binding = self._bindings.get(extension)
        if binding is None or not binding.live:
            self._bindings.pop(extension, None)
            return None
        return binding

    @property
    def bindings(self) -> dict[str, Binding]:
        return {k: b for k, b in self._bindings.items() if b.live}

    def handle(self, request: SipRequest, source: tuple[str, int]) -> SipResponse:
        """Answer one REGISTER: 401 challenge, 403, 423, or 200 with the bindings."""
        to = request.to_addr
        extension = to.uri.user if to is not None and to.uri is not None else None
        if not extension or extension not in self.passwords:
            return stateless_response(request, 404, "Not Found")
        authorization = request.get_header("authorization")
        if not is_digest(authorization):
            # none, or a scheme we do not know: challenge as if it were absent
            # (RFC 4475 §3.3.7, RFC 3261 §22.1)
            resp = stateless_response(request, 401, "Unauthorized")
            resp.headers.set_single("WWW-Authenticate", self.authority.challenge())
            return resp
        user, stale = self.authority.verify(authorization, "REGISTER", self.passwords)
        if stale:
            resp = stateless_response(request, 401, "Unauthorized")
            resp.headers.set_single("WWW-Authenticate", self.authority.challenge(stale=True))
            return resp
        if user != extension:
            return stateless_response(request, 403, "Forbidden")

        contacts = request.headers.get("contact")
        header_expires = request.get_header("expires")
        default = delta_seconds(header_expires) if header_expires is not None else DEFAULT_EXPIRES
        if default is None:
            return stateless_response(request, 400, "Bad Expires")
        if contacts == ["*"]:
            if default != 0:
                return stateless_response(request, 400, "Wildcard Needs Expires 0")
            self._bindings.pop(extension, None)
            return stateless_response(request, 200, "OK")
        # every Contact is checked before any binding changes: a REGISTER is applied
        # whole or not at all (RFC 3261 §10.3 steps 7-8)
        changes: list[tuple[SipUri, int]] = []
        for raw in contacts:
            try:
                addr = parse_address(raw)
            except Exception:
                return stateless_response(request, 400, "Bad Contact")
            param = addr.params.get("expires")
            expires = delta_seconds(param) if param else default
            if expires is None:
                return stateless_response(request, 400, "Bad Expires")
            if 0 < expires < MIN_EXPIRES:
                resp = stateless_response(request, 423, "Interval Too Brief")
                resp.headers.set_single("Min-Expires", str(MIN_EXPIRES))
                return resp
            changes.append((addr.uri, expires))
        for uri, expires in changes:
            if expires == 0:
                self._bindings.pop(extension, None)
                continue
            contact_addr = (uri.host, uri.port or 5060) if uri is not None and uri.host else None
            self._bindings[extension] = Binding(
                extension,
                stringify_uri(uri),
                source,
                time.time() + min(expires, MAX_EXPIRES),
                contact_addr,
            )
        resp = stateless_response(request, 200, "OK")
        binding = self.lookup(extension)
        if binding is not None:
            remaining = int(binding.expires_at - time.time())
            resp.headers.set_single("Contact", f"<{binding.contact}>;expires={remaining}")
        return resp
