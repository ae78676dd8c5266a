"""The one thing refactoring needs from a model: complete a prompt, report confidence.

The inference engine implements :class:`TextGenerator`; refactoring code runs in a
worker thread and calls it synchronously. Nothing here imports llama.cpp.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class GeneratedText:
    """A completion; ``confidence`` is exp(mean token log-probability) from the model."""

    text: str
    confidence: float
    tokens: int


class TextGenerator(Protocol):
    """Blocking text completion by a loaded model (base or instruction-tuned)."""

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str],
        temperature: float = 0.0,
    ) -> GeneratedText:
        """Continue ``prompt`` until a stop sequence or ``max_tokens``."""
        ...
