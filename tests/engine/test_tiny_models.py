"""The tiny GGUF test models load and run in real llama.cpp (no mocks)."""

from __future__ import annotations

import ctypes
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import llama_cpp
import pytest
from llama_cpp import Llama

from tests.support.tiny_models import (
    FIM_FAMILIES,
    STANDARD_MODELS,
    CorruptKind,
    TinyModelSpec,
    build_model_set,
    build_vocab,
    write_corrupt_model,
    write_tiny_model,
)

CODE_PROMPT = "def fibonacci(n):\n    if n <= 1:\n        return n\n    return"

ROUND_TRIP_SAMPLES: dict[str, str] = {
    "python": (
        "import os\n\n\nclass Node:\n    def __init__(self, value: int) -> None:\n"
        "        self.value = value\n\n    def total(self) -> int:\n"
        "        return sum(x for x in range(self.value) if x % 2 == 0)\n"
    ),
    "rust": (
        "use std::collections::HashMap;\n\npub fn main() {\n    let mut m: HashMap<&str, i32>"
        ' = HashMap::new();\n    m.insert("a", 1);\n    println!("{:?}", m.get("a"));\n}\n'
    ),
    "typescript": (
        "export interface User {\n  readonly id: number;\n  name?: string;\n}\n\n"
        "export const greet = async (u: User): Promise<string> => `hi ${u.name ?? 'anon'}`;\n"
    ),
    "unicode_identifiers": "größe = 3\n変数 = größe * 2  # ümlaut, 変数, ñ, Ωmega\n",
    "emoji_and_symbols": 'print("🚀 ✓ → ∑ 𝔘")\n',
    "tabs_crlf_spaces": "\tif x:\r\n\t\treturn  y  \r\n   \n",
    "leading_spaces": "    indented()",
    "fim_text_in_code": "s = '<fim_prefix><PRE><|fim_middle|><|file_sep|></s><s><unk>'",
    "empty": "",
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The standard tiny-model set, written once for this module."""
    return build_model_set(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="module")
def load(models: dict[str, Path]) -> Iterator[Callable[[str], Llama]]:
    """Load a model by name once per module (``n_ctx=512``) and close it afterwards."""
    cache: dict[str, Llama] = {}

    def _load(name: str) -> Llama:
        if name not in cache:
            cache[name] = Llama(model_path=str(models[name]), n_ctx=512, verbose=False)
        return cache[name]

    yield _load
    for llm in cache.values():
        llm.close()


def _spec(name: str) -> TinyModelSpec:
    return next(s for s in STANDARD_MODELS if s.name == name)


def _greedy(llm: Llama, prompt: str, n: int = 32) -> str:
    out = llm.create_completion(prompt, max_tokens=n, temperature=0.0)
    choice = out["choices"][0]  # type: ignore[index]
    assert choice["finish_reason"] == "length"
    return str(choice["text"])


def _low_level_detokenize(llm: Llama, tokens: list[int], *, remove_special: bool) -> str:
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    arr = (llama_cpp.llama_token * len(tokens))(*tokens)
    size = 64 + 8 * len(tokens)
    buf = ctypes.create_string_buffer(size)
    n = llama_cpp.llama_detokenize(vocab, arr, len(tokens), buf, size, remove_special, False)
    assert n >= 0
    return buf.raw[:n].decode("utf-8")


ALL_NAMES = [s.name for s in STANDARD_MODELS]


def test_standard_set_files(models: dict[str, Path]) -> None:
    assert sorted(models) == sorted(ALL_NAMES)
    for path in models.values():
        assert path.is_file()
        assert path.read_bytes()[:4] == b"GGUF"
        assert path.stat().st_size < 4 * 1024 * 1024


def test_writing_is_fast_and_deterministic(tmp_path: Path) -> None:
    start = time.perf_counter()
    a = write_tiny_model(tmp_path / "a.gguf", fim="qwen", seed=42)
    elapsed = time.perf_counter() - start
    b = write_tiny_model(tmp_path / "b.gguf", fim="qwen", seed=42, name="tiny-qwen-s42")
    c = write_tiny_model(tmp_path / "c.gguf", fim="qwen", seed=43, name="tiny-qwen-s42")
    assert elapsed < 1.0
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1]
    assert digest[0] != digest[2]
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_fim_token_ids(load: Callable[[str], Llama], name: str) -> None:
    spec = _spec(name)
    llm = load(name)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    expected = build_vocab(spec.fim)
    assert llama_cpp.llama_vocab_n_tokens(vocab) == expected.size
    assert llama_cpp.llama_model_n_ctx_train(llm.model) == 4096
    getters = {
        "pre": llama_cpp.llama_vocab_fim_pre,
        "suf": llama_cpp.llama_vocab_fim_suf,
        "mid": llama_cpp.llama_vocab_fim_mid,
        "pad": llama_cpp.llama_vocab_fim_pad,
        "rep": llama_cpp.llama_vocab_fim_rep,
        "sep": llama_cpp.llama_vocab_fim_sep,
        "eot": llama_cpp.llama_vocab_eot,
    }
    texts = FIM_FAMILIES[spec.fim].roles() if spec.fim else {}
    for role, getter in getters.items():
        token_id = getter(vocab)
        if role not in texts:
            assert token_id == llama_cpp.LLAMA_TOKEN_NULL, role
            continue
        assert token_id == expected.special_ids[role], role
        assert llama_cpp.llama_vocab_get_text(vocab, token_id).decode() == texts[role]
        assert llama_cpp.llama_vocab_is_control(vocab, token_id), role
    assert llama_cpp.llama_vocab_bos(vocab) == 1
    assert llama_cpp.llama_vocab_eos(vocab) == 2
    assert llama_cpp.llama_vocab_get_add_bos(vocab)
    assert not llama_cpp.llama_vocab_get_add_eos(vocab)
    assert llama_cpp.llama_vocab_nl(vocab) == expected.newline_id


@pytest.mark.parametrize("name", ["tiny-starcoder", "tiny-codellama", "tiny-deepseek", "tiny-qwen"])
def test_fim_tokens_are_special_only_when_asked(load: Callable[[str], Llama], name: str) -> None:
    spec = _spec(name)
    assert spec.fim is not None
    fim = FIM_FAMILIES[spec.fim]
    ids = build_vocab(spec.fim).special_ids
    llm = load(name)
    text = f"{fim.pre}x = 1{fim.suf}\n{fim.mid}"
    special = llm.tokenize(text.encode(), add_bos=False, special=True)
    assert special[0] == ids["pre"]
    assert ids["suf"] in special
    assert special[-1] == ids["mid"]
    plain = llm.tokenize(text.encode(), add_bos=False, special=False)
    assert not set(plain) & {ids["pre"], ids["suf"], ids["mid"]}
    expected = text.replace("\u2581", " ")  # SentencePiece reads a literal ▁ as a space
    assert llm.detokenize(plain).decode() == expected


def test_literal_sentencepiece_space_is_lossy(load: Callable[[str], Llama]) -> None:
    """Known SPM limitation: U+2581 in the input text comes back as a space."""
    llm = load("tiny-nofim")
    tokens = llm.tokenize("a\u2581b".encode(), add_bos=False)
    assert llm.detokenize(tokens).decode() == "a b"


@pytest.mark.parametrize("name", ALL_NAMES)
def test_greedy_generation_is_deterministic(
    load: Callable[[str], Llama], models: dict[str, Path], name: str
) -> None:
    llm = load(name)
    first = _greedy(llm, CODE_PROMPT)
    second = _greedy(llm, CODE_PROMPT)
    assert first
    assert first == second
    fresh = Llama(model_path=str(models[name]), n_ctx=512, verbose=False)
    try:
        assert _greedy(fresh, CODE_PROMPT) == first
    finally:
        fresh.close()


def test_different_seeds_generate_differently(load: Callable[[str], Llama]) -> None:
    outputs = {name: _greedy(load(name), CODE_PROMPT) for name in ALL_NAMES}
    assert _greedy(load("tiny-starcoder"), CODE_PROMPT) != _greedy(
        load("tiny-starcoder-b"), CODE_PROMPT
    )
    assert len(set(outputs.values())) == len(outputs), outputs


@pytest.mark.parametrize("name", ["tiny-starcoder", "tiny-codellama", "tiny-nofim"])
@pytest.mark.parametrize("temp", [0.0, 1.0])
def test_long_generation_never_stops_or_emits_special_tokens(
    load: Callable[[str], Llama], name: str, temp: float
) -> None:
    llm = load(name)
    suppressed = build_vocab(_spec(name).fim).suppressed_ids
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    prompt = llm.tokenize(CODE_PROMPT.encode())
    llm.set_seed(1234)
    generated: list[int] = []
    for token in llm.generate(prompt, temp=temp, top_k=0, top_p=1.0, min_p=0.0):
        assert not llama_cpp.llama_vocab_is_eog(vocab, token)
        assert token not in suppressed
        generated.append(token)
        if len(generated) == 400:
            break
    assert len(generated) == 400
    text = llm.detokenize(generated, prev_tokens=prompt).decode("utf-8")
    assert text.isascii()
    assert text.strip()


@pytest.mark.parametrize("sample", sorted(ROUND_TRIP_SAMPLES))
@pytest.mark.parametrize("name", ["tiny-starcoder", "tiny-deepseek", "tiny-nofim"])
def test_tokenize_round_trip(load: Callable[[str], Llama], name: str, sample: str) -> None:
    llm = load(name)
    text = ROUND_TRIP_SAMPLES[sample]
    tokens = llm.tokenize(text.encode(), add_bos=False)
    assert llm.detokenize(tokens).decode("utf-8") == text
    # With BOS, llama.cpp's own detokenizer (remove_special) is exact too.
    with_bos = llm.tokenize(text.encode(), add_bos=True)
    assert with_bos[0] == 1
    assert _low_level_detokenize(llm, with_bos, remove_special=True) == text


def test_tokenizer_merges_code_words_and_falls_back_to_bytes(
    load: Callable[[str], Llama],
) -> None:
    llm = load("tiny-starcoder")
    vocab = build_vocab("starcoder")
    ids = llm.tokenize(b"def return", add_bos=False)
    assert [vocab.tokens[i] for i in ids] == ["def", "\u2581return"]
    nl = llm.tokenize(b"\n", add_bos=False)
    assert nl == [vocab.newline_id]
    uni = llm.tokenize("変数".encode(), add_bos=False)
    assert len(uni) == 6  # two 3-byte characters through byte fallback
    assert all(vocab.tokens[i].startswith("<0x") for i in uni)


@pytest.mark.parametrize("name", ["tiny-starcoder", "tiny-codellama", "tiny-deepseek", "tiny-qwen"])
def test_fim_prompt_from_token_ids_generates(load: Callable[[str], Llama], name: str) -> None:
    llm = load(name)
    ids = build_vocab(_spec(name).fim).special_ids
    prefix = llm.tokenize(b"def add(a, b):\n    ", add_bos=False)
    suffix = llm.tokenize(b"\n\nprint(add(1, 2))\n", add_bos=False)
    prompt = [1, ids["pre"], *prefix, ids["suf"], *suffix, ids["mid"]]
    out = llm.create_completion(prompt, max_tokens=16, temperature=0.0)
    assert out["choices"][0]["text"]  # type: ignore[index]


def test_f32_variant_loads_and_generates(tmp_path: Path) -> None:
    path = write_tiny_model(tmp_path / "f32.gguf", fim=None, seed=9, dtype="f32", n_embd=128)
    llm = Llama(model_path=str(path), n_ctx=512, verbose=False)
    try:
        assert _greedy(llm, CODE_PROMPT, 16)
    finally:
        llm.close()


@pytest.mark.parametrize("kind", ["truncated", "garbage", "empty", "missing_tensor"])
def test_corrupt_model_fails_to_load_with_exception(tmp_path: Path, kind: CorruptKind) -> None:
    path = write_corrupt_model(tmp_path / f"{kind}.gguf", kind=kind)
    with pytest.raises(ValueError, match="Failed to load model"):
        Llama(model_path=str(path), n_ctx=512, verbose=False)
