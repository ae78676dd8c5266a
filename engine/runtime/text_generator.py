"""A blocking :class:`~engine.refactor.TextGenerator` over a model worker.

Refactoring runs on a thread and asks the model for names and rewrites
synchronously; this adapter turns those calls into worker messages and waits
for their events. ``cancel`` stops the generation in flight and refuses
further ones, so a cancelled refactoring ends at its next model call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from engine.completion.prompts import TextPrompt
from engine.errors import EngineError, InferenceTimeoutError, RequestCancelledError
from engine.refactor import GeneratedText
from engine.runtime.messages import (
    DoneEvent,
    ErrorEvent,
    GenerationRequest,
    GenerationResult,
    Priority,
    SamplingParams,
    ThreadSink,
)
from engine.runtime.port import ModelRunner


class WorkerTextGenerator:
    """Synchronous generation on one model worker (call from a non-loop thread)."""

    def __init__(self, worker: ModelRunner, priority: Priority, deadline: float) -> None:
        self._worker = worker
        self._priority = priority
        self._deadline = deadline
        self._lock = threading.Lock()
        self._current: str | None = None
        self._cancelled = False
        self.results: list[GenerationResult] = []

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str],
        temperature: float = 0.0,
    ) -> GeneratedText:
        """Continue ``prompt``; raises if cancelled or past the deadline."""
        sink = ThreadSink()
        request = GenerationRequest(
            prompt=TextPrompt(prompt),
            params=SamplingParams(max_tokens=max_tokens, temperature=temperature, stop=stop),
            sink=sink,
            priority=self._priority,
            deadline=self._deadline,
        )
        with self._lock:
            if self._cancelled:
                raise RequestCancelledError("refactoring cancelled")
            self._current = request.request_id
        try:
            self._worker.submit(request)
            while True:
                remaining = self._deadline - time.monotonic() + 5.0
                if remaining <= 0:
                    raise InferenceTimeoutError("the model did not answer in time")
                event = sink.events.get(timeout=remaining)
                if isinstance(event, ErrorEvent):
                    raise event.error
                if isinstance(event, DoneEvent):
                    self.results.append(event.result)
                    result = event.result
                    return GeneratedText(result.text, result.confidence, result.completion_tokens)
        except EngineError:
            raise
        except Exception as exc:  # queue.Empty and friends
            raise InferenceTimeoutError("the model did not answer in time") from exc
        finally:
            with self._lock:
                self._current = None

    def cancel(self) -> None:
        """Stop the generation in flight and refuse new ones."""
        with self._lock:
            self._cancelled = True
            current = self._current
        if current is not None:
            self._worker.cancel(current)
