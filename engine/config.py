"""Settings: one typed model, read from defaults, a TOML file, ``AI_IDE_*`` variables.

Precedence, lowest first: defaults, the ``--config`` TOML file, environment
variables (``AI_IDE_HTTP__PORT=9000`` sets ``http.port``), then explicit
overrides from the command line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from engine.models.catalog import ModelSpec


def default_data_dir() -> Path:
    """Where jobs, keys and assembled models live: ``$XDG_DATA_HOME/ai-ide``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ai-ide"


class HttpSettings(BaseModel):
    """The REST API (standalone server or the language server's sidecar)."""

    enabled: bool = Field(True, description="Run the REST sidecar next to the language server.")
    host: str = Field("127.0.0.1", description="Bind address. Keep loopback unless behind a proxy.")
    port: int = Field(8765, ge=0, le=65535, description="TCP port (0 picks a free one).")
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Larger request bodies get 413."
    )
    max_json_depth: int = Field(64, ge=4, description="Deeper JSON nesting gets 400.")
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="A request body not received within this gets 408."
    )
    dashboard_show_code: bool = Field(
        False,
        description="Keep the text each model produced, in memory, for the dashboard's "
        "recent requests (off: figures only, no code leaves the engine for that view).",
    )


class InferenceSettings(BaseModel):
    """How models are loaded and run."""

    n_threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")
    n_batch: int = Field(512, ge=32, description="Prompt tokens per decode call.")
    n_ubatch: int = Field(512, ge=32, description="Physical micro-batch size.")
    n_seq_max: int = Field(
        4,
        ge=1,
        le=64,
        description="Slots: sequences decoded together (one kept for the editor). With "
        "kv_cache 'per_slot' each slot gets context_length / n_seq_max KV cells.",
    )
    flash_attn: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Flash attention. 'auto': llama.cpp's choice when layers run on a GPU, "
        "off on the CPU, whose kernel sums in half precision and costs completion quality.",
    )
    kv_cache: Literal["per_slot", "shared"] = Field(
        "per_slot",
        description="'per_slot': a KV stream of context_length / n_seq_max cells for each "
        "slot (llama-server's -c / -np), the most one request can use; a decode attends "
        "over its own slot's cells only, so it is neither slowed nor changed by the "
        "prompts other slots hold. 'shared': one cache for all slots, any of which may "
        "use all of it (slots share a common prefix's cells), but whose decodes attend "
        "over every slot's cells.",
    )
    swa_cache: Literal["full", "window"] = Field(
        "full",
        description="Models with sliding-window attention (Gemma 3). 'full': those layers "
        "keep a cache as large as the slot, so a cached prompt prefix survives any edit and "
        "a moved window is shifted into place (cache_reuse_tokens). 'window': they keep "
        "their window plus a micro-batch (llama-server's default); each decoded token "
        "attends over fewer cells, but a prompt whose change lies more than about n_ubatch "
        "tokens before its end is read again, and no chunk is shifted.",
    )
    use_mmap: bool = Field(
        False, description="mmap weights (shared page cache) instead of reading them."
    )
    weight_repack: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Let llama.cpp repack CPU weights into its faster layouts (its 'extra "
        "buffer types', llama-server's --repack). 'auto' turns it off where llama.cpp was "
        "built with Intel AMX, whose matrix multiply crashes on K-quants "
        "(ggml-org/llama.cpp#20824).",
    )
    max_queue: int = Field(64, ge=1, description="Pending requests per model before 503.")
    cache_reuse_tokens: int = Field(
        256,
        ge=0,
        description="When a prompt loses tokens in the middle (its window moved, a snippet "
        "went away), cached runs of at least this many tokens are shifted into place "
        "instead of decoded again, like llama-server's --cache-reuse (0: off).",
    )
    stream_interval_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        description="Longest a streamed token waits in a model's runner so that the tokens "
        "of a fast decode cross to the server together; a request's first token and its "
        "end are never held (0: every token on its own).",
    )
    request_timeout_seconds: float = Field(
        120.0, gt=0, description="Upper bound for one generation (504 after it)."
    )
    auto_load: bool = Field(True, description="Load a model on its first request.")
    load_timeout_seconds: float = Field(300.0, gt=0, description="Default load timeout.")
    isolation: Literal["process", "thread"] = Field(
        "process",
        description="Run each loaded model in a child process (a native crash ends that "
        "model, not the server) or on a thread of the server (debugging).",
    )
    max_crashes: int = Field(
        3, ge=1, description="Crashes within crash_window_seconds before a model stays 'error'."
    )
    crash_window_seconds: float = Field(600.0, gt=0, description="Window for max_crashes.")
    restart_backoff_seconds: float = Field(
        1.0, ge=0, description="Wait before restarting a crashed model; doubles per crash."
    )


