"""Settings: one typed model, read from defaults, a TOML file, ``AI_IDE_*`` variables.

Precedence, lowest first: defaults, the ``--config`` TOML file, environment
variables (``AI_IDE_HTTP__PORT=9000`` sets ``http.port``), then explicit
overrides from the command line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from engine.catalog import ModelSpec


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


class InferenceSettings(BaseModel):
    """How models are loaded and run."""

    n_threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")
    n_batch: int = Field(512, ge=32, description="Prompt tokens per decode call.")
    n_ubatch: int = Field(512, ge=32, description="Physical micro-batch size.")
    n_seq_max: int = Field(4, ge=1, le=64, description="Sequences decoded together per model.")
    flash_attn: Literal["auto", "on", "off"] = Field("auto", description="Flash attention.")
    use_mmap: bool = Field(
        False, description="mmap weights (shared page cache) instead of reading them."
    )
    max_queue: int = Field(64, ge=1, description="Pending requests per model before 503.")
    request_timeout_seconds: float = Field(
        120.0, gt=0, description="Upper bound for one generation (504 after it)."
    )
    auto_load: bool = Field(True, description="Load a model on its first request.")
    load_timeout_seconds: float = Field(300.0, gt=0, description="Default load timeout.")


class CompletionSettings(BaseModel):
    """Defaults for code completion."""

    model: str | None = Field(None, description="Model id for completion; default: first.")
    max_tokens: int = Field(128, ge=1, le=4096, description="Default max generated tokens.")
    prompt_budget_tokens: int = Field(
        1536, ge=64, description="Tokens of context (prefix, suffix, snippets) per prompt."
    )
    cache_entries: int = Field(256, ge=0, description="Completion cache size (0 disables).")


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
    preload: list[str] = Field(default_factory=list, description="Model ids loaded at start.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")
    http: HttpSettings = Field(default_factory=HttpSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    completion: CompletionSettings = Field(default_factory=CompletionSettings)


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
