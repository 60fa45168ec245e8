"""Settings from ``HUB_*`` environment variables; the defaults are the embedded setup.

Embedded: SQLite in ``./var/`` (WAL) and in-memory pub/sub, no services needed.
Scale-out: ``HUB_DATABASE_URL=postgresql+asyncpg://…`` and ``HUB_REDIS_URL=redis://…``,
same code, several processes.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.login_throttle import ThrottlePolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    var_dir: Path = Path("var")
    database_url: str = ""  # empty: sqlite+aiosqlite under var_dir
    redis_url: str = ""  # empty: in-memory pub/sub and sessions
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # how customers reach us, for links in auto-replies
    # The demo account API (GET /demo/accounts/<number>, hub.demo_api) that the demo phone
    # menu's lookup asks: served with the demo seed, to loopback clients only unless this
    # is on (a hub whose public URL is not on loopback).
    demo_api_public: bool = False
    # Voice inboxes' published dialogs answer calls (hub.call_ivr); off: calls queue directly.
    ivr_enabled: bool = True
    # A call to a dialog's inbox rings at most this long for the IVR's engines (loading at
    # start) before it is answered anyway (hub.call_ivr.VoiceIvr.ready_to_answer).
    ivr_answer_wait_seconds: float = 30.0
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

    # sign-in (hub.login_throttle): per account growing delays then a lock; per address
    # only a slow-down. Proxies listed here (IPs or CIDRs) may name the client in
    # X-Forwarded-For; nobody else can.
    login_free_attempts: int = 5
    login_lock_after: int = 10
    login_lock_seconds: float = 900.0
    login_first_delay_seconds: float = 1.0
    login_max_delay_seconds: float = 60.0
    login_address_free_failures: int = 20
    login_address_window_seconds: float = 600.0
    login_address_max_delay_seconds: float = 5.0
    trusted_proxies: str = ""

    # routing
    dispatch_interval_seconds: float = 1.0  # timer for aging, overflow and offer timeouts
    sse_heartbeat_seconds: float = 15.0
    # An agent whose console tabs have all been gone this long (streams closed, no keepalive
    # from any hub process) goes offline, and their work is handed back.
    presence_grace_seconds: float = 60.0
    # A web chat customer whose page has been gone this long before an agent accepted the
    # chat has abandoned it.
    chat_abandon_grace_seconds: float = 60.0
    # A web chat, SMS or Telegram customer who leaves a text dialog's question unanswered
    # this long gets the dialog's no-input handling (a text session can last hours).
    text_dialog_no_input_seconds: float = 900.0
    # The organization's time zone: "today" on the wallboard is this zone's day.
    timezone: str = "UTC"

    # background jobs (hub.jobs)
    jobs_poll_seconds: float = 1.0  # each process looks for due jobs this often (and on commit)
    jobs_lease_seconds: float = 300.0  # a claimed job's lease, renewed while it runs
    jobs_concurrency: int = 4  # jobs one process runs at a time
    jobs_retry_seconds: float = 10.0  # the first retry's delay, doubling per attempt

    # voice (the SIP endpoint's own settings are HUB_VOICE_*, see channels.voice.settings)
    voice_enabled: bool = True
    voice_drain_seconds: float = 30.0  # a clean shutdown waits this long for active calls
    # click to dial (hub.outbound_calls): numbers typed without "+" are read in this region
    # (ISO 3166 code); the customer's phone rings this long before "no answer"; the agent's
    # own phone, asked to auto-answer, is given this long to pick up.
    default_region: str = "US"
    dial_timeout_seconds: float = 30.0
    dial_agent_timeout_seconds: float = 20.0

    # HTTPS for `contacthub run` (both set: TLS). Browsers give the softphone a microphone
    # only on a secure origin: HTTPS, or http://localhost.
    tls_certfile: str = ""
    tls_keyfile: str = ""
    # the browser softphone (hub.softphone): worker processes holding the browsers' WebRTC
    # peers, the UDP ports their ICE uses, the address put in ICE candidates behind a
    # 1:1 NAT, STUN/TURN servers for remote agents, and how long a lost browser may
    # take to reconnect before the call stays on hold
    softphone_enabled: bool = True
    softphone_workers: int = 1
    softphone_port_min: int = 40000
    softphone_port_max: int = 40999
    softphone_public_address: str = ""
    softphone_codecs: str = "PCMU"  # in order of preference; "opus,PCMU" only when asked
    softphone_stun_urls: str = ""  # comma-separated, e.g. stun:stun.example.org:3478
    softphone_turn_url: str = ""  # e.g. turn:turn.example.org:3478?transport=udp
    softphone_turn_username: str = ""
    softphone_turn_password: str = ""
    softphone_connect_seconds: float = 20.0  # a browser asked to connect must within this
    softphone_reconnect_seconds: float = 20.0  # a lost browser may reconnect within this
    # staffing (hub.staffing): the shift plan's integer program stops after this long and
    # keeps the best plan found (the page says it may not be the cheapest)
    staffing_solver_seconds: float = 20.0
    # when nobody can answer (hub.nobody_answers, hub.voicemail, hub.callbacks)
    voicemail_greeting: str = (
        "Nobody can take your call right now. Please leave a message after the tone,"
        " and press the pound key when you are done."
    )
    voicemail_max_seconds: float = 120.0  # a message ends at this length
    prompt_recording_max_seconds: float = 120.0  # a recorded prompt may be this long…
    prompt_recording_max_mb: float = 8.0  # …and its WAV this large (below max_request_bytes)
    voicemail_silence_seconds: float = 4.0  # … or after this much silence once speech began
    voicemail_silence_rms: float = 300.0  # frames quieter than this count as silence
    voicemail_no_speech_seconds: float = 10.0  # a caller who says nothing this long: no message
    callback_digits_timeout_seconds: float = 8.0  # a caller keying a callback number
    callback_poll_seconds: float = 1.0  # accepted callbacks are looked for this often
    nobody_poll_seconds: float = 0.5  # a waiting caller's maximum wait is checked this often
    # limits on calls out (hub.call_limits): allowed E.164 prefixes (empty: the country of
    # HUB_DEFAULT_REGION), refused number types, and daily caps (0: none)
    calls_out_prefixes: str = ""
    calls_out_refused_types: str = "PREMIUM_RATE,SHARED_COST,UAN,PERSONAL_NUMBER"
    calls_out_daily_cap_inbox: int = 0
    calls_out_daily_cap_agent: int = 0
    # retention (hub.retention): recordings and voicemail audio older than this many days
    # are deleted (0: kept forever), checked every retention_interval_seconds
    retention_days: float = 0.0
    retention_interval_seconds: float = 3600.0
    # reports (hub.reports): the rollup job follows new events this often; repeat contacts
    # are counted for each of these windows (days); a report covers at most this many days.
    reports_rollup_seconds: float = 30.0
    reports_repeat_days: str = "1,7"
    reports_max_days: int = 400

    # inboxes (web.inboxes_admin): how long "test connection" waits for each service
    inbox_test_timeout_seconds: float = 10.0
    # hub.leases: one process holds each SMPP bind, IMAP poller and Telegram poll; it renews
    # its lease this often, and another process takes over once the lease is this old
    lease_seconds: float = 30.0
    lease_renew_seconds: float = 10.0

    # speech
    transcribe_voice_notes: bool = True  # Telegram voice notes etc. through faster-whisper

    # QA: every call recording transcribed after hang-up (hub.transcription)
    qa_transcribe_calls: bool = True  # run the qa.transcribe jobs in this process
    qa_transcribe_workers: int = 1  # recordings worked on at once (one process each)
    qa_transcribe_nice: int = 10  # the workers' nice value (added to the hub's)
    qa_transcribe_idle: bool = True  # and SCHED_IDLE: they run only on otherwise idle CPU
    qa_redaction_margin_ms: int = 250  # silenced either side of a redacted word
    qa_silence_seconds: float = 3.0  # a pause this long counts as a silence in the metrics
    # QA (hub.qa): the search index follows new segments and messages this often (and when
    # woken); 0 days of retention keeps transcripts and evaluations for ever.
    qa_index_enabled: bool = True
    qa_index_seconds: float = 1.0
    qa_transcript_retention_days: int = 0
    qa_evaluation_retention_days: int = 0

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """A wrong zone is refused at start, not on the first wallboard render."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+asyncpg://" + url.split("://", 1)[1]
            return url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'hub.sqlite3').resolve()}"

    @property
    def login_policy(self) -> ThrottlePolicy:
        return ThrottlePolicy(
            free_attempts=self.login_free_attempts,
            lock_after=self.login_lock_after,
            lock_seconds=self.login_lock_seconds,
            first_delay_seconds=self.login_first_delay_seconds,
            max_delay_seconds=self.login_max_delay_seconds,
            address_free_failures=self.login_address_free_failures,
            address_window_seconds=self.login_address_window_seconds,
            address_max_delay_seconds=self.login_address_max_delay_seconds,
        )

    @property
    def self_url(self) -> str:
        """Where the hub reaches itself (a dialog lookup URL that starts with "/"): the
        public URL, else the address it serves on (a wildcard bind is reached on loopback)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        wildcard = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}  # noqa: S104
        host = wildcard.get(self.host, self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

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
