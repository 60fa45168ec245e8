"""``HUB_TELEGRAM_*`` settings. The adapter is on when a bot token is set.

``api_base_url`` is the Bot API server (Telegram's, a self-hosted ``telegram-bot-api``, or
the tests' local one speaking the same wire format).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

Mode = Literal["webhook", "polling"]


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    token: str = ""
    mode: str = "polling"  # webhook | polling
    secret_token: str = ""  # X-Telegram-Bot-Api-Secret-Token; required in webhook mode
    api_base_url: str = "https://api.telegram.org"
    webhook_url: str = ""  # if set, setWebhook is called with it at start-up
    inbox_id: int = 0  # 0: the first active Telegram inbox
    poll_timeout: int = 25  # getUpdates long-poll seconds
    max_file_bytes: int = 20 * 1024 * 1024  # the Bot API's own download limit

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TelegramSettings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f"HUB_TELEGRAM_{f.name.upper()}")
            if raw is not None:
                values[f.name] = type(f.default)(raw)
        settings = cls(**values)
        settings.check()
        return settings

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def check(self) -> None:
        if self.mode not in ("webhook", "polling"):
            raise ValueError(f"HUB_TELEGRAM_MODE must be webhook or polling, not {self.mode!r}")
        if self.enabled and self.mode == "webhook" and not self.secret_token:
            raise ValueError("webhook mode needs HUB_TELEGRAM_SECRET_TOKEN")

    @property
    def base_url(self) -> str:
        return f"{self.api_base_url.rstrip('/')}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.api_base_url.rstrip('/')}/file/bot"
