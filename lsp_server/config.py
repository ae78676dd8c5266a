"""Editor-side settings of the language server, with safe fallbacks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SidecarConfig(BaseModel):
    """The REST sidecar of the language server."""

    model_config = ConfigDict(extra="ignore")

    enabled: bool = True
    port: int = Field(8765, ge=1, le=65535)


class LspConfig(BaseModel):
    """Settings an editor may send (``initializationOptions``, ``workspace/configuration``)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    model: str | None = Field(None, description="Model id used for completion.")
    max_tokens: int = Field(64, ge=1, le=4096, alias="maxTokens")
    enabled_languages: dict[str, bool] = Field(
        default_factory=dict, alias="languages", description="language id -> enabled"
    )
    enabled: bool = Field(True, description="Master switch for completion.")
    sidecar: SidecarConfig = Field(default_factory=SidecarConfig)

    def language_enabled(self, language: str | None) -> bool:
        """Whether completion is on for a (canonical or LSP) language id."""
        if not self.enabled:
            return False
        return language is None or self.enabled_languages.get(language, True)


def parse_config(raw: Any, current: LspConfig) -> tuple[LspConfig, str | None]:
    """Merge editor settings over ``current``; each invalid setting gets its default.

    Returns the new configuration and, when something was rejected, a message
    for the user naming the settings that were ignored.
    """
    if raw is None:
        return current, None
    if not isinstance(raw, dict):
        return current, "ai-ide: settings must be an object; keeping the current ones"
    merged = {**current.model_dump(by_alias=True), **raw}
    try:
        return LspConfig.model_validate(merged), None
    except ValidationError as exc:
        bad = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})
    defaults = LspConfig().model_dump(by_alias=True)
    for key in bad:
        if key in defaults:
            merged[key] = defaults[key]
        else:
            merged.pop(key, None)
    try:
        config = LspConfig.model_validate(merged)
    except ValidationError:
        config = LspConfig()
    return config, f"ai-ide: invalid settings ({', '.join(bad)}); using the defaults for them"
