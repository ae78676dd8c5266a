"""Editor-side settings of the language server, with safe fallbacks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class LspConfig(BaseModel):
    """Settings an editor may send (``initializationOptions``, ``workspace/configuration``)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    model: str | None = Field(None, description="Model id used for completion.")
    max_tokens: int = Field(64, ge=1, le=1024, alias="maxTokens")
    enabled_languages: dict[str, bool] = Field(
        default_factory=dict, alias="languages", description="language id -> enabled"
    )
    enabled: bool = Field(True, description="Master switch for completion.")


def parse_config(raw: Any, current: LspConfig) -> tuple[LspConfig, str | None]:
    """Merge editor settings over ``current``; invalid settings keep the defaults.

    Returns the new configuration and, when something was rejected, a message
    for the user.
    """
    if raw is None:
        return current, None
    if not isinstance(raw, dict):
        return current, "ai-ide: settings must be an object; using defaults"
    merged = {**current.model_dump(by_alias=True), **raw}
    try:
        return LspConfig.model_validate(merged), None
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        return LspConfig(), f"ai-ide: invalid settings ({fields}); using defaults"
