"""Tiny, deterministic llama-architecture GGUF models for tests.

The files written here are real GGUF models that llama.cpp loads and runs;
tests that use them exercise real inference (tokenizer, decode loop, sampling,
KV cache), only with random weights. They are written with the ``gguf``
package in about 20 ms each, so a test session can build a fresh set
in a temporary directory.

Design choices (what a test can rely on):

* **Architecture.** ``general.architecture = "llama"``: token embedding,
  per-block RMS norms, grouped-query attention (``n_head`` 4, ``n_head_kv`` 2
  by default), SwiGLU feed-forward, final RMS norm and an untied output
  matrix. ``context_length`` metadata is 4096. Two-dimensional weights are F16
  (``dtype="f32"`` gives an all-F32 file); norm vectors are always F32.
  A default model (vocabulary of 1445 to 1451 tokens) is about 0.6 MB.
* **Tokenizer.** ``tokenizer.ggml.model = "llama"`` (SentencePiece, llama.cpp's
  SPM tokenizer): ``<unk>`` (0), ``<s>`` (1, BOS), ``</s>`` (2, EOS), the 256
  byte-fallback tokens ``<0x00>`` .. ``<0xFF>`` (ids 3..258, ``TokenType.BYTE``),
  then normal pieces: every printable ASCII character, ``▁`` (the escaped
  space), runs of ``▁`` for indentation, common code keywords and identifiers
  from Python, Rust, TypeScript, Go and Java (bare and ``▁``-prefixed, with all
  their prefixes so that SPM's pairwise merges can reach them) and common
  operators. Anything else (newlines, tabs, non-ASCII text such as ``größe``
  or ``変数``) is tokenized through the byte-fallback tokens, so any UTF-8
  string round-trips exactly, with one inherent SentencePiece exception: a
  literal ``▁`` (U+2581) in the input reads as the escaped space and comes back
  as ``" "``. ``add_space_prefix`` is written as ``false`` (no implicit leading
  space), so ``detokenize(tokenize(text)) == text`` without BOS, and with BOS
  through llama.cpp's ``llama_detokenize(remove_special=True)``. (Beware:
  llama-cpp-python's ``Llama.detokenize`` drops one leading space whenever the
  first token is BOS, for any model.) ``add_bos_token`` is ``true``,
  ``add_eos_token`` ``false``. Every piece is at most 32 bytes, the buffer
  ``Llama.detokenize`` renders each token into.
* **FIM tokens.** The FIM family's tokens come last in the vocabulary, typed
  ``TokenType.CONTROL``, with their ids written under
  ``tokenizer.ggml.fim_{pre,suf,mid,pad,rep,sep}_token_id`` (see
  :data:`FIM_FAMILIES`). CodeLlama's ``<EOT>`` is also written as
  ``tokenizer.ggml.eot_token_id``. Note that llama.cpp treats the FIM
  pad/rep/sep tokens (and ``<EOT>``) as end-of-generation tokens.
* **Weights.** ``numpy.random.RandomState(seed)``; the same arguments always
  give byte-identical files, and different seeds give different greedy
  continuations.
* **Generation never stops early and emits only text.** Embedding dimension 0
  carries a positive constant for every token, and no attention or
  feed-forward output writes into it, so after the final RMS norm that
  coordinate is always positive. The output rows of the *suppressed* tokens
  (``<unk>``, BOS, EOS, every FIM/control token, and every byte token except
  ``<0x09>`` tab and ``<0x0A>`` newline) have a large negative weight on that
  coordinate and zeros elsewhere: their logits are strongly negative for any
  input. Generation, greedy or sampled, therefore runs until ``max_tokens``
  (it never produces EOS or another end-of-generation token), never emits
  special tokens, and its text is always ASCII (valid UTF-8 after every token).
  The margin is large: over a 2000-token prompt the suppressed logits stay
  below -100 while the best allowed logit stays above +9. The newline byte
  gets a small positive bias through the same coordinate so that completions
  contain line breaks now and then (how often depends on the seed).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import gguf
import numpy as np

__all__ = [
    "FIM_FAMILIES",
    "STANDARD_MODELS",
    "CorruptKind",
    "FimTokens",
    "TinyModelSpec",
    "TinyVocab",
    "build_model_set",
    "build_vocab",
    "write_corrupt_model",
    "write_tiny_model",
]

FimFamily = Literal["starcoder", "codellama", "deepseek", "qwen"]
CorruptKind = Literal["truncated", "garbage", "empty", "missing_tensor"]

SPIECE_SPACE = "\u2581"  # "▁", SentencePiece's escaped space
UNK_ID = 0
BOS_ID = 1
EOS_ID = 2
BYTE_BASE = 3  # <0x00> has id 3, <0xFF> has id 258
ALLOWED_BYTES = (0x09, 0x0A)  # tab and newline may be generated
CONTEXT_LENGTH = 4096


@dataclass(frozen=True)
class FimTokens:
    """The special-token texts of one FIM family.

    ``pre``/``suf``/``mid`` are always present; ``pad``, ``rep`` (repository
    name) and ``sep`` (file separator) only where the family has them, and
    ``eot`` is an extra end-of-turn token (CodeLlama's ``<EOT>``).
    """

    pre: str
    suf: str
    mid: str
    pad: str | None = None
    rep: str | None = None
    sep: str | None = None
    eot: str | None = None

    def roles(self) -> dict[str, str]:
        """Map role name (``pre``, ``suf``, ..., ``eot``) to token text, present roles only."""
        out: dict[str, str] = {}
        for role in ("pre", "suf", "mid", "pad", "rep", "sep", "eot"):
            text = getattr(self, role)
            if text is not None:
                out[role] = text
        return out


FIM_FAMILIES: Mapping[str, FimTokens] = {
    "starcoder": FimTokens(
        pre="<fim_prefix>",
        suf="<fim_suffix>",
        mid="<fim_middle>",
        pad="<fim_pad>",
        rep="<repo_name>",
        sep="<file_sep>",
    ),
    "codellama": FimTokens(pre="<PRE>", suf="<SUF>", mid="<MID>", eot="<EOT>"),
    "deepseek": FimTokens(
        pre="<\uff5cfim\u2581begin\uff5c>",  # <｜fim▁begin｜>
        suf="<\uff5cfim\u2581hole\uff5c>",  # <｜fim▁hole｜>
        mid="<\uff5cfim\u2581end\uff5c>",  # <｜fim▁end｜>
    ),
    "qwen": FimTokens(
        pre="<|fim_prefix|>",
        suf="<|fim_suffix|>",
        mid="<|fim_middle|>",
        pad="<|fim_pad|>",
        rep="<|repo_name|>",
        sep="<|file_sep|>",
    ),
}

_FIM_KEYS: Mapping[str, str] = {
    "pre": gguf.Keys.Tokenizer.FIM_PRE_ID,
    "suf": gguf.Keys.Tokenizer.FIM_SUF_ID,
    "mid": gguf.Keys.Tokenizer.FIM_MID_ID,
    "pad": gguf.Keys.Tokenizer.FIM_PAD_ID,
    "rep": gguf.Keys.Tokenizer.FIM_REP_ID,
    "sep": gguf.Keys.Tokenizer.FIM_SEP_ID,
    "eot": gguf.Keys.Tokenizer.EOT_ID,
}


@dataclass(frozen=True)
class TinyModelSpec:
    """One variant of the standard tiny-model set: file stem, FIM family, weight seed."""

    name: str
    fim: FimFamily | None
    seed: int

    @property
    def filename(self) -> str:
        """The file name used by :func:`build_model_set` (``<name>.gguf``)."""
        return f"{self.name}.gguf"


STANDARD_MODELS: tuple[TinyModelSpec, ...] = (
    TinyModelSpec("tiny-starcoder", "starcoder", 1),
    TinyModelSpec("tiny-codellama", "codellama", 2),
    TinyModelSpec("tiny-deepseek", "deepseek", 3),
    TinyModelSpec("tiny-qwen", "qwen", 4),
    TinyModelSpec("tiny-nofim", None, 5),
    TinyModelSpec("tiny-starcoder-b", "starcoder", 6),
)


# --------------------------------------------------------------------------- vocabulary

# Whitespace-separated; one line per language family, then common identifiers.
_WORDS_TEXT = """
def return if elif else for while in is not and or import from as class self None True False
print pass break continue try except finally raise with lambda yield async await global assert
del range len list dict str int float bool tuple set append __init__ __name__ __main__
fn let mut pub struct enum impl trait use mod match Some Ok Err Vec String Option Result usize
i32 u8 i64 f64 crate where loop move ref unsafe println unwrap
function const var export interface type string number boolean new this null undefined true
false extends implements private public readonly console log Promise void of typeof switch case
default throw catch
func package go defer chan nil err fmt static final System out include char unsigned sizeof
x y z i j k n a b value values result data name items item key args kwargs count total index
node left right fib fibonacci main test get set add sum max min user config path file text
line size buf
"""
_OPERATORS_TEXT = """
== != <= >= -> => :: += -= *= /= := ** && || () (): (); {} [] // /* */ ... .. "" '' \"\"\"
#[ self. ): ); ), ){ 0) 1) n) (n (self (x [i] +1 -1
"""
_SPACED_OPERATORS_TEXT = "= == != < > <= >= + - * / % -> => { } ( ) [ ] : += -= && || # // 0 1 2"

_WORDS: tuple[str, ...] = tuple(_WORDS_TEXT.split())
_OPERATORS: tuple[str, ...] = tuple(_OPERATORS_TEXT.split())
_SPACED_OPERATORS: tuple[str, ...] = tuple(_SPACED_OPERATORS_TEXT.split())

_INDENTS: tuple[int, ...] = (2, 3, 4, 6, 8, 12, 16)


@dataclass(frozen=True)
class TinyVocab:
    """A tiny model's vocabulary: token texts, scores, types and notable ids.

    ``special_ids`` maps ``"unk"``, ``"bos"``, ``"eos"`` and each FIM role
    present (``"pre"``, ``"suf"``, ``"mid"``, ``"pad"``, ``"rep"``, ``"sep"``,
    ``"eot"``) to its id. ``suppressed_ids`` are the ids the model never
    generates (see the module docstring).
    """

    tokens: tuple[str, ...]
    scores: tuple[float, ...]
    types: tuple[int, ...]
    special_ids: Mapping[str, int] = field(default_factory=dict)
    suppressed_ids: frozenset[int] = frozenset()

    @property
    def size(self) -> int:
        """Number of tokens."""
        return len(self.tokens)

    @property
    def newline_id(self) -> int:
        """Id of the ``<0x0A>`` byte token (llama.cpp's linefeed token)."""
        return BYTE_BASE + 0x0A


def _prefixes(text: str, min_len: int = 2) -> Iterable[str]:
    for end in range(min_len, len(text) + 1):
        yield text[:end]


def _normal_pieces() -> list[str]:
    pieces: list[str] = [SPIECE_SPACE]
    pieces.extend(chr(c) for c in range(0x21, 0x7F))
    for n in _INDENTS:
        pieces.append(SPIECE_SPACE * n)
    for word in _WORDS:
        pieces.extend(_prefixes(word))
        pieces.extend(_prefixes(SPIECE_SPACE + word))
    for op in _OPERATORS:
        pieces.extend(_prefixes(op))
    for op in _SPACED_OPERATORS:
        pieces.extend(_prefixes(SPIECE_SPACE + op))
    seen: set[str] = set()
    unique: list[str] = []
    for piece in pieces:
        if piece not in seen:
            seen.add(piece)
            unique.append(piece)
    return unique


def build_vocab(fim: FimFamily | None = "starcoder") -> TinyVocab:
    """Build the vocabulary written by :func:`write_tiny_model` for a FIM family.

    The layout is fixed: ``<unk>``, ``<s>``, ``</s>``, 256 byte tokens, the
    normal pieces (identical for every family), then the family's FIM tokens
    in the order pre, suf, mid, pad, rep, sep, eot (those present).
    """
    if fim is not None and fim not in FIM_FAMILIES:
        raise ValueError(f"unknown FIM family {fim!r}; expected one of {sorted(FIM_FAMILIES)}")
    tokens: list[str] = ["<unk>", "<s>", "</s>"]
    scores: list[float] = [0.0, 0.0, 0.0]
    types: list[int] = [
        int(gguf.TokenType.UNKNOWN),
        int(gguf.TokenType.CONTROL),
        int(gguf.TokenType.CONTROL),
    ]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(int(gguf.TokenType.BYTE))
    for piece in _normal_pieces():
        tokens.append(piece)
        # SPM merges the highest-scoring adjacent pair first: prefer longer pieces.
        scores.append(float(len(piece)))
        types.append(int(gguf.TokenType.NORMAL))
    special_ids: dict[str, int] = {"unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID}
    if fim is not None:
        for role, text in FIM_FAMILIES[fim].roles().items():
            special_ids[role] = len(tokens)
            tokens.append(text)
            scores.append(0.0)
            types.append(int(gguf.TokenType.CONTROL))
    if len(set(tokens)) != len(tokens):  # llama.cpp aborts on duplicate token texts
        raise AssertionError("duplicate token text in tiny vocabulary")
    # llama-cpp-python's Llama.detokenize renders each token into a 32-byte buffer
    # and silently drops longer pieces.
    if max(len(t.replace(SPIECE_SPACE, " ").encode()) for t in tokens) > 32:
        raise AssertionError("token piece longer than 32 bytes in tiny vocabulary")
    allowed_bytes = {BYTE_BASE + b for b in ALLOWED_BYTES}
    suppressed = {
        i for i, t in enumerate(types) if t != int(gguf.TokenType.NORMAL) and i not in allowed_bytes
    }
    return TinyVocab(
        tokens=tuple(tokens),
        scores=tuple(scores),
        types=tuple(types),
        special_ids=special_ids,
        suppressed_ids=frozenset(suppressed),
    )


# --------------------------------------------------------------------------- weights


def _tensors(
    vocab: TinyVocab,
    *,
    seed: int,
    n_embd: int,
    n_layer: int,
    n_head: int,
    n_head_kv: int,
    n_ff: int,
    newline_bias: float,
) -> dict[str, np.ndarray]:
    """Random llama weights in numpy (row-major) shapes: ``(out_features, in_features)``.

    GGUF stores dimensions reversed (ne0 first), so a numpy array of shape
    ``(n_vocab, n_embd)`` is the ggml tensor ``{n_embd, n_vocab}`` llama.cpp expects.
    """
    rng = np.random.RandomState(seed)
    head_dim = n_embd // n_head
    n_vocab = vocab.size
    const = float(np.sqrt(n_embd))  # the always-positive "bias" coordinate (dim 0)
    suppress_weight = -40.0

    def mat(rows: int, cols: int, scale: float) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    out: dict[str, np.ndarray] = {}
    embd = mat(n_vocab, n_embd, 1.0)
    embd[:, 0] = const
    out["token_embd.weight"] = embd
    for i in range(n_layer):
        p = f"blk.{i}"
        out[f"{p}.attn_norm.weight"] = np.ones(n_embd, dtype=np.float32)
        out[f"{p}.attn_q.weight"] = mat(n_head * head_dim, n_embd, 1.5 / np.sqrt(n_embd))
        out[f"{p}.attn_k.weight"] = mat(n_head_kv * head_dim, n_embd, 1.5 / np.sqrt(n_embd))
        out[f"{p}.attn_v.weight"] = mat(n_head_kv * head_dim, n_embd, 1.0 / np.sqrt(n_embd))
        wo = mat(n_embd, n_head * head_dim, 1.0 / np.sqrt(n_embd))
        wo[0, :] = 0.0  # never write into the bias coordinate
        out[f"{p}.attn_output.weight"] = wo
        out[f"{p}.ffn_norm.weight"] = np.ones(n_embd, dtype=np.float32)
        out[f"{p}.ffn_gate.weight"] = mat(n_ff, n_embd, 1.0 / np.sqrt(n_embd))
        out[f"{p}.ffn_up.weight"] = mat(n_ff, n_embd, 1.0 / np.sqrt(n_embd))
        down = mat(n_embd, n_ff, 1.0 / np.sqrt(n_ff))
        down[0, :] = 0.0
        out[f"{p}.ffn_down.weight"] = down
    out["output_norm.weight"] = np.ones(n_embd, dtype=np.float32)
    output = mat(n_vocab, n_embd, 0.6)
    output[:, 0] = 0.0
    suppressed = np.fromiter(sorted(vocab.suppressed_ids), dtype=np.int64)
    output[suppressed, :] = 0.0
    output[suppressed, 0] = suppress_weight
    output[vocab.newline_id, 0] = newline_bias
    out["output.weight"] = output
    return out


def _write_gguf(
    path: Path,
    *,
    vocab: TinyVocab,
    tensors: Mapping[str, np.ndarray],
    name: str,
    n_embd: int,
    n_layer: int,
    n_head: int,
    n_head_kv: int,
    n_ff: int,
    f16: bool,
    chat_template: str | None = None,
    overrides: Mapping[str, tuple[object, gguf.GGUFValueType]] | None = None,
) -> None:
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_name(name)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab.size)
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32))

    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(list(vocab.tokens))
    writer.add_token_scores(list(vocab.scores))
    writer.add_token_types(list(vocab.types))
    writer.add_unk_token_id(UNK_ID)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(False)
    for role, token_id in vocab.special_ids.items():
        key = _FIM_KEYS.get(role)
        if key is not None:
            writer.add_uint32(key, token_id)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    for key, (value, kind) in (overrides or {}).items():
        writer.kv_data[0][key] = gguf.GGUFValue(value=value, type=kind)

    for tensor_name, array in tensors.items():
        data = array.astype(np.float16) if f16 and array.ndim == 2 else array
        writer.add_tensor(tensor_name, data)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_tiny_model(
    path: Path,
    *,
    fim: FimFamily | None = "starcoder",
    seed: int = 0,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 192,
    dtype: Literal["f16", "f32"] = "f16",
    newline_bias: float = 1.0,
    name: str | None = None,
    chat_template: str | None = None,
) -> Path:
    """Write a tiny, deterministic llama-architecture GGUF model to ``path``.

    Args:
        path: Destination file; parent directories are created. The file is
            written beside it and renamed into place, so readers never see a
            partial file.
        fim: FIM family whose control tokens (and ``fim_*_token_id``
            metadata) the vocabulary gets, one of :data:`FIM_FAMILIES`; ``None``
            for a model without FIM tokens.
        seed: Seed of ``numpy.random.RandomState`` for all weights.
        n_embd: Embedding width; must be divisible by ``n_head``.
        n_layer: Number of transformer blocks.
        n_head: Attention heads.
        n_head_kv: Key/value heads (grouped-query attention when < ``n_head``).
        n_ff: Feed-forward width.
        dtype: ``"f16"`` (2-D weights in F16, norms F32) or ``"f32"``.
        newline_bias: Constant added (through the bias coordinate) to the
            newline token's logit; larger means more line breaks.
        name: ``general.name``; defaults to ``tiny-<fim or nofim>-s<seed>``.
        chat_template: a Jinja chat template stored as ``tokenizer.chat_template``
            (makes the file look like a chat model's).

    Returns:
        ``path``.

    The vocabulary is :func:`build_vocab` ``(fim)``; the module docstring
    explains the tokenizer and the weight construction.
    """
    if n_embd % n_head != 0:
        raise ValueError("n_embd must be divisible by n_head")
    if n_head % n_head_kv != 0:
        raise ValueError("n_head must be divisible by n_head_kv")
    return _write_model(
        Path(path),
        fim=fim,
        seed=seed,
        shape=(n_embd, n_layer, n_head, n_head_kv, n_ff),
        f16=dtype == "f16",
        newline_bias=newline_bias,
        name=name or f"tiny-{fim or 'nofim'}-s{seed}",
        chat_template=chat_template,
    )