class CompletionSettings(BaseModel):
    """Defaults for code completion."""

    model: str | None = Field(None, description="Model id for completion; default: first.")
    max_tokens: int = Field(128, ge=1, le=4096, description="Default max generated tokens.")
    prompt_budget_tokens: int = Field(
        1536, ge=64, description="Tokens of context (prefix, suffix, snippets) per prompt."
    )
    cache_entries: int = Field(256, ge=0, description="Completion cache size (0 disables).")
    workspace_max_files: int = Field(
        2000,
        ge=0,
        le=100_000,
        description="Source files indexed per workspace folder set for cross-file "
        "definitions (0 disables the workspace index).",
    )
    workspace_max_file_kb: int = Field(
        256, ge=1, le=16_384, description="Workspace files larger than this are skipped (KiB)."
    )
    workspace_max_documents: int = Field(
        6,
        ge=0,
        le=64,
        description="Workspace files (not open) searched for definitions per completion.",
    )
    ring_chunks: int = Field(
        8,
        ge=0,
        le=256,
        description="Recently viewed or edited chunks kept as extra context (0 disables).",
    )
    ring_chunk_lines: int = Field(
        32, ge=4, le=512, description="Lines per recently viewed or edited chunk."
    )
    other_files: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Context from the editor's other files (their definitions, the "
        "workspace's, their ring chunks) in completion prompts: 'auto' gives it to models "
        "with fill-in-the-middle tokens (code models, trained on such context) and not to "
        "models without them, which copy what they are shown (Gemma 3 270M: a third fewer "
        "exact cross-file answers with it); the document's own context is always used.",
    )


class JobSettings(BaseModel):
    """Async jobs (``options.async`` requests and background batches)."""

    max_attempts: int = Field(
        3,
        ge=1,
        le=100,
        description="Runs of a job that end in a crash (of its model or of the server) "
        "before it fails for good instead of running again.",
    )
    lease_seconds: float = Field(
        30.0,
        gt=0,
        description="A running job is leased to its replica for this long, renewed every "
        "third of it; a replica that dies loses its jobs to another after the lease expires.",
    )
    poll_interval_seconds: float = Field(
        1.0,
        gt=0,
        description="How often the job table is checked for work queued by other replicas "
        "(a job submitted here starts at once).",
    )
    concurrency: int = Field(4, ge=1, le=64, description="Jobs one replica runs at once.")


class StoreSettings(BaseModel):
    """Where jobs, batches, API keys, webhooks and metrics are stored."""

    url: SecretStr | None = Field(
        None,
        description="Database URL. Unset: the SQLite file in data_dir (one process). "
        "postgresql://user:password@host:5432/db: PostgreSQL, shared by several API replicas.",
    )
    pool_size: int = Field(
        5, ge=1, le=100, description="PostgreSQL connections a replica keeps open."
    )
    connect_timeout_seconds: float = Field(10.0, gt=0, description="PostgreSQL connect timeout.")

    @model_validator(mode="after")
    def _known_scheme(self) -> StoreSettings:
        if self.url is not None:
            scheme = self.url.get_secret_value().split(":", 1)[0].lower()
            if scheme not in {"sqlite", "postgresql", "postgres", "postgresql+psycopg"}:
                raise ValueError("store.url must start with postgresql:// or sqlite://")
        return self


class MetricsSettings(BaseModel):
    """How long inference records (the figures under /monitoring) are kept."""

    retention_days: float = Field(
        30.0,
        ge=0,
        description="Inference records older than this are pruned, hourly; the all-time "
        "counters (/monitoring/prometheus) keep their sums. 0: keep every record.",
    )


class WebhookSettings(BaseModel):
    """Webhook delivery: which targets are allowed, timeouts and the retry policy."""

    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hostnames, IP addresses or CIDR networks that webhooks may target even "
        "though they are private, loopback or link-local (metadata addresses never).",
    )
    connect_timeout_seconds: float = Field(5.0, gt=0, description="TCP/TLS connect timeout.")
    timeout_seconds: float = Field(
        10.0, gt=0, description="Upper bound for one attempt: resolve, connect, send, read."
    )
    max_response_bytes: int = Field(
        16 * 1024, ge=0, description="Bytes of a receiver's response body read at most."
    )
    max_attempts: int = Field(8, ge=1, le=100, description="Attempts before a delivery fails.")
    backoff_base_seconds: float = Field(
        5.0, gt=0, description="First retry delay cap; doubles per attempt (full jitter)."
    )
    backoff_max_seconds: float = Field(3600.0, gt=0, description="Largest backoff delay.")
    retry_after_max_seconds: float = Field(
        3600.0, ge=0, description="Cap on the delay a receiver asks for with Retry-After."
    )
    disable_after_failures: int = Field(
        10, ge=1, description="Consecutive failed deliveries that disable a subscription."
    )
    max_concurrency: int = Field(8, ge=1, le=256, description="Deliveries sent at once.")
    max_subscriptions_per_caller: int = Field(100, ge=1, description="Subscriptions per caller.")
    poll_interval_seconds: float = Field(
        5.0, gt=0, description="How often the outbox is checked without a wake-up."
    )
    retention_days: float = Field(
        7.0, gt=0, description="Delivered and failed deliveries are kept this long."
    )


