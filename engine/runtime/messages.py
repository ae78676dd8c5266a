"""Messages between the engine and a model worker.

The worker boundary is a message interface: a :class:`GenerationRequest` goes
in; :class:`TokenEvent`, :class:`DoneEvent` or :class:`ErrorEvent` come out
through the request's sink; cancellation is by request id. Everything here is
plain data so that a worker could move into a child process unchanged.
"""

from __future__ import annotations

import asyncio
import enum
import queue
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from engine.completion.prompts import FimPrompt, TextPrompt
from engine.errors import EngineError

FinishReason = Literal["stop", "length", "eos", "block_end", "time_budget"]


class Priority(enum.IntEnum):
    """Scheduling class: lower runs first."""

    INTERACTIVE = 0  # an editor keystroke
    SPECULATIVE = 1  # a guess at the next suggestion
    NORMAL = 2  # REST requests
    BATCH = 3  # batch and orchestration fan-out
    WARM = 4  # reading an editor's changed context before its next keystroke

    @property
    def for_editor(self) -> bool:
        """Work for an editor: it may use the slot kept free for the editor's keystrokes."""
        return self in (Priority.INTERACTIVE, Priority.SPECULATIVE, Priority.WARM)


@dataclass(frozen=True)
class SamplingParams:
    """Sampling and stopping parameters, already validated by the caller."""

    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 40
    min_p: float = 0.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repeat_penalty: float = 1.0
    seed: int | None = None
    stop: Sequence[str] = ()
    # Soft budget: stop and return what was generated (finish_reason time_budget).
    time_budget_ms: float | None = None
    # Never end at an end-of-generation token (benchmarks that need exact lengths).
    ignore_eos: bool = False


@dataclass(frozen=True)
class BlockStop:
    """Stop as soon as the completion closes the block it started in."""

    document: str
    cursor: int
    language: str | None


def new_request_id(prefix: str = "gen") -> str:
    """A unique id for a generation request."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True)
class TokenEvent:
    """Newly generated text (a delta; stop sequences already held back)."""

    request_id: str
    text: str


@dataclass(frozen=True)
class GenerationResult:
    """What one finished generation produced, with measured figures."""

    request_id: str
    text: str
    completion_tokens: int
    prompt_tokens: int
    cached_prompt_tokens: int
    confidence: float
    mean_logprob: float
    finish_reason: FinishReason
    queue_ms: float
    prompt_ms: float
    decode_ms: float
    first_token_ms: float
    total_ms: float
    used_fim: bool = False
    # Context snippets that fit in the prompt (of those the request offered).
    snippets_used: int = 0


@dataclass(frozen=True)
class DoneEvent:
    """The request finished normally."""

    request_id: str
    result: GenerationResult


@dataclass(frozen=True)
class ErrorEvent:
    """The request failed or was cancelled; ``error`` says why."""

    request_id: str
    error: EngineError


WorkerEvent = TokenEvent | DoneEvent | ErrorEvent


class EventSink(Protocol):
    """Receives a request's events; called from the worker thread."""

    def emit(self, event: WorkerEvent) -> None:
        """Deliver one event; must not block."""


class ThreadSink:
    """A sink for synchronous consumers (threads): a plain queue."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue[WorkerEvent] = queue.SimpleQueue()

    def emit(self, event: WorkerEvent) -> None:
        """Queue the event."""
        self.events.put(event)


class AsyncSink:
    """A sink for an asyncio consumer: events hop onto the loop thread-safely."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.events: asyncio.Queue[WorkerEvent] = asyncio.Queue()
        self._closed = threading.Event()

    def emit(self, event: WorkerEvent) -> None:
        """Schedule the event on the consumer's loop (dropped once the loop is gone)."""
        if self._closed.is_set():
            return
        try:
            self._loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:
            # The loop closed while a generation was finishing: nobody listens.
            self._closed.set()


@dataclass
class GenerationRequest:
    """One unit of work for a model worker."""

    prompt: FimPrompt | TextPrompt | Sequence[int]
    params: SamplingParams
    sink: EventSink
    priority: Priority = Priority.NORMAL
    stream: bool = False
    # A newer request with the same group cancels older ones (one document).
    group: str | None = None
    block_stop: BlockStop | None = None
    # Monotonic deadline; past it the request fails with INFERENCE_TIMEOUT.
    deadline: float | None = None
    request_id: str = field(default_factory=new_request_id)
