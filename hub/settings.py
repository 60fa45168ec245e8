"""Settings from ``HUB_*`` environment variables; the defaults are the embedded setup.

Embedded: SQLite in ``./var/`` (WAL) and in-memory pub/sub, no services needed.
Scale-out: ``HUB_DATABASE_URL=postgresql+asyncpg://…`` and ``HUB_REDIS_URL=redis://…``,
same code, several processes.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    var_dir: Path = Path("var")
    database_url: str = ""  # empty: sqlite+aiosqlite under var_dir
    redis_url: str = ""  # empty: in-memory pub/sub and sessions
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # how customers reach us, for links in auto-replies
    secret_key: str = ""  # empty: generated once and kept in var_dir/secret_key
    node_name: str = Field(default_factory=lambda: f"hub-{secrets.token_hex(3)}")
    debug: bool = False
    seed_demo: bool = True
    # Freeze start-up objects out of the garbage collector and collect less often once
    # started (``hub.services.GC_THRESHOLDS``). The test suite turns it off: one pytest
    # process hosts many hubs and real-time audio, and must keep Python's defaults.
    tune_gc: bool = True

    # web chat
    chat_max_attachment_bytes: int = 5 * 1024 * 1024
    chat_rate_per_minute: int = 30
    max_request_bytes: int = 10 * 1024 * 1024

    # routing
    dispatch_interval_seconds: float = 1.0  # timer for aging, overflow and offer timeouts
    sse_heartbeat_seconds: float = 15.0

    # voice (the SIP endpoint's own settings are HUB_VOICE_*, see channels.voice.settings)
    voice_enabled: bool = True
    voice_drain_seconds: float = 30.0  # a clean shutdown waits this long for active calls

    # speech
    transcribe_voice_notes: bool = True  # Telegram voice notes etc. through faster-whisper

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+asyncpg://" + url.split("://", 1)[1]
            return url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'hub.sqlite3').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def ensure_dirs(self) -> None:
        for sub in ("", "attachments", "sessions", "prompts", "recordings"):
            (self.var_dir / sub).mkdir(parents=True, exist_ok=True)

    def resolved_secret_key(self) -> str:
        """A stable secret: from the environment, or created once under var_dir."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if not path.exists():
            self.ensure_dirs()
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()