JwtAlgorithm = Literal[
    "HS256", "HS384", "HS512",
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512",
    "EdDSA",
]  # fmt: skip


class AuthSettings(BaseModel):
    """Who may call the REST API: API keys, JWTs, or both (never nobody)."""

    api_keys_enabled: bool = Field(
        True, description="Accept X-API-Key keys made by `ai-ide keys create`."
    )
    jwt_algorithms: list[JwtAlgorithm] = Field(
        default_factory=list,
        description="Pinned JWT algorithms, all of one family matching the key; "
        "empty: HS256 with jwt_secret, RS256 with jwt_public_key_file.",
    )
    jwt_secret: SecretStr | None = Field(
        None, description="HMAC secret for HS* tokens (at least 32 bytes)."
    )
    jwt_public_key_file: Path | None = Field(
        None, description="PEM public key for RS*/PS*/ES*/EdDSA tokens."
    )
    jwt_issuer: str | None = Field(None, description="Required `iss` claim, if set.")
    jwt_audience: str | None = Field(None, description="Required `aud` claim, if set.")
    jwt_leeway_seconds: int = Field(
        30, ge=0, le=60, description="Clock skew allowed for exp/nbf/iat."
    )

    @property
    def jwt_enabled(self) -> bool:
        """A JWT key is configured."""
        return self.jwt_secret is not None or self.jwt_public_key_file is not None

    @property
    def pinned_algorithms(self) -> list[str]:
        """The algorithms tokens may use (the configured ones, or the key's default)."""
        if self.jwt_algorithms:
            return list(self.jwt_algorithms)
        return ["HS256"] if self.jwt_secret is not None else ["RS256"]

    @model_validator(mode="after")
    def _one_consistent_method(self) -> AuthSettings:
        if self.jwt_secret is not None and self.jwt_public_key_file is not None:
            raise ValueError("set jwt_secret or jwt_public_key_file, not both")
        if not self.api_keys_enabled and not self.jwt_enabled:
            raise ValueError(
                "no way to authenticate: enable api_keys or configure a JWT key "
                "(the API never runs without authentication)"
            )
        if self.jwt_algorithms and not self.jwt_enabled:
            raise ValueError("jwt_algorithms needs jwt_secret or jwt_public_key_file")
        symmetric = {a.startswith("HS") for a in self.pinned_algorithms}
        if self.jwt_enabled and symmetric != {self.jwt_secret is not None}:
            raise ValueError(
                "jwt_algorithms must be HS* with jwt_secret and asymmetric "
                "(RS*/PS*/ES*/EdDSA) with jwt_public_key_file, never mixed"
            )
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if secret is not None and len(secret.encode()) < 32:
            raise ValueError("jwt_secret must be at least 32 bytes")
        return self


class RateLimitSettings(BaseModel):
    """Per-caller request limits (sliding one-minute windows) and inference concurrency."""

    enabled: bool = Field(True, description="Enforce the limits below.")
    redis_url: SecretStr | None = Field(
        None,
        description="redis://host:6379/0: keep the request windows in Redis, shared by every "
        "API replica. Unset: in this process's memory.",
    )
    redis_timeout_seconds: float = Field(
        0.25,
        gt=0,
        description="Upper bound for one Redis round trip; slower or failing: this replica "
        "limits alone (in memory) until Redis answers again.",
    )
    requests_per_minute: int = Field(1000, ge=1, description="All requests of one caller.")
    inference_per_minute: int = Field(
        100, ge=1, description="Requests under /inference and /orchestration."
    )
    model_management_per_minute: int = Field(
        50, ge=1, description="POST requests under /models (load, unload)."
    )
    batch_per_minute: int = Field(
        10, ge=1, description="Batch submissions (POST under /batch); polls count only overall."
    )
    max_concurrent_inference: int = Field(
        8, ge=1, description="Inference requests one caller may have running (streams included)."
    )


class Settings(BaseSettings):
    """Everything configurable, with defaults that run the embedded model locally."""

    model_config = SettingsConfigDict(
        env_prefix="AI_IDE_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(default_factory=default_data_dir, description="State directory.")
    catalog_file: Path | None = Field(None, description="TOML model catalog ([[models]]).")
    models: list[ModelSpec] = Field(default_factory=list, description="Inline catalog entries.")
    include_default_model: bool = Field(
        False, description="Keep the embedded model next to configured ones."
    )
    preload: list[str] | None = Field(
        None, description="Model ids loaded at start; unset: the completion model; []: none."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")
    http: HttpSettings = Field(default_factory=HttpSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    completion: CompletionSettings = Field(default_factory=CompletionSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the TOML file, the environment and explicit overrides."""

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=config_file)

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if config_file is not None:
                sources.append(TomlConfigSettingsSource(settings_cls))
            return tuple(sources)

    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"config file not found: {config_file}")
    settings: Settings = _FileSettings(**overrides)
    catalog = settings.catalog_file
    if config_file is not None and catalog is not None and not catalog.is_absolute():
        # A relative catalog path in a config file means "next to that file".
        settings.catalog_file = config_file.parent / catalog
    return settings
