"""llama.cpp's ``llama-server`` as a remote engine.

- Completion with FIM goes to ``/infill``: ``input_prefix`` (the prefix window
  up to the cursor line), ``prompt`` (the cursor line up to the cursor, the
  part typing changes), ``input_suffix`` and the tree-sitter context snippets
  as ``input_extra`` chunks; llama-server adds the model's own FIM tokens
  (and its repo-level ``<file_sep>`` pattern where the model has one).
  Every call sets ``cache_prompt``, asks for the cache slot the document
  used last (``id_slot``), passes the time budget as ``t_max_predict_ms`` and
  asks for each token's log-probability (``n_probs``) and per-token timings.
- Everything else goes to ``/completion`` (text or token ids).
- The figures reported back (prompt and cached tokens, prompt and decode
  milliseconds) are llama-server's own ``timings``.
- In router mode (``llama-server --models-dir``) load and unload map to
  ``POST /models/load`` and ``/models/unload``; every call names the model,
  which the router uses to pick its instance.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from engine.completion.prompts import FimPrompt, TextPrompt
from engine.errors import EngineError, ModelLoadFailedError, RemoteEngineError
from engine.remote.engine_kind import EngineKind, RemoteCall, RemoteFacts, StreamChunk
from engine.remote.prompt import fit_windows
from engine.runtime.messages import GenerationRequest

# What a router reports for a model that is ready, and for one being loaded.
_ROUTER_READY = "loaded"
_ROUTER_POLL_SECONDS = 0.25


def _sampling(request: GenerationRequest) -> dict[str, Any]:
    params = request.params
    body: dict[str, Any] = {
        "n_predict": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k,
        "min_p": params.min_p,
        "repeat_penalty": params.repeat_penalty,
        "frequency_penalty": params.frequency_penalty,
        "presence_penalty": params.presence_penalty,
        "stop": list(params.stop),
        "stream": True,
        "cache_prompt": True,
        "n_probs": 1,
        # The final event carries llama-server's timings anyway, but a
        # generation this server stops itself (a block's end, a time budget, a
        # stop string found here) closes the stream before it: its cached
        # count and timings come from the last token's.
        "timings_per_token": True,
    }
    if params.seed is not None:
        body["seed"] = params.seed
    if params.ignore_eos:
        body["ignore_eos"] = True
    if params.time_budget_ms is not None:
        body["t_max_predict_ms"] = max(1, round(params.time_budget_ms))
    return body


class LlamaServer(EngineKind):
    """Calls and answers of llama-server (one model, or a router of several)."""

    label = "llama-server"

    async def _model_status(self) -> str | None:
        """The router's status for this model (None when the router does not list it)."""
        listing = await self.http.call("GET", "/models", idempotent=True)
        for entry in listing.get("data", []) if isinstance(listing, dict) else []:
            if isinstance(entry, dict) and entry.get("id") == self.spec.served_name:
                status = entry.get("status")
                value = status.get("value") if isinstance(status, dict) else status
                return str(value) if value is not None else None
        return None

    async def probe(self) -> RemoteFacts:
        """GET /health and /props (per model in router mode); check /infill where asked."""
        await self.http.call("GET", "/health", idempotent=True)
        props = await self.http.call("GET", "/props", idempotent=True)
        if not isinstance(props, dict):
            raise RemoteEngineError("llama-server answered /props with no object")
        router = props.get("role") == "router"
        if router:
            status = await self._model_status()
            if status is None:
                raise ModelLoadFailedError(
                    f"the llama-server router does not serve '{self.spec.served_name}'",
                    {"reason": "not_served", "remote_model": self.spec.served_name},
                )
            if status != _ROUTER_READY:
                return RemoteFacts(
                    description=self.spec.served_name,
                    n_ctx=self.spec.context_length,
                    parallel=self.spec.parallel,
                    fim_family=self.spec.fim,
                    router=True,
                )
            name = self.spec.served_name
            props = await self.http.call("GET", f"/props?model={name}", idempotent=True)
        settings = props.get("default_generation_settings") or {}
        n_ctx = int(settings.get("n_ctx") or 0) or self.spec.context_length
        slots = int(props.get("total_slots") or 0) or self.spec.parallel
        facts = RemoteFacts(
            description=str(props.get("model_alias") or props.get("model_path") or "llama-server"),
            n_ctx=n_ctx,
            parallel=min(slots, self.spec.parallel),
            fim_family=self.spec.fim,
            chat_template=props.get("chat_template") or None,
            bos_text=str(props.get("bos_token") or ""),
            eos_text=str(props.get("eos_token") or ""),
            router=router,
        )
        if self.spec.fim == "auto":
            facts = RemoteFacts(**{**facts.__dict__, "fim_family": await self._infill_family()})
        return facts

    async def _infill_family(self) -> str:
        """``infill`` when /infill works for the model (it has FIM tokens), else ``none``."""
        body = {
            "model": self.spec.served_name,
            "input_prefix": "",
            "input_suffix": "",
            "prompt": "",
            "n_predict": 1,
            "cache_prompt": False,
        }
        try:
            await self.http.call("POST", "/infill", body, idempotent=True)
        except EngineError as exc:
            if exc.details.get("upstream_status") in (400, 404, 501):
                return "none"  # the model has no FIM tokens: prefix-only prompts
            raise
        return "infill"

    async def load(self, limit_seconds: float) -> None:
        """Router mode: POST /models/load and wait until the router says it is loaded."""
        status = await self._model_status()
        if status == _ROUTER_READY:
            return
        if status not in ("loading",):
            await self.http.call(
                "POST", "/models/load", {"model": self.spec.served_name}, idempotent=False
            )
        started = time.monotonic()
        while True:
            status = await self._model_status()
            if status == _ROUTER_READY:
                return
            waited = time.monotonic() - started
            # A model the router still calls unloaded a few seconds after
            # the request has not started loading: its instance failed.
            if status == "failed" or (status in ("unloaded", None) and waited > 5.0):
                raise ModelLoadFailedError(
                    f"the llama-server router could not load '{self.spec.served_name}' "
                    f"(status {status})",
                    {"reason": f"router status {status}"},
                )
            if waited > limit_seconds:
                raise ModelLoadFailedError(
                    f"the llama-server router did not load '{self.spec.served_name}' in time",
                    {"reason": "timeout"},
                )
            await asyncio.sleep(_ROUTER_POLL_SECONDS)

    def can_unload(self, facts: RemoteFacts) -> bool:
        """Only a router loads and unloads models on request."""
        return facts.router

    async def unload(self) -> None:
        """POST /models/unload to the router."""
        await self.http.call(
            "POST", "/models/unload", {"model": self.spec.served_name}, idempotent=False
        )

    def call(self, request: GenerationRequest, facts: RemoteFacts, slot: int | None) -> RemoteCall:
        """``/infill`` for a FIM prompt on a model with FIM tokens, else ``/completion``."""
        body = _sampling(request)
        body["model"] = self.spec.served_name
        if slot is not None:
            body["id_slot"] = slot
        prompt = request.prompt
        if isinstance(prompt, FimPrompt):
            use_fim = facts.fim_family != "none"
            windows = fit_windows(prompt, use_suffix=use_fim)
            if use_fim:
                body["input_prefix"] = windows.prefix
                body["prompt"] = windows.line_prefix
                body["input_suffix"] = windows.suffix
                body["input_extra"] = [
                    {"filename": prompt.file_path or "context", "text": s.rendered}
                    for s in windows.snippets
                ]
                return RemoteCall("/infill", body, True, len(windows.snippets))
            context = "".join(s.rendered for s in windows.snippets)
            body["prompt"] = context + windows.prefix + windows.line_prefix
            return RemoteCall("/completion", body, False, len(windows.snippets))
        if isinstance(prompt, TextPrompt):
            body["prompt"] = prompt.text
        else:
            body["prompt"] = [int(t) for t in prompt]
        return RemoteCall("/completion", body, False, 0)

    def read(self, event: dict[str, Any]) -> StreamChunk:
        """A /completion or /infill stream event (llama-server's own format)."""
        probs = event.get("completion_probabilities") or []
        logprobs = [float(p["logprob"]) for p in probs if isinstance(p, dict) and "logprob" in p]
        timings = event.get("timings") or {}
        finished = bool(event.get("stop"))
        finish: str | None = None
        if finished:
            stop_type = event.get("stop_type")
            finish = {"eos": "eos", "word": "stop", "limit": "length"}.get(str(stop_type), "stop")
        cached = event.get("tokens_cached") if finished else None
        if timings.get("cache_n") is not None:
            cached = int(timings["cache_n"])
        return StreamChunk(
            text=str(event.get("content") or ""),
            logprobs=logprobs,
            tokens=len(probs) if probs else (1 if event.get("content") else 0),
            finished=finished,
            finish=finish,
            prompt_tokens=_int(event.get("tokens_evaluated")),
            completion_tokens=_int(event.get("tokens_predicted")),
            cached_tokens=_int(cached),
            prompt_ms=_float(timings.get("prompt_ms")),
            decode_ms=_float(timings.get("predicted_ms")),
            slot=_int(event.get("id_slot")),
        )


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
