"""Completion requests as tests write them: a Python document, the cursor at its end."""

from __future__ import annotations

from typing import Any

from engine.completion.pipeline import CompletionRequest
from engine.runtime.messages import SamplingParams


def at_end(code: str, model_id: str, *, max_tokens: int, **fields: Any) -> CompletionRequest:
    """A Python completion request at the end of ``code``; ``fields`` set the rest."""
    return CompletionRequest(
        code=code,
        cursor=len(code),
        language="python",
        model_id=model_id,
        params=SamplingParams(max_tokens=max_tokens),
        **fields,
    )
