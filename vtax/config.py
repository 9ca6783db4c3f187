"""Settings: every knob is an environment variable `VTAX_<NAME>` with a documented default."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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
    queue_timezone: str = Field("Asia/Shanghai", description="The day of the daily statistics.")
    # Signaling
    ping_interval_s: float = Field(5.0, gt=0, le=60)
    ping_timeout_s: float = Field(5.0, gt=0, le=60)
    allowed_origins: list[str] = Field(default_factory=list, description="Empty: same origin.")
    max_event_bytes: int = Field(64 * 1024, ge=1024)
    resume_grace_s: float = Field(30.0, gt=0, le=600, description="Time to resume a dropped call.")
    resume_buffer: int = Field(256, ge=8, le=10_000, description="Signals kept per session.")
    node_timeout_s: float = Field(10.0, gt=0, description="Silence after which a node is dead.")
    drain_timeout_s: float = Field(10.0, ge=0, description="SIGTERM: time to move clients away.")
    signal_rate: float = Field(50.0, gt=0, description="rtc:signal per second per connection.")
    signal_burst: int = Field(200, ge=1)
    join_rate: float = Field(0.2, gt=0, description="queue:join per second per connection.")
    join_burst: int = Field(5, ge=1)
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
    # Text messages (vtax/sms.py): sign-in codes, reminders
    sms_http_url: str = Field("", description="SMS gateway endpoint; empty: write to the log.")
    sms_http_token: str = Field("", description="Bearer token for the SMS gateway.")
    sms_timeout_s: float = Field(10.0, gt=0, le=120, description="SMS gateway answer timeout.")
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

    @model_validator(mode="after")
    def _argon2_memory(self) -> Settings:
        if self.password_hash_memory_kib < 8 * self.password_hash_parallelism:
            raise ValueError("password_hash_memory_kib must be at least 8 x parallelism")
        return self

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
