"""Token healing on real tiny models: the index, the constrained pick, the worker's output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.completion.prompts import FimPrompt, FimTokens, build_fim_prompt
from engine.engine import Engine
from engine.runtime.healing import TokenHealer, log_prob_among
from engine.runtime.llama_backend import ContextConfig, LlamaContext, LlamaModel, Sampler
from engine.runtime.messages import SamplingParams

# The cursor after a space: the prompt's last token is that lone space.
LINE = "    total = combine(first, "
PREFIX = "def combine(a, b):\n    return a + b\n\ndef main(first, second):\n"


@pytest.fixture(scope="module")
def nofim(tiny_models: dict[str, Path]) -> Iterator[LlamaModel]:
    model = LlamaModel(tiny_models["tiny-nofim"])
    try:
        yield model
    finally:
        model.close()


def pieces_of(model: LlamaModel) -> list[bytes]:
    return [model.piece(t) for t in range(model.n_vocab)]


def test_extensions_are_every_text_token_that_starts_with_the_bytes(nofim: LlamaModel) -> None:
    pieces = pieces_of(nofim)
    healer = TokenHealer(pieces, nofim.is_text)
    for text in (b" ", b"(", b"co", b"re", b"\n", b"zzzzqqq"):
        expected = sorted(
            t for t, p in enumerate(pieces) if p and nofim.is_text(t) and p.startswith(text)
        )
        assert sorted(int(t) for t in healer.extensions(text)) == expected, text


def test_a_prompt_is_healed_only_where_another_token_could_follow_on(nofim: LlamaModel) -> None:
    healer = TokenHealer(pieces_of(nofim), nofim.is_text)
    tokens = nofim.tokenize(PREFIX + LINE, add_bos=True)
    healing = healer.heal(tokens, keep=1)
    assert healing is not None
    assert healing.removed == nofim.piece(tokens[-1]) == b" "
    assert tokens[-1] in healing.allowed and len(healing.allowed) > 1
    assert healer.heal(tokens[:1], keep=1) is None  # nothing but what must stay
    assert nofim.bos is not None and healer.heal([nofim.bos], keep=0) is None  # control token


def test_the_constrained_pick_is_the_best_allowed_token_and_the_row_is_kept(
    nofim: LlamaModel,
) -> None:
    ctx = LlamaContext(nofim, ContextConfig(n_ctx=512, n_seq_max=1))
    try:
        tokens = nofim.tokenize(PREFIX + LINE, add_bos=True)[:-1]
        row = ctx.batch.add(tokens, 0, 0, logits_last=True)
        ctx.decode()
        allowed = TokenHealer(pieces_of(nofim), nofim.is_text).extensions(b" ")
        before = ctx.logits(row).copy()
        greedy = Sampler(SamplingParams(temperature=0.0), 0, nofim.n_vocab)
        best = int(allowed[int(before[allowed].argmax())])
        assert greedy.sample_among(ctx, row, allowed) == best
        sampled = Sampler(SamplingParams(temperature=1.5, top_k=0, top_p=1.0), 7, nofim.n_vocab)
        try:
            for _ in range(20):
                assert sampled.sample_among(ctx, row, allowed) in set(allowed.tolist())
        finally:
            sampled.close()
        assert np.array_equal(ctx.logits(row), before)
        # Renormalized over the allowed tokens, their probabilities sum to one.
        total = sum(np.exp(log_prob_among(before, allowed, int(t))) for t in allowed)
        assert total == pytest.approx(1.0, abs=1e-6)
    finally:
        ctx.close()


def reference_healed_greedy(model: LlamaModel, tokens: list[int], count: int) -> bytes:
    """Healing by hand: last token out, first pick among its extensions (a full scan), greedy on."""
    removed = model.piece(tokens[-1])
    allowed = np.array(
        [
            t
            for t in range(model.n_vocab)
            if model.is_text(t) and model.piece(t) and model.piece(t).startswith(removed)
        ]
    )
    ctx = LlamaContext(model, ContextConfig(n_ctx=512, n_seq_max=1))
    try:
        prompt = tokens[:-1]
        row = ctx.batch.add(prompt, 0, 0, logits_last=True)
        ctx.decode()
        out = b""
        position = len(prompt)
        for i in range(count):
            logits = ctx.logits(row)
            if i == 0:
                token = int(allowed[int(logits[allowed].argmax())])
                out += model.piece(token)[len(removed) :]
            else:
                token = int(logits.argmax())
                if model.is_eog(token) or model.is_control(token):
                    break
                out += model.piece(token)
            ctx.batch.clear()
            row = ctx.batch.add([token], position, 0, logits_last=True)
            ctx.decode()
            position += 1
        return out
    finally:
        ctx.close()


async def test_the_worker_heals_a_cursor_after_a_space(engine: Engine, nofim: LlamaModel) -> None:
    prompt = FimPrompt(prefix=PREFIX, line_prefix=LINE, suffix="\n    return total\n")
    unhealed = build_fim_prompt(
        prompt, FimTokens(None, None, None), nofim.tokenize, bos=nofim.bos
    ).tokens
    result = await engine.run("tiny-nofim", prompt, SamplingParams(max_tokens=8))
    # The lone space is out of the prompt, and the model wrote it (cut) itself.
    assert result.prompt_tokens == len(unhealed) - 1
    expected = reference_healed_greedy(nofim, unhealed, result.completion_tokens)
    assert result.text == expected.decode("utf-8", "replace")


async def test_an_indentation_only_line_is_not_healed(engine: Engine, nofim: LlamaModel) -> None:
    prompt = FimPrompt(prefix=PREFIX, line_prefix="    ", suffix="")
    unhealed = build_fim_prompt(
        prompt, FimTokens(None, None, None), nofim.tokenize, bos=nofim.bos
    ).tokens
    result = await engine.run("tiny-nofim", prompt, SamplingParams(max_tokens=4))
    assert result.prompt_tokens == len(unhealed)