def _write_model(
    path: Path,
    *,
    fim: FimFamily | None,
    seed: int,
    shape: tuple[int, int, int, int, int],
    f16: bool,
    newline_bias: float,
    name: str,
    omit: frozenset[str] = frozenset(),
    chat_template: str | None = None,
    overrides: Mapping[str, tuple[object, gguf.GGUFValueType]] | None = None,
) -> Path:
    n_embd, n_layer, n_head, n_head_kv, n_ff = shape
    path.parent.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab(fim)
    tensors = _tensors(
        vocab,
        seed=seed,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_head_kv=n_head_kv,
        n_ff=n_ff,
        newline_bias=newline_bias,
    )
    for tensor_name in omit:
        del tensors[tensor_name]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write_gguf(
            tmp,
            vocab=vocab,
            tensors=tensors,
            name=name,
            n_embd=n_embd,
            n_layer=n_layer,
            n_head=n_head,
            n_head_kv=n_head_kv,
            n_ff=n_ff,
            f16=f16,
            chat_template=chat_template,
            overrides=overrides,
        )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_hostile_model(
    path: Path, overrides: Mapping[str, tuple[object, gguf.GGUFValueType]], *, seed: int = 0
) -> Path:
    """A well-formed tiny model whose metadata ``overrides`` set impossible values.

    For example ``{"llama.block_count": (0, GGUFValueType.UINT32)}``: llama.cpp
    aborts the process on some of these instead of refusing the file.
    """
    return _write_model(
        Path(path),
        fim="starcoder",
        seed=seed,
        shape=(64, 2, 4, 2, 192),
        f16=True,
        newline_bias=1.0,
        name="tiny-hostile",
        overrides=overrides,
    )


