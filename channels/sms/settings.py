"""``HUB_SMS_*`` settings: an SMPP account and/or a Twilio-compatible HTTP provider.

SMPP is on when ``HUB_SMS_SMPP_HOST`` is set; the HTTP provider when
``HUB_SMS_TWILIO_ACCOUNT_SID`` is. Inbox ids of 0 mean "the first active SMS inbox".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class SmsSettings:
    # SMPP 3.4
    smpp_host: str = ""
    smpp_port: int = 2775
    smpp_system_id: str = ""
    smpp_password: str = ""
    smpp_system_type: str = ""
    smpp_enquire_link_seconds: float = 30.0
    smpp_response_timeout: float = 10.0
    smpp_reconnect_max_seconds: float = 60.0
    smpp_window: int = 10
    smpp_inbox_id: int = 0
    smpp_request_dlr: bool = True
    source_addr: str = ""  # our number or short code, the source of replies
    default_region: str = "US"  # for national numbers without a country code
    mo_dedupe_seconds: float = 600.0
    spool_dir: str = ""  # empty: <var_dir>/sms-parts
    # Twilio-compatible HTTP provider
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_base_url: str = "https://api.twilio.com"
    twilio_from: str = ""
    twilio_inbox_id: int = 0
    twilio_status_callback: str = ""  # empty: <public_url>/webhooks/sms/twilio/<inbox>/status

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmsSettings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f"HUB_SMS_{f.name.upper()}")
            if raw is None:
                continue
            kind = type(f.default)
            values[f.name] = _bool(raw) if kind is bool else kind(raw)
        return cls(**values)

    @property
    def smpp_enabled(self) -> bool:
        return bool(self.smpp_host)

    @property
    def twilio_enabled(self) -> bool:
        return bool(self.twilio_account_sid)

    def spool_path(self, var_dir: Path) -> Path:
        return Path(self.spool_dir) if self.spool_dir else var_dir / "sms-parts"
