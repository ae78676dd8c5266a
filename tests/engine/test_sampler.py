"""The greedy pick done with numpy is llama.cpp's greedy sampler's, on real logits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import numpy as np
import pytest

from engine.runtime.llama_backend import (
    ContextConfig,
    LlamaContext,
    LlamaModel,
    LogprobMeter,
    Sampler,
)
from engine.runtime.messages import SamplingParams

PROMPT = "def fibonacci(n):\n    if n <= 1:\n        return n\n    return fibonacci(n - 1) + "


@pytest.fixture(scope="module")
def context(tiny_models: dict[str, Path]) -> Iterator[LlamaContext]:
    model = LlamaModel(tiny_models["tiny-codellama"])
    ctx = LlamaContext(model, ContextConfig(n_ctx=512, n_seq_max=1))
    try:
        yield ctx
    finally:
        ctx.close()
        model.close()


def greedy_chain(n_vocab: int, banned: list[int]) -> llama_cpp.llama_sampler_p:
    """llama.cpp's own greedy chain, logit biases of -inf for ``banned``."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    if banned:
        biases = (llama_cpp.llama_logit_bias * len(banned))(
            *[llama_cpp.llama_logit_bias(token, float("-inf")) for token in banned]
        )
        llama_cpp.llama_sampler_chain_add(
            chain, llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(banned), biases)
        )
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
    return chain


def rows(ctx: LlamaContext, count: int) -> Iterator[int]:
    """Decode PROMPT, then ``count`` greedy tokens one by one; yields the row each time."""
    tokens = ctx.model.tokenize(PROMPT, add_bos=True)
    llama_cpp.llama_memory_clear(ctx.memory, True)
    ctx.batch.clear()
    row = ctx.batch.add(tokens, 0, 0, logits_last=True)
    ctx.decode()
    position = len(tokens)
    for _ in range(count):
        yield row
        token = int(ctx.logits(row).argmax())
        ctx.batch.clear()
        row = ctx.batch.add([token], position, 0, logits_last=True)
        ctx.decode()
        position += 1


def test_the_numpy_argmax_picks_what_llama_cpp_picks(context: LlamaContext) -> None:
    n_vocab = context.model.n_vocab
    plain = Sampler(SamplingParams(temperature=0.0), 0, n_vocab)
    assert plain.ptr is None and plain.picks_the_raw_argmax  # no llama.cpp chain at all
    chain = greedy_chain(n_vocab, [])
    try:
        for row in rows(context, 12):
            expected = int(llama_cpp.llama_sampler_sample(chain, context.ptr, row))
            assert plain.sample(context, row) == expected
    finally:
        llama_cpp.llama_sampler_free(chain)


def test_banned_tokens_are_never_picked_and_the_row_is_left_as_it_was(
    context: LlamaContext,
) -> None:
    n_vocab = context.model.n_vocab
    for row in rows(context, 6):
        logits = context.logits(row)
        before = logits.copy()
        # Ban the three best tokens of this very row: the pick is the fourth.
        top = [int(t) for t in np.argsort(-before, kind="stable")[:3]]
        sampler = Sampler(SamplingParams(temperature=0.0), 0, n_vocab, banned=top)
        assert not sampler.picks_the_raw_argmax
        chain = greedy_chain(n_vocab, top)
        try:
            expected = int(llama_cpp.llama_sampler_sample(chain, context.ptr, row))
        finally:
            llama_cpp.llama_sampler_free(chain)
        picked = sampler.sample(context, row)
        assert picked == expected and picked not in top
        assert np.array_equal(context.logits(row), before)


def test_penalties_and_temperature_keep_llama_cpp_s_chain(context: LlamaContext) -> None:
    n_vocab = context.model.n_vocab
    for params in (
        SamplingParams(temperature=0.0, repeat_penalty=1.3),
        SamplingParams(temperature=0.8),
    ):
        sampler = Sampler(params, 7, n_vocab)
        try:
            assert sampler.ptr is not None and not sampler.picks_the_raw_argmax
            row = next(rows(context, 1))
            assert 0 <= sampler.sample(context, row) < n_vocab
        finally:
            sampler.close()


def test_the_log_probability_of_the_argmax_needs_no_second_max(context: LlamaContext) -> None:
    meter = LogprobMeter(context.model.n_vocab)
    for row in rows(context, 6):
        logits = context.logits(row)
        token = int(logits.argmax())
        assert meter(logits, token, is_argmax=True) == meter(logits, token)