def write_corrupt_model(path: Path, *, kind: CorruptKind = "truncated", seed: int = 0) -> Path:
    """Write a file that llama.cpp must refuse to load, for failure-path tests.

    Kinds:
        ``"truncated"``: a valid tiny model cut off in the middle of its tensor
        data (header and metadata intact; the loader sees tensors beyond the
        end of the file).
        ``"garbage"``: 4 KiB of random bytes (no GGUF magic).
        ``"empty"``: a zero-length file.
        ``"missing_tensor"``: a well-formed GGUF whose ``output_norm.weight``
        tensor is absent.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "truncated":
        write_tiny_model(path, seed=seed)
        size = path.stat().st_size
        with path.open("r+b") as fh:
            fh.truncate(size // 2)
    elif kind == "garbage":
        rng = np.random.RandomState(seed)
        path.write_bytes(rng.bytes(4096))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "missing_tensor":
        _write_model(
            path,
            fim="starcoder",
            seed=seed,
            shape=(64, 2, 4, 2, 192),
            f16=True,
            newline_bias=1.0,
            name="tiny-missing-tensor",
            omit=frozenset({"output_norm.weight"}),
        )
    else:
        raise ValueError(f"unknown corrupt kind {kind!r}")
    return path


def build_model_set(
    directory: Path, specs: Iterable[TinyModelSpec] = STANDARD_MODELS
) -> dict[str, Path]:
    """Write the standard tiny models into ``directory``; return ``{name: path}``.

    The standard set (:data:`STANDARD_MODELS`): ``tiny-starcoder`` (starcoder
    FIM, seed 1), ``tiny-codellama`` (2), ``tiny-deepseek`` (3), ``tiny-qwen``
    (4), ``tiny-nofim`` (no FIM tokens, 5) and ``tiny-starcoder-b`` (starcoder
    FIM, seed 6: same family, different weights). Meant for a session fixture,
    e.g. ``build_model_set(tmp_path_factory.mktemp("models"))``.
    """
    directory = Path(directory)
    return {
        spec.name: write_tiny_model(
            directory / spec.filename, fim=spec.fim, seed=spec.seed, name=spec.name
        )
        for spec in specs
    }
