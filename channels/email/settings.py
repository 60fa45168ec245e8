"""Email channel settings from ``HUB_EMAIL_*`` environment variables.

A plain dataclass (not the hub's pydantic Settings) so the channel stays importable and
testable on its own; ``EmailSettings.from_env()`` reads the environment once at start-up.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_ACK_TEXT = (
    "Thank you for your message. We have received it and will answer as soon as we can.\n"
    "Your reference number is {reference}; please keep it in the subject of any reply."
)


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _list(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    return tuple(part.strip().lower() for part in value.split(",") if part.strip())


def _routes(value: str | None, default: Mapping[str, str]) -> dict[str, str]:
    """``"support=Support email;fax@example.com=Fax"``: local part or address → inbox name."""
    if value is None:
        return dict(default)
    routes: dict[str, str] = {}
    for item in value.replace("\n", ";").split(";"):
        if "=" in item:
            key, name = item.split("=", 1)
            if key.strip() and name.strip():
                routes[key.strip().lower()] = name.strip()
    return routes


@dataclass(frozen=True, slots=True)
class EmailSettings:
    # inbound SMTP (RFC 5321) listener
    listen: bool = False
    bind: str = "127.0.0.1"
    port: int = 2525
    hostname: str = "contacthub.localhost"  # our name in the SMTP greeting and Message-IDs
    domains: tuple[str, ...] = ("localhost",)  # recipient domains we accept mail for
    routes: dict[str, str] = field(
        default_factory=lambda: {"support": "Support email", "fax": "Fax"}
    )
    max_message_bytes: int = 25 * 1024 * 1024
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_attachments: int = 20
    # outbound relay (the "smart host")
    relay_host: str = ""
    relay_port: int = 25
    relay_username: str = ""
    relay_password: str = ""
    relay_starttls: bool = False
    # PEM bundle of the CAs that sign the relay's and the IMAP server's certificates (an
    # in-house PKI); empty: the system's trust store. Certificates are always verified.
    ca_file: str = ""
    from_address: str = ""  # empty: the inbox's own address from ``routes``
    send_attempts: int = 5
    backoff_seconds: float = 1.0
    # RFC 3834 auto-acknowledgement (inboxes override with config["auto_ack"])
    auto_ack: bool = True
    auto_ack_text: str = DEFAULT_ACK_TEXT
    # IMAP polling of an existing mailbox
    imap_host: str = ""
    imap_port: int = 993
    imap_ssl: bool = True
    imap_username: str = ""
    imap_password: str = ""
    imap_mailbox: str = "INBOX"
    imap_inbox: str = "Support email"  # the hub inbox these messages land in
    imap_idle_seconds: float = 120.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EmailSettings:
        e = os.environ if env is None else env
        d = cls()

        def get(name: str) -> str | None:
            return e.get(f"HUB_EMAIL_{name}")

        return cls(
            listen=_bool(get("LISTEN"), d.listen),
            bind=get("BIND") or d.bind,
            port=int(get("PORT") or d.port),
            hostname=get("HOSTNAME") or d.hostname,
            domains=_list(get("DOMAINS"), d.domains),
            routes=_routes(get("ROUTES"), d.routes),
            max_message_bytes=int(get("MAX_MESSAGE_BYTES") or d.max_message_bytes),
            max_attachment_bytes=int(get("MAX_ATTACHMENT_BYTES") or d.max_attachment_bytes),
            max_attachments=int(get("MAX_ATTACHMENTS") or d.max_attachments),
            relay_host=get("RELAY_HOST") or d.relay_host,
            relay_port=int(get("RELAY_PORT") or d.relay_port),
            relay_username=get("RELAY_USERNAME") or d.relay_username,
            relay_password=get("RELAY_PASSWORD") or d.relay_password,
            relay_starttls=_bool(get("RELAY_STARTTLS"), d.relay_starttls),
            ca_file=get("CA_FILE") or d.ca_file,
            from_address=(get("FROM_ADDRESS") or d.from_address).lower(),
            send_attempts=int(get("SEND_ATTEMPTS") or d.send_attempts),
            backoff_seconds=float(get("BACKOFF_SECONDS") or d.backoff_seconds),
            auto_ack=_bool(get("AUTO_ACK"), d.auto_ack),
            auto_ack_text=(get("AUTO_ACK_TEXT") or d.auto_ack_text).replace("\\n", "\n"),
            imap_host=get("IMAP_HOST") or d.imap_host,
            imap_port=int(get("IMAP_PORT") or d.imap_port),
            imap_ssl=_bool(get("IMAP_SSL"), d.imap_ssl),
            imap_username=get("IMAP_USERNAME") or d.imap_username,
            imap_password=get("IMAP_PASSWORD") or d.imap_password,
            imap_mailbox=get("IMAP_MAILBOX") or d.imap_mailbox,
            imap_inbox=get("IMAP_INBOX") or d.imap_inbox,
            imap_idle_seconds=float(get("IMAP_IDLE_SECONDS") or d.imap_idle_seconds),
        )

    def tls_context(self) -> ssl.SSLContext:
        """A client context that verifies the server's certificate and host name."""
        return ssl.create_default_context(cafile=self.ca_file or None)

    def address_for(self, inbox_name: str) -> str:
        """The address an inbox sends from: ``from_address``, else its first route."""
        if self.from_address:
            return self.from_address
        domain = self.domains[0] if self.domains else self.hostname
        for key, name in self.routes.items():
            if name == inbox_name:
                return key if "@" in key else f"{key}@{domain}"
        return f"noreply@{domain}"
