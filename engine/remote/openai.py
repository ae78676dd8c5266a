"""An OpenAI-compatible completions engine (vLLM, SGLang, llama-cpp-python's server).

Everything goes to ``POST /v1/completions`` with a ``prompt`` built here:
a FIM prompt from the catalog's FIM family (its markers, in the family's
order), never the ``suffix`` field, which vLLM answers with 400 and
llama-cpp-python's server turns into a broken prompt. The request uses only
fields of the OpenAI completions schema plus the sampling extensions vLLM
documents (``top_k``, ``min_p``, ``repetition_penalty``), and only when they
differ from the engine's default; ``tests/data/vllm_completion_request.json``
is the schema subset a conformance test checks it against.
"""

from __future__ import annotations

from typing import Any

from engine.completion.prompts import FimPrompt, TextPrompt
from engine.errors import ModelLoadFailedError
from engine.remote.engine_kind import EngineKind, RemoteCall, RemoteFacts, StreamChunk
from engine.remote.prompt import fim_text
from engine.runtime.messages import GenerationRequest

_FINISH = {"stop": "stop", "length": "length"}


def completion_body(
    model: str,
    prompt: str | list[int],
    request: GenerationRequest,
    *,
    llama_cpp_python: bool = False,
) -> dict[str, Any]:
    """The ``/v1/completions`` body for ``request`` (streamed, with log-probabilities).

    ``llama_cpp_python``: the engine is llama-cpp-python's server, whose
    repetition penalty has its own name and a default of 1.1, and whose
    top-k and min-p default to 40 and 0.05: they are always sent, or its
    decoding would not be the engine's.
    """
    params = request.params
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stream": True,
        "stream_options": {"include_usage": True},
        "logprobs": 1,
    }
    if params.stop:
        body["stop"] = list(params.stop)
    if params.seed is not None:
        body["seed"] = params.seed
    if params.frequency_penalty:
        body["frequency_penalty"] = params.frequency_penalty
    if params.presence_penalty:
        body["presence_penalty"] = params.presence_penalty
    if params.temperature > 0:
        # Greedy decoding ignores them; sampled, they are vLLM's extensions.
        # llama-cpp-python's server has its own defaults (40, 0.05) for them.
        if params.top_k > 0 or llama_cpp_python:
            body["top_k"] = params.top_k
        if params.min_p > 0 or llama_cpp_python:
            body["min_p"] = params.min_p
    if llama_cpp_python:
        body["repeat_penalty"] = params.repeat_penalty
    elif params.repeat_penalty != 1.0:
        body["repetition_penalty"] = params.repeat_penalty
    if params.ignore_eos:
        body["ignore_eos"] = True
    return body


class OpenAICompatible(EngineKind):
    """Calls and answers of an OpenAI-compatible ``/v1/completions``."""

    label = "OpenAI-compatible engine"

    async def probe(self) -> RemoteFacts:
        """GET /v1/models: the engine answers and serves the model under its name."""
        listing = await self.http.call("GET", "/v1/models", idempotent=True)
        entries = listing.get("data", []) if isinstance(listing, dict) else []
        served = [e for e in entries if isinstance(e, dict)]
        names = [str(e.get("id")) for e in served]
        match = next((e for e in served if e.get("id") == self.spec.served_name), None)
        if match is None:
            raise ModelLoadFailedError(
                f"the engine does not serve '{self.spec.served_name}' "
                f"(it serves: {', '.join(names[:10]) or 'nothing'})",
                {"reason": "not_served", "served_models": names[:10]},
            )
        # vLLM reports its context as max_model_len; others do not say.
        n_ctx = match.get("max_model_len")
        return RemoteFacts(
            description=str(match.get("id")),
            n_ctx=int(n_ctx) if isinstance(n_ctx, int) and n_ctx > 0 else self.spec.context_length,
            parallel=self.spec.parallel,
            fim_family=self.spec.fim,
            # How llama-cpp-python's server lists a model (its app.py); vLLM
            # says owned_by "vllm" and has no "permissions" list.
            llama_cpp_python=match.get("owned_by") == "me" and "permissions" in match,
        )

    def call(self, request: GenerationRequest, facts: RemoteFacts, slot: int | None) -> RemoteCall:
        """One streamed ``/v1/completions`` call; the FIM prompt is text built here."""
        prompt = request.prompt
        used_fim = False
        snippets = 0
        text: str | list[int]
        if isinstance(prompt, FimPrompt):
            text, snippets, used_fim = fim_text(prompt, facts.fim_family)
        elif isinstance(prompt, TextPrompt):
            text = prompt.text
        else:
            text = [int(t) for t in prompt]
        body = completion_body(
            self.spec.served_name, text, request, llama_cpp_python=facts.llama_cpp_python
        )
        return RemoteCall("/v1/completions", body, used_fim, snippets)

    def read(self, event: dict[str, Any]) -> StreamChunk:
        """A streamed completion chunk (or the closing usage chunk)."""
        chunk = StreamChunk()
        choices = event.get("choices") or []
        if choices and isinstance(choices[0], dict):
            choice = choices[0]
            chunk.text = str(choice.get("text") or "")
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict):
                values = logprobs.get("token_logprobs") or []
                chunk.logprobs = [float(v) for v in values if isinstance(v, int | float)]
                chunk.tokens = len(logprobs.get("tokens") or values)
            elif chunk.text:
                chunk.tokens = 1
            reason = choice.get("finish_reason")
            if reason is not None:
                chunk.finish = _FINISH.get(str(reason), "stop")
        usage = event.get("usage")
        if isinstance(usage, dict):
            chunk.prompt_tokens = usage.get("prompt_tokens")
            chunk.completion_tokens = usage.get("completion_tokens")
            details = usage.get("prompt_tokens_details")
            if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
                chunk.cached_tokens = details["cached_tokens"]
        return chunk
