"""Settings: every knob is an environment variable `VTAX_<NAME>` with a documented default."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vtax.proxies import parse_networks

ENV_PREFIX = "VTAX_"


class SettingsError(ValueError):
    """A setting from the environment has a value that cannot be used."""


class Settings(BaseModel):
    """Process settings. Field `x` is read from `VTAX_X`; lists are comma-separated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(Path("var"), description="Folder for the SQLite file and the key.")
    database_url: str = Field("", description="SQLAlchemy async URL; default SQLite in data_dir.")
    redis_url: str | None = Field(None, description="Set to scale out over Redis.")
    redis_prefix: str = Field("vtax:", max_length=64, description="Prefix of every Redis key.")
    redis_max_connections: int = Field(
        64, ge=4, le=10_000, description="Per pool (queue, live sessions); a burst waits."
    )
    secret_key: str = Field("", description="Token signing key; default: data_dir/secret.key.")
    token_ttl_s: int = Field(8 * 3600, ge=60, le=7 * 24 * 3600)
    recordings_dir: Path = Path("recordings")
    documents_dir: Path = Field(Path("documents"), description="Folder for delivered documents.")
    kpi_fold_interval_s: float = Field(
        1.0, gt=0, le=300, description="How often a node folds the KPI journal into the rollup."
    )
    documents_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest document.")
    web_dir: Path = Field(Path(__file__).resolve().parent.parent / "web")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # Queue
    offer_timeout_s: float = Field(15.0, gt=0, le=600)
    wrapup_s: float = Field(30.0, ge=0, le=3600)
    default_handle_s: float = Field(300.0, gt=0, description="Handle time assumed for the ETA.")
    # Routing (docs/routing.md)
    queues_file: Path | None = Field(
        None, description="Per-queue routing (TOML/JSON); default: every category, always open."
    )
    queue_grace_s: float = Field(60.0, ge=0, le=3600, description="A dropped taxpayer's place.")
    missed_offers_limit: int = Field(2, ge=1, le=100, description="Then the agent is away.")
    reject_delay_s: float = Field(10.0, ge=0, le=600, description="No offers after a reject.")
    no_answer_delay_s: float = Field(10.0, ge=0, le=600, description="No offers after a miss.")
    queue_update_interval_s: float = Field(2.0, gt=0, le=60, description="queue:update at most.")
    queue_tick_s: float = Field(0.1, gt=0, le=5, description="Timer and push resolution.")
    stats_push_s: float = Field(2.0, gt=0, le=300, description="queue:stats to supervisors.")
    service_level_target: float = Field(
        0.8, gt=0, le=1, description="The share answered within T the service aims for."
    )
    longest_wait_alert_s: float = Field(
        300.0, gt=0, le=86400, description="The wallboard alerts when a ticket waits longer."
    )
    # Signaling
    ping_interval_s: float = Field(5.0, gt=0, le=60)
    ping_timeout_s: float = Field(5.0, gt=0, le=60)
    allowed_origins: list[str] = Field(default_factory=list, description="Empty: same origin.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (addresses, CIDR blocks) whose X-Forwarded-For is believed; "
        "empty: the TCP peer is the client (docs/identity.md).",
    )
    connect_timeout_s: float = Field(
        10.0, gt=0, le=300, description="A socket that has not signed in by then is closed."
    )
    http_idle_timeout_s: float = Field(
        15.0, gt=0, le=3600, description="An HTTP connection without a whole request is closed."
    )
    max_event_bytes: int = Field(64 * 1024, ge=1024)
    resume_grace_s: float = Field(30.0, gt=0, le=600, description="Time to resume a dropped call.")
    socket_recheck_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="Every open socket's token is checked again this often (a person disabled "
        "or a kiosk revoked by the CLI on the embedded default, where no Redis carries the "
        "cut): its socket is cut. 0: never.",
    )
    resume_buffer: int = Field(256, ge=8, le=10_000, description="Signals kept per session.")
    resume_buffer_bytes: int = Field(
        256 * 1024, ge=64 * 1024, le=64 * 1024 * 1024, description="Their bytes (JSON), at most."
    )
    node_timeout_s: float = Field(10.0, gt=0, description="Silence after which a node is dead.")
    drain_timeout_s: float = Field(10.0, ge=0, description="SIGTERM: time to move clients away.")
    signal_rate: float = Field(50.0, gt=0, description="rtc:signal per second per connection.")
    signal_burst: int = Field(200, ge=1)
    join_rate: float = Field(0.2, gt=0, description="queue:join per second per connection.")
    join_burst: int = Field(5, ge=1)
    validate_outgoing: bool = Field(
        False, description="Check every event and answer the server sends against its model."
    )
    metrics_token: str = Field(
        "", description="Where set, /metrics answers only with this bearer token."
    )
    log_format: str = Field("text", pattern="^(text|json)$")
    uvloop: bool = Field(True, description="Run the node on uvloop (faster relay).")
    gc_tuning: bool = Field(True, description="Freeze start-up objects, collect less often.")
    # ICE
    stun_urls: list[str] = Field(default_factory=list)
    turn_urls: list[str] = Field(default_factory=list)
    turn_secret: str = ""
    turn_ttl_s: int = Field(3600, ge=60)
    # Recording (docs/recording.md)
    recording_mode: Literal["off", "ask"] = Field(
        "ask", description="ask: the taxpayer page asks for consent; off: never record."
    )
    recording_on_refusal: Literal["continue", "end"] = Field(
        "continue", description="continue unrecorded (the agent is told), or end the session."
    )
    recording_retention_days: int = Field(180, ge=1, le=36500)
    recording_prune_interval_s: float = Field(3600.0, gt=0, description="Worker's prune period.")
    recording_keyframe_wait_s: float = Field(
        10.0, gt=0, le=120, description="Wait this long for a video keyframe, then audio only."
    )
    recording_job_ttl_s: float = Field(60.0, gt=0, description="An unclaimed job expires.")
    recorder_capacity: int = Field(8, ge=1, le=500, description="Sessions per recorder worker.")
    recorder_autostart: bool = Field(
        True, description="`vtax serve` on the embedded default starts one recorder worker."
    )
    recorder_url: str = Field("", description="Node URL for `vtax recorder`; default host:port.")
    # Time: what people read, KPI days, the day of the live statistics
    service_timezone: str = Field("Asia/Shanghai", description="The service's IANA time zone.")
    # Text messages (vtax/sms.py): sign-in codes, reminders
    sms_http_url: str = Field("", description="SMS gateway endpoint; empty: write to the log.")
    sms_http_token: str = Field("", description="Bearer token for the SMS gateway.")
    sms_timeout_s: float = Field(10.0, gt=0, le=120, description="SMS gateway answer timeout.")
    # Monitor and whisper (docs/recording.md, "The media leg"; vtax/app/monitor.py)
    monitor_allowed: bool = Field(
        True, description="Supervisors may monitor live calls (silently) and whisper to agents."
    )
    monitor_notice: bool = Field(
        True,
        description="Tell the taxpayer at the start of every call that calls may be monitored "
        "for quality (the same notice on every call, monitored or not).",
    )
    monitor_max_per_session: int = Field(
        4, ge=1, le=50, description="Supervisors monitoring one session at once."
    )
    monitor_leg_join_s: float = Field(
        15.0,
        gt=0,
        le=300,
        description="A media-leg worker sent a monitoring job that has not joined within this "
        "time is passed over: the job goes to another worker (or the same, if it is the only one).",
    )
    # Recording jobs (vtax/recording/jobs.py)
    recording_job_lease_s: float = Field(
        30.0,
        gt=0,
        le=600,
        description="A worker that took a recording job and has not joined within this time is "
        "taken for dead: the job goes back to the queue for another worker (Redis).",
    )
    # Appointments (docs/appointments.md): slots, bookings, check-in timing, callbacks,
    # reminders; their times and days are `service_timezone`'s (above)
    appointment_slot_minutes: int = Field(30, ge=5, le=240, description="Length of a slot.")
    appointment_handle_minutes: int = Field(
        15, ge=1, le=240, description="Agent time a booking takes (slot capacity per agent)."
    )
    appointment_live_share: float = Field(
        0.5, ge=0, le=1, description="Share of the planned agents' time kept for the live queue."
    )
    appointment_lead_working_days: int = Field(
        1, ge=0, le=30, description="Earliest bookable day, in working days (1: the next one)."
    )
    appointment_horizon_working_days: int = Field(
        5, ge=0, le=60, description="Latest bookable day, in working days from today."
    )
    appointment_cancel_cutoff_minutes: int = Field(
        120, ge=0, le=7 * 24 * 60, description="No cancelling or rescheduling closer to T."
    )
    appointment_checkin_early_minutes: int = Field(
        10, ge=0, le=240, description="Check-in opens at T minus this."
    )
    appointment_late_minutes: int = Field(
        10, ge=0, le=240, description="Checked in by T plus this: ahead of walk-ins."
    )
    appointment_grace_minutes: int = Field(
        15, ge=0, le=240, description="No check-in by T plus this: a no-show (>= late)."
    )
    appointment_no_show_limit: int = Field(
        3, ge=1, le=100, description="No-shows in a month that block booking until staff lift it."
    )
    appointment_reminder_minutes: str = Field(
        "1440,15",
        pattern=r"^\d{1,5}(,\d{1,5}){0,4}$",
        description="Reminders this many minutes before T (comma-separated).",
    )
    appointment_materials_max: int = Field(10, ge=0, le=50, description="Materials per booking.")
    appointment_outbox_lease_s: float = Field(
        60.0, gt=0, le=3600, description="A claimed reminder is another node's again after this."
    )
    appointment_send_attempts: int = Field(
        5, ge=1, le=50, description="Tries to hand a reminder to the SMS gateway, then failed."
    )
    callback_offer_wait_s: float = Field(
        300.0, ge=0, description="Offer a callback when the estimated wait is longer."
    )
    callback_notify_positions: int = Field(
        3, ge=1, le=100, description="Tell a callback taxpayer when this close to the head."
    )
    callback_window_s: float = Field(
        120.0, gt=0, le=3600, description="Time to come back and connect after the notice."
    )
    callback_attempts: int = Field(2, ge=1, le=10, description="Notices before abandoning.")
    callback_retry_delay_s: float = Field(
        120.0, ge=0, le=3600, description="Pause after a missed window before the next notice."
    )

    # Identity (docs/identity.md): taxpayer sign-in, registry, tokens
    identity_providers: list[str] = Field(
        default_factory=lambda: ["sms"],
        description="Taxpayer sign-in methods offered, any of sms, oidc, kiosk.",
    )
    sign_in_code_ttl_s: float = Field(300.0, gt=0, le=3600, description="A code's life.")
    sign_in_code_attempts: int = Field(5, ge=1, le=20, description="Tries at one code.")
    sign_in_code_resend_s: float = Field(60.0, ge=0, le=3600, description="Between two codes.")
    sign_in_code_window_s: float = Field(
        3600.0, gt=0, le=86400, description="The window of the per-number/address limits."
    )
    sign_in_code_per_number: int = Field(5, ge=1, le=1000, description="Codes per number.")
    sign_in_code_per_address: int = Field(20, ge=1, le=100_000, description="Codes per address.")
    sign_in_code_tries_per_address: int = Field(
        50, ge=1, le=100_000, description="Code tries per client address per window (any number)."
    )
    taxpayer_access_ttl_s: int = Field(
        900, ge=30, le=24 * 3600, description="A taxpayer access token's life."
    )
    taxpayer_refresh_ttl_s: int = Field(
        12 * 3600, ge=60, le=30 * 24 * 3600, description="A refresh family's idle life."
    )
    step_up_max_age_s: int = Field(
        300, ge=30, le=24 * 3600, description="A high-level sign-in counts this long for step-up."
    )
    step_up_acr: int = Field(4, ge=3, le=5, description="The level risky items require.")
    step_up_receipts: bool = Field(
        True,
        description="Signing a delivery receipt needs a step-up too (risky catalog items "
        "always do).",
    )
    records_need_second_factor: bool = Field(
        True,
        description="Recordings and the CSV export open only for a staff sign-in with the "
        "authenticator's code (set it up on the supervisor page).",
    )
    oidc_issuer: str = Field("", description="The OpenID Provider's issuer URL; empty: no OIDC.")
    oidc_client_id: str = Field("", description="This service's client id at the provider.")
    oidc_client_secret: str = Field("", description="Its secret (client_secret_basic).")
    oidc_redirect_uri: str = Field("", description="The callback URL registered there.")
    oidc_post_logout_redirect_uri: str = Field("", description="Where the provider sends back.")
    oidc_scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "vtax"], description="Scopes asked for."
    )
    oidc_enterprises_claim: str = Field(
        "vtax_enterprises", description="The claim listing the enterprises and roles."
    )
    oidc_clock_skew_s: int = Field(60, ge=0, le=600, description="Leeway on exp/iat/auth_time.")
    oidc_flow_ttl_s: float = Field(600.0, gt=0, le=3600, description="Time to finish a sign-in.")
    kiosk_nonce_ttl_s: float = Field(120.0, gt=0, le=3600, description="A kiosk nonce's life.")
    kiosk_challenges_per_minute: int = Field(
        10, ge=1, le=10_000, description="Sign-in nonces one kiosk may ask for per minute."
    )
    kiosk_assertion_max_age_s: float = Field(
        60.0, gt=0, le=600, description="How old (or early) a kiosk's signed assertion may be."
    )
    staff_max_failures: int = Field(5, ge=1, le=100, description="Failed sign-ins, then locked.")
    staff_lockout_s: float = Field(900.0, gt=0, le=86400, description="How long a lockout is.")

    # Assistant (docs/assistant.md): knowledge base, retrieval, consultation
    assistant_threshold: float = Field(
        0.35, ge=0, le=1, description="Confidence under which the assistant offers a person."
    )
    assistant_max_failures: int = Field(
        2, ge=1, le=20, description="No-answers and 'not helpful' votes, then the hand-off."
    )
    assistant_refresh_s: float = Field(
        5.0, gt=0, le=3600, description="How often a node checks the knowledge base revision."
    )
    assistant_retrieval: Literal["bm25", "hybrid", "embedding"] = Field(
        "bm25",
        description="bm25: the baseline; hybrid: BM25 fused with e5 embeddings (needs the "
        "`embeddings` extra); embedding: embeddings alone (for comparison).",
    )
    assistant_embedding_threshold: float = Field(
        0.88, ge=0, le=1, description="Cosine under which hybrid retrieval offers a person."
    )
    assistant_seed: bool = Field(
        True, description="Import the shipped seed knowledge base into an empty one at start."
    )
    assistant_rate: float = Field(
        2.0, gt=0, le=1000, description="consultation:* events a connection may send per second."
    )
    assistant_burst: int = Field(
        10, ge=1, le=10000, description="consultation:* events a connection may send at once."
    )

    # Confirmation form (vtax/app/confirmation.py; docs/protocol.md, "Confirmation form")
    form_rate: float = Field(
        2.0, gt=0, le=1000, description="confirmation:* events a connection may send per second."
    )
    form_burst: int = Field(
        20, ge=1, le=10000, description="confirmation:* events a connection may send at once."
    )
    # In-call chat (vtax/app/chat.py; docs/protocol.md, "In-call chat")
    chat_max_chars: int = Field(
        2000, ge=1, le=10_000, description="Characters a chat message may have."
    )
    chat_rate: float = Field(
        1.0, gt=0, le=1000, description="chat:* events a connection may send per second."
    )
    chat_burst: int = Field(
        10, ge=1, le=10000, description="chat:* events a connection may send at once."
    )
    # Screen share and call quality (vtax/app/screen.py, vtax/app/quality.py; docs/protocol.md)
    quality_rate: float = Field(
        0.2, gt=0, le=1000, description="call:quality samples a connection may send per second."
    )
    quality_burst: int = Field(
        3, ge=1, le=10000, description="call:quality samples a connection may send at once."
    )
    quality_max_samples: int = Field(
        4000, ge=1, le=1_000_000, description="Quality samples kept per session (then refused)."
    )
    pointer_rate: float = Field(
        10.0, gt=0, le=1000, description="screen:pointer events a connection may send per second."
    )
    pointer_burst: int = Field(
        20, ge=1, le=10000, description="screen:pointer events a connection may send at once."
    )

    # Sign-in (vtax/auth.py Passwords, vtax/app/signin.py; docs/signin.md)
    password_hash_time_cost: int = Field(
        3, ge=1, le=100, description="argon2id passes for new hashes (argon2-cffi default)."
    )
    password_hash_memory_kib: int = Field(
        65536, ge=8, le=4 * 1024 * 1024, description="argon2id memory per hash, KiB."
    )
    password_hash_parallelism: int = Field(
        4, ge=1, le=64, description="argon2id lanes (memory must be >= 8 KiB per lane)."
    )
    password_hash_threads: int = Field(
        2, ge=1, le=64, description="Password checks at once, off the event loop."
    )
    password_hash_max_waiting: int = Field(
        32, ge=0, le=10_000, description="Checks that may wait for a thread; then 429."
    )
    login_address_rate: float = Field(
        0.2, gt=0, description="Staff sign-in attempts per second per client address."
    )
    login_address_burst: int = Field(20, ge=1, description="Attempts an address may burst.")
    login_account_rate: float = Field(
        1 / 30, gt=0, description="Failed sign-ins per second per username (any address)."
    )
    login_account_burst: int = Field(10, ge=1, description="Failures a username may burst.")
    # multiparty (vtax/app/multiparty.py): invitations into a live call
    invite_timeout_s: float = Field(
        30.0, gt=0, le=600, description="An invitation into a live call expires unanswered."
    )
    # ---- materials the taxpayer hands in during the call (vtax/app/materials.py) ----
    materials_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest material (upload or camera still)."
    )
    materials_max: int = Field(
        50, ge=1, le=1000, description="Materials one session may hold, rejected ones included."
    )

    @model_validator(mode="after")
    def _argon2_memory(self) -> Settings:
        if self.password_hash_memory_kib < 8 * self.password_hash_parallelism:
            raise ValueError("password_hash_memory_kib must be at least 8 x parallelism")
        return self

    @model_validator(mode="after")
    def _grace_after_late(self) -> Settings:
        if self.appointment_grace_minutes < self.appointment_late_minutes:
            raise ValueError("appointment_grace_minutes must be at least appointment_late_minutes")
        return self

    @property
    def appointment_reminders(self) -> tuple[int, ...]:
        """Minutes before T of each reminder, largest first."""
        return tuple(
            sorted({int(m) for m in self.appointment_reminder_minutes.split(",")}, reverse=True)
        )

    @field_validator("service_timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r} (an IANA name such as Asia/Shanghai)"
            ) from None
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        return [str(n) for n in parse_networks(v)]

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, v: str) -> str:
        if v and not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///PATH or postgresql+asyncpg://HOST/DB")
        return v

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'vtax.db'}"

    @property
    def is_embedded_database(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read `VTAX_*` variables; raise SettingsError naming the variable on a bad value."""
        env = os.environ if env is None else env
        raw: dict[str, object] = {}
        for name, field in cls.model_fields.items():
            key = ENV_PREFIX + name.upper()
            if key not in env:
                continue
            value: object = env[key]
            if field.annotation == list[str]:
                value = [part.strip() for part in str(value).split(",") if part.strip()]
            raw[name] = value
        raw.update(overrides)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                for e in exc.errors()
            )
            raise SettingsError(problems) from None

    def signing_key(self) -> str:
        """The token key: VTAX_SECRET_KEY, else one kept in data_dir/secret.key (0600)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key
