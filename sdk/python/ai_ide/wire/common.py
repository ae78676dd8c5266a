"""Shared pieces of the wire contract: base models, bounds, headers, pagination.

The contract imports only pydantic and the standard library, so the server,
the SDK and any script can use it without pulling in the engine.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

# Model ids as the catalog accepts them (engine.models.catalog keeps its own
# copy because the engine may not import the contract; a unit test compares).
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MAX_CODE_CHARS = 1_000_000
MAX_PROMPT_CHARS = 100_000

API_PREFIX = "/v1/ai"
API_KEY_HEADER = "X-API-Key"
REQUEST_ID_HEADER = "X-Request-ID"
# Hints a language server sharing an engine sends with editor requests.
PRIORITY_HEADER = "X-AI-IDE-Priority"
DOCUMENT_HEADER = "X-AI-IDE-Document"


class StrictModel(BaseModel):
    """A request body: unknown fields are errors, types are not coerced.

    A typo such as ``max_token`` must not be ignored, and ``"4"`` is not ``4``.
    """

    model_config = ConfigDict(extra="forbid", strict=True)


class WireModel(BaseModel):
    """A response body; fields a newer server adds are ignored, not errors.

    ``result["field"]`` reads a field (or a shortcut property) too, for
    scripts that treat answers as the JSON objects they are.
    """

    def __getitem__(self, key: str) -> Any:
        shortcut = isinstance(getattr(type(self), key, None), property)
        if key.startswith("_") or not (key in type(self).model_fields or shortcut):
            raise KeyError(key)
        return getattr(self, key)


class Pagination(WireModel):
    """Position of this page in the whole list."""

    total_count: int
    has_more: bool
