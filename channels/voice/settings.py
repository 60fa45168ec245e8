"""Voice endpoint settings, read from ``HUB_VOICE_*`` environment variables.

The hub constructs :class:`~channels.voice.sip_endpoint.SipEndpoint` from these; tests build
them directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _credentials(value: str) -> dict[str, str]:
    """``user:password,user2:password2`` → ``{user: password}``."""
    out: dict[str, str] = {}
    for item in _split(value):
        user, sep, password = item.partition(":")
        if sep:
            out[user] = password
    return out


@dataclass(slots=True)
class VoiceSettings:
    """Everything the SIP endpoint and its media engine need.

    - ``trusted_gateways``: source IPs whose INVITEs are accepted without authentication
      (PSTN gateways, SBCs). Anyone else must authenticate with ``gateway_credentials``
      or gets 403.
    - ``agent_credentials``: extension → password for agent phones registering to us.
    - ``trunk_*``: an outbound registration to a provider (empty host = none).
    - ``tcp_idle_timeout``: seconds after which a SIP TCP connection that carried no
      message and no call is closed; ``tcp_max_connections_per_address``: how many
      connections one IP may hold open (RFC 3261 §18.3 leaves both to us).
    - ``media_thread``: run the 20 ms media clock and RTP on a thread and loop of their
      own (the default), away from the loop serving HTTP and SSE; off
      (``HUB_VOICE_MEDIA_THREAD=0``) only to measure the difference
      (``bench/media_clock.py``).
    """

    bind_host: str = "127.0.0.1"
    bind_port: int = 5060
    advertised_host: str | None = None
    transports: tuple[str, ...] = ("udp",)
    rtp_host: str = "127.0.0.1"
    rtp_port_min: int = 20000
    rtp_port_max: int = 30000
    realm: str = "contacthub"
    trusted_gateways: tuple[str, ...] = ("127.0.0.1",)
    gateway_credentials: dict[str, str] = field(default_factory=dict)
    agent_credentials: dict[str, str] = field(default_factory=dict)
    trunk_host: str = ""
    trunk_port: int = 5060
    trunk_username: str = ""
    trunk_password: str = ""
    trunk_domain: str = ""
    trunk_register_expires: int = 300
    moh_wav: Path | None = None
    recordings_dir: Path = Path("var/recordings")
    symmetric_rtp: bool = True
    jitter_prefill_frames: int = 2
    max_jitter_frames: int = 12
    tcp_idle_timeout: float = 120.0
    tcp_max_connections_per_address: int = 64
    media_thread: bool = True

    @property
    def signalling_host(self) -> str:
        """The host put in Via and Contact (set ``advertised_host`` when binding 0.0.0.0
        or behind NAT)."""
        return self.advertised_host or self.bind_host

    @property
    def sdp_host(self) -> str:
        """The media address put in our SDP ``c=`` line."""
        if self.advertised_host:
            return self.advertised_host
        return self.rtp_host if self.rtp_host != "0.0.0.0" else self.bind_host  # noqa: S104

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> VoiceSettings:
        """Read ``HUB_VOICE_*`` variables; unset ones keep their defaults."""
        e = os.environ if env is None else env
        d = cls()

        def get(name: str, default: str) -> str:
            return e.get(f"HUB_VOICE_{name}", default)

        moh = get("MOH_WAV", "")
        return cls(
            bind_host=get("BIND_HOST", d.bind_host),
            bind_port=int(get("BIND_PORT", str(d.bind_port))),
            advertised_host=get("ADVERTISED_HOST", "") or None,
            transports=_split(get("TRANSPORTS", ",".join(d.transports))),
            rtp_host=get("RTP_HOST", d.rtp_host),
            rtp_port_min=int(get("RTP_PORT_MIN", str(d.rtp_port_min))),
            rtp_port_max=int(get("RTP_PORT_MAX", str(d.rtp_port_max))),
            realm=get("REALM", d.realm),
            trusted_gateways=_split(get("TRUSTED_GATEWAYS", ",".join(d.trusted_gateways))),
            gateway_credentials=_credentials(get("GATEWAY_CREDENTIALS", "")),
            agent_credentials=_credentials(get("AGENT_CREDENTIALS", "")),
            trunk_host=get("TRUNK_HOST", ""),
            trunk_port=int(get("TRUNK_PORT", "5060")),
            trunk_username=get("TRUNK_USERNAME", ""),
            trunk_password=get("TRUNK_PASSWORD", ""),
            trunk_domain=get("TRUNK_DOMAIN", ""),
            trunk_register_expires=int(get("TRUNK_REGISTER_EXPIRES", "300")),
            moh_wav=Path(moh) if moh else None,
            recordings_dir=Path(get("RECORDINGS_DIR", str(d.recordings_dir))),
            symmetric_rtp=get("SYMMETRIC_RTP", "1") not in ("0", "false", "no"),
            tcp_idle_timeout=float(get("TCP_IDLE_TIMEOUT", str(d.tcp_idle_timeout))),
            tcp_max_connections_per_address=int(
                get("TCP_MAX_PER_ADDRESS", str(d.tcp_max_connections_per_address))
            ),
            media_thread=get("MEDIA_THREAD", "1") not in ("0", "false", "no"),
        )
