"""What differs between remote engine kinds: their calls and their answers.

Each kind (llama-server, OpenAI-compatible) turns a
:class:`~engine.runtime.messages.GenerationRequest` into one streamed HTTP
call and reads the engine's events back as :class:`StreamChunk` values; the
runner (:mod:`engine.remote.runner`) does everything else the same way for
all of them.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from engine.models.catalog import ModelSpec
from engine.remote.http import RemoteHttp
from engine.runtime.messages import GenerationRequest


@dataclass(frozen=True)
class RemoteFacts:
    """What a probe learnt about the engine and its model."""

    description: str
    n_ctx: int
    parallel: int
    fim_family: str
    chat_template: str | None = None
    bos_text: str = ""
    eos_text: str = ""
    router: bool = False
    # llama-cpp-python's server names the repetition penalty ``repeat_penalty``
    # and defaults it to 1.1; vLLM and SGLang say ``repetition_penalty``, 1.0.
    llama_cpp_python: bool = False


@dataclass(frozen=True)
class RemoteCall:
    """One generation call: path, JSON body, and what the prompt held."""

    path: str
    body: dict[str, Any]
    used_fim: bool
    snippets_used: int


@dataclass
class StreamChunk:
    """One streamed event, read into the figures the runner needs."""

    text: str = ""
    # Log-probabilities of the tokens this event carries (empty if not reported).
    logprobs: list[float] = field(default_factory=list)
    # Tokens the event carries (its log-probabilities, else a count).
    tokens: int = 0
    finished: bool = False
    finish: str | None = None  # the engine's reason: stop, length, eos, ...
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    prompt_ms: float | None = None
    decode_ms: float | None = None
    slot: int | None = None


class EngineKind(abc.ABC):
    """The calls of one remote engine kind."""

    label = "remote engine"

    def __init__(self, spec: ModelSpec, http: RemoteHttp) -> None:
        self.spec = spec
        self.http = http

    @abc.abstractmethod
    async def probe(self) -> RemoteFacts:
        """Check the engine answers and serves the model; learn its context size."""

    @abc.abstractmethod
    def call(self, request: GenerationRequest, facts: RemoteFacts, slot: int | None) -> RemoteCall:
        """The streamed call that runs ``request`` (``slot``: a cache slot to ask for)."""

    @abc.abstractmethod
    def read(self, event: dict[str, Any]) -> StreamChunk:
        """One streamed event as a chunk."""

    # Optional steps with a do-nothing default, hence not abstract.
    async def load(self, limit_seconds: float) -> None:  # noqa: B027
        """Ask the engine to load the model, where it can (default: nothing to do)."""

    def can_unload(self, facts: RemoteFacts) -> bool:
        """Whether :meth:`unload` asks the engine to unload the model."""
        return False

    async def unload(self) -> None:  # noqa: B027
        """Ask the engine to unload the model (only when :meth:`can_unload`)."""
