"""PromptTally: the typing-cache share ai-ide.showStatus reports counts completions only."""

from __future__ import annotations

from engine.events import InferenceRecord
from lsp_server.backend import PromptTally


def record(kind: str, model_id: str, prompt: int, cached: int) -> InferenceRecord:
    return InferenceRecord(
        model_id=model_id,
        kind=kind,
        started_at=0.0,
        duration_ms=1.0,
        success=True,
        cached=False,
        tokens=prompt + 4,
        prompt_tokens=prompt,
        cached_prompt_tokens=cached,
    )


def test_only_completions_count_per_model() -> None:
    tally = PromptTally()
    tally.add(record("completion", "a", 100, 90))
    tally.add(record("completion", "a", 50, 50))
    tally.add(record("completion", "b", 10, 0))
    # A code generation or a refactor reads a prompt of its own: not typing.
    tally.add(record("generation", "a", 400, 0))
    tally.add(record("refactor", "a", 300, 10))
    # Answered without reading a prompt (type-through, a failure).
    tally.add(record("completion", "a", 0, 0))
    assert tally.of("a") == (150, 140)
    assert tally.of("b") == (10, 0)
    assert tally.of("c") == (0, 0)
