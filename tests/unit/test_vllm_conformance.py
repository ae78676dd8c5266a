"""Conformance test (vLLM cannot run here): our /v1/completions requests against vLLM's schema.

``tests/data/vllm_completion_request.json`` is the subset of vLLM's
``CompletionRequest`` (source file and commit noted inside) that matters:
every field with its JSON types, the validators that answer 400, and the
fields its serving code refuses (``suffix``). Each request the ``openai``
backend builds must use only those fields, with those types, and pass those
validators. This checks the request we send, not a running vLLM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.completion.prompts import FAMILY_MARKERS, ContextBlock, FimPrompt, TextPrompt
from engine.models.catalog import ModelSpec
from engine.remote.engine_kind import RemoteFacts
from engine.remote.http import CircuitBreaker, RemoteHttp
from engine.remote.openai import OpenAICompatible
from engine.runtime.messages import GenerationRequest, SamplingParams, ThreadSink

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "data" / "vllm_completion_request.json").read_text()
)

PROMPTS: dict[str, FimPrompt | TextPrompt | list[int]] = {
    "fim": FimPrompt(
        prefix="import os\n\ndef main():\n",
        line_prefix="    path = ",
        suffix="\n    return path\n",
        snippets=(ContextBlock("# from util.py:\ndef join(a, b): ...\n", "def join(a, b): ..."),),
    ),
    "text": TextPrompt("Write a function that adds two numbers.\n"),
    "tokens": [1, 42, 43, 44],
}
PARAMS = {
    "greedy": SamplingParams(max_tokens=16),
    "sampled": SamplingParams(
        max_tokens=64,
        temperature=0.8,
        top_p=0.9,
        top_k=20,
        min_p=0.05,
        seed=7,
        stop=["\n\n", "```"],
        presence_penalty=0.5,
        frequency_penalty=0.25,
        repeat_penalty=1.1,
    ),
    "exact": SamplingParams(max_tokens=8, ignore_eos=True),
}


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return "array_of_integers"
        if all(isinstance(v, str) for v in value):
            return "array_of_strings"
        return "array"
    return type(value).__name__


def _conforms(body: dict[str, Any]) -> None:
    fields: dict[str, list[str]] = SCHEMA["fields"]
    for key, value in body.items():
        assert key in fields, f"{key!r} is not a field of vLLM's CompletionRequest"
        allowed = fields[key]
        kind = _type_of(value)
        # A JSON integer is also a valid number.
        assert kind in allowed or (kind == "integer" and "number" in allowed), (key, kind)
    for key in SCHEMA["refused_with_400"]:
        assert key not in body, f"vLLM answers 400 for {key!r}"
    # The model validators that answer 400.
    if body.get("logprobs") is not None:
        assert body["logprobs"] >= 0
    if body.get("stream_options"):
        assert body.get("stream") is True
        for key, value in body["stream_options"].items():
            assert key in SCHEMA["stream_options_fields"], key
            assert _type_of(value) in SCHEMA["stream_options_fields"][key]
    prompt = body.get("prompt")
    assert prompt not in (None, ""), "vLLM needs a prompt (or prompt_embeds)"
    assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 0


def _engine(fim: str) -> OpenAICompatible:
    spec = ModelSpec(
        id="vllm-model",
        name="vLLM model",
        backend="openai",
        url="http://127.0.0.1:9",
        remote_model="Qwen/Qwen2.5-Coder-1.5B",
        fim=fim,  # type: ignore[arg-type]
    )
    http = RemoteHttp(
        "http://127.0.0.1:9",
        label="vllm",
        api_key=None,
        connect_timeout=1,
        read_timeout=1,
        breaker=CircuitBreaker(3),
        max_connections=1,
    )
    return OpenAICompatible(spec, http)


@pytest.mark.parametrize("family", ["qwen", "starcoder", "codestral", "deepseek", "none"])
@pytest.mark.parametrize("prompt_name", sorted(PROMPTS))
@pytest.mark.parametrize("params_name", sorted(PARAMS))
def test_openai_backend_requests_conform_to_vllm_completion_request(
    family: str, prompt_name: str, params_name: str
) -> None:
    kind = _engine(family)
    facts = RemoteFacts("vllm", 32768, 4, family)
    request = GenerationRequest(PROMPTS[prompt_name], PARAMS[params_name], ThreadSink())
    call = kind.call(request, facts, None)
    assert call.path == "/v1/completions"
    _conforms(call.body)
    assert call.body["model"] == "Qwen/Qwen2.5-Coder-1.5B"
    assert call.body["stream"] is True and call.body["logprobs"] == 1


@pytest.mark.parametrize("family", ["qwen", "starcoder", "codestral", "deepseek"])
def test_fim_prompt_is_built_here_from_the_family_markers(family: str) -> None:
    kind = _engine(family)
    prompt = PROMPTS["fim"]
    assert isinstance(prompt, FimPrompt)
    call = kind.call(
        GenerationRequest(prompt, PARAMS["greedy"], ThreadSink()),
        RemoteFacts("vllm", 32768, 4, family),
        None,
    )
    text = call.body["prompt"]
    pre, suf, mid = FAMILY_MARKERS[family]
    assert call.used_fim and call.snippets_used == 1
    # The cursor line follows the middle marker: typing changes only the tail.
    assert text.endswith(mid + prompt.line_prefix)
    if family == "codestral":  # suffix first (SPM)
        assert text.index(suf) < text.index(pre) < text.index(mid)
    else:
        assert text.index(pre) < text.index(suf) < text.index(mid)
    assert prompt.prefix in text and prompt.suffix in text
    assert "def join(a, b)" in text


def test_no_fim_family_sends_a_prefix_only_prompt() -> None:
    prompt = PROMPTS["fim"]
    assert isinstance(prompt, FimPrompt)
    call = _engine("none").call(
        GenerationRequest(prompt, PARAMS["greedy"], ThreadSink()),
        RemoteFacts("vllm", 32768, 4, "none"),
        None,
    )
    assert not call.used_fim
    assert call.body["prompt"].endswith(prompt.prefix + prompt.line_prefix)
    assert prompt.suffix not in call.body["prompt"]


def test_openai_backend_needs_an_explicit_fim_family() -> None:
    with pytest.raises(ValueError, match="explicit 'fim' family"):
        ModelSpec(id="m", name="m", backend="openai", url="http://127.0.0.1:8000")
    with pytest.raises(ValueError, match="needs 'url'"):
        ModelSpec(id="m", name="m", backend="llama-server")
    with pytest.raises(ValueError, match="no 'path'"):
        ModelSpec(id="m", name="m", backend="llama-server", url="http://h:1", path=Path("/x.gguf"))
    with pytest.raises(ValueError, match="need backend"):
        ModelSpec(id="m", name="m", path=Path("/x.gguf"), url="http://h:1")


def test_llama_cpp_python_server_gets_its_own_penalty_field_and_every_default() -> None:
    # Its server defaults repeat_penalty to 1.1 and top-k/min-p to 40/0.05;
    # vLLM's defaults are the engine's, so it is sent only what differs.
    kind = _engine("starcoder")
    prompt = PROMPTS["fim"]
    greedy = SamplingParams(max_tokens=16)
    sampled = SamplingParams(max_tokens=16, temperature=0.7, top_k=0, min_p=0.0)
    for params, expected in (
        (greedy, {"repeat_penalty": 1.0}),
        (sampled, {"top_k": 0, "min_p": 0.0}),
    ):
        llama = kind.call(
            GenerationRequest(prompt, params, ThreadSink()),
            RemoteFacts("tiny", 2048, 1, "starcoder", llama_cpp_python=True),
            None,
        ).body
        vllm = kind.call(
            GenerationRequest(prompt, params, ThreadSink()),
            RemoteFacts("vllm", 32768, 4, "starcoder"),
            None,
        ).body
        for key, value in expected.items():
            assert llama[key] == value
            assert key not in vllm
        assert "repetition_penalty" not in llama
