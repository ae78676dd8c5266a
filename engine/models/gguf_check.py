"""Checks of a GGUF file's hyperparameters before llama.cpp sees them.

llama.cpp asserts (and so aborts the whole process) on some impossible
values instead of rejecting them: ``block_count = 0`` at load, head counts
that do not divide at the first decode. This module reads the header, the
metadata and the tensor table (never the weights) and names the first key
whose value cannot work. It is defence in depth: a model runs in its own
process, so an abort that slips through ends that model, not the server.

Files that are not GGUF at all, or are cut short, are left to llama.cpp,
which already rejects them cleanly.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.errors import ModelLoadFailedError

_MAGIC = b"GGUF"
# GGUF value types -> struct format (scalars); 8 = string, 9 = array.
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_STRING, _ARRAY = 8, 9
# Bounds far beyond any real model, small enough to catch garbage.
_MAX_LAYERS = 4096
_MAX_WIDTH = 1 << 20
_MAX_HEADS = 16384
_MAX_KV = 1 << 20
_MAX_TENSORS = 1 << 20


@dataclass(frozen=True)
class ArrayInfo:
    """An array value: its element type and length (elements are skipped)."""

    element_type: int
    length: int
    values: tuple[int | float | bool, ...] | None  # scalars only, when short


@dataclass(frozen=True)
class GgufHeader:
    """What the checks need: metadata values and tensor shapes."""

    metadata: dict[str, object]
    tensors: dict[str, tuple[int, ...]]


class _NotGguf(Exception):
    """Not a GGUF file, or cut short: llama.cpp reports those itself."""


def _reader(handle: BinaryIO) -> Callable[[str], tuple[object, ...]]:
    def read(fmt: str) -> tuple[object, ...]:
        size = struct.calcsize("<" + fmt)
        data = handle.read(size)
        if len(data) != size:
            raise _NotGguf("unexpected end of file")
        return struct.unpack("<" + fmt, data)

    return read


def _read_string(handle: BinaryIO, read: Callable[[str], tuple[object, ...]]) -> str:
    (length,) = read("Q")
    assert isinstance(length, int)
    if length > 1 << 24:
        raise _NotGguf("string too long")
    data = handle.read(length)
    if len(data) != length:
        raise _NotGguf("unexpected end of file")
    return data.decode("utf-8", errors="replace")


def _read_value(handle: BinaryIO, read: Callable[[str], tuple[object, ...]], kind: int) -> object:
    if kind in _SCALARS:
        return read(_SCALARS[kind])[0]
    if kind == _STRING:
        return _read_string(handle, read)
    if kind != _ARRAY:
        raise _NotGguf(f"unknown value type {kind}")
    element, length = read("IQ")
    assert isinstance(element, int) and isinstance(length, int)
    if element == _STRING:
        for _ in range(length):  # skipped: only the count matters here
            (size,) = read("Q")
            assert isinstance(size, int)
            handle.seek(size, 1)
        return ArrayInfo(element, length, None)
    if element not in _SCALARS:
        raise _NotGguf(f"unsupported array element type {element}")
    fmt = _SCALARS[element]
    width = struct.calcsize(fmt)
    if length <= 4096:
        data = handle.read(width * length)
        if len(data) != width * length:
            raise _NotGguf("unexpected end of file")
        values = struct.unpack(f"<{length}{fmt}", data)
        return ArrayInfo(element, length, values)
    handle.seek(width * length, 1)
    return ArrayInfo(element, length, None)


def read_header(path: Path) -> GgufHeader:
    """Metadata and tensor shapes of a GGUF file (raises _NotGguf if it is not one)."""
    with path.open("rb") as handle:
        read = _reader(handle)
        if handle.read(4) != _MAGIC:
            raise _NotGguf("no GGUF magic")
        version, tensor_count, kv_count = read("IQQ")
        assert isinstance(tensor_count, int) and isinstance(kv_count, int)
        if version not in (2, 3) or kv_count > _MAX_KV or tensor_count > _MAX_TENSORS:
            raise _NotGguf("unsupported header")
        metadata: dict[str, object] = {}
        for _ in range(kv_count):
            key = _read_string(handle, read)
            (kind,) = read("I")
            assert isinstance(kind, int)
            metadata[key] = _read_value(handle, read, kind)
        tensors: dict[str, tuple[int, ...]] = {}
        for _ in range(tensor_count):
            name = _read_string(handle, read)
            (dims,) = read("I")
            assert isinstance(dims, int)
            if dims > 8:
                raise _NotGguf("too many tensor dimensions")
            shape = tuple(int(d) for d in read("Q" * dims)) if dims else ()  # type: ignore[call-overload]
            read("IQ")  # tensor type, data offset
            tensors[name] = shape
    return GgufHeader(metadata, tensors)


def _refuse(key: str, value: object, why: str) -> ModelLoadFailedError:
    return ModelLoadFailedError(
        f"Model file has an impossible value for {key} ({value!r}): {why}", {"key": key}
    )


def _count(meta: dict[str, object], key: str) -> int | list[int] | None:
    """A count that may be per layer (an array) or one value; None if absent."""
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, ArrayInfo):
        if value.values is None:
            return None
        return [int(v) for v in value.values]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(key, value, "not an integer")
    return value


def _positive(meta: dict[str, object], key: str, upper: int, *, zero_ok: bool = False) -> None:
    value = _count(meta, key)
    values = value if isinstance(value, list) else [] if value is None else [value]
    lowest = 0 if zero_ok else 1
    for item in values:
        if not lowest <= item <= upper:
            raise _refuse(key, value, f"must be between {lowest} and {upper}")


def _finite(meta: dict[str, object], key: str, low: float, high: float) -> None:
    value = meta.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse(key, value, "not a number")
    if not (math.isfinite(value) and low < value < high):
        raise _refuse(key, value, f"must be finite, above {low:g} and below {high:g}")


def check_hyperparameters(header: GgufHeader) -> None:
    """Raise MODEL_LOAD_FAILED naming the first impossible hyperparameter."""
    meta = header.metadata
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise _refuse("general.architecture", arch, "missing")
    layers = meta.get(f"{arch}.block_count")
    if layers is None:
        raise _refuse(f"{arch}.block_count", layers, "missing")
    _positive(meta, f"{arch}.block_count", _MAX_LAYERS)
    _positive(meta, f"{arch}.embedding_length", _MAX_WIDTH)
    _positive(meta, f"{arch}.context_length", 1 << 24)
    _positive(meta, f"{arch}.feed_forward_length", _MAX_WIDTH * 16, zero_ok=True)
    heads_key = f"{arch}.attention.head_count"
    kv_key = f"{arch}.attention.head_count_kv"
    _positive(meta, heads_key, _MAX_HEADS)
    _positive(meta, kv_key, _MAX_HEADS, zero_ok=True)  # 0: a layer without attention
    heads, kv_heads = _count(meta, heads_key), _count(meta, kv_key)
    if isinstance(heads, int) and isinstance(kv_heads, int) and kv_heads and heads % kv_heads:
        raise _refuse(kv_key, kv_heads, f"must divide {heads_key} ({heads})")
    width = _count(meta, f"{arch}.embedding_length")
    key_length = meta.get(f"{arch}.attention.key_length")
    if isinstance(width, int) and isinstance(heads, int) and key_length is None and width % heads:
        raise _refuse(heads_key, heads, f"must divide {arch}.embedding_length ({width})")
    rope_key = f"{arch}.rope.dimension_count"
    rope = _count(meta, rope_key)
    head_dim = key_length if isinstance(key_length, int) else None
    if head_dim is None and isinstance(width, int) and isinstance(heads, int):
        head_dim = width // heads
    if isinstance(rope, int) and (rope % 2 or (head_dim is not None and rope > head_dim)):
        raise _refuse(rope_key, rope, f"must be even and at most the head size ({head_dim})")
    for suffix in ("layer_norm_rms_epsilon", "layer_norm_epsilon"):
        _finite(meta, f"{arch}.attention.{suffix}", 0.0, 1.0)
    _finite(meta, f"{arch}.rope.freq_base", 0.0, 1e12)
    scale = meta.get(f"{arch}.rope.scaling.factor")
    if scale is not None:
        _finite(meta, f"{arch}.rope.scaling.factor", 0.0, 1e6)
    _check_vocabulary(header, arch)
    _check_layers(header, f"{arch}.block_count", layers)


def _check_vocabulary(header: GgufHeader, arch: str) -> None:
    meta = header.metadata
    tokens = meta.get("tokenizer.ggml.tokens")
    n_vocab = tokens.length if isinstance(tokens, ArrayInfo) else None
    if n_vocab is not None and n_vocab == 0:
        raise _refuse("tokenizer.ggml.tokens", 0, "the vocabulary is empty")
    embedding = header.tensors.get("token_embd.weight")
    width = meta.get(f"{arch}.embedding_length")
    if embedding is not None and len(embedding) == 2:
        if isinstance(width, int) and embedding[0] != width:
            raise _refuse(
                f"{arch}.embedding_length", width, f"token_embd.weight is {embedding[0]} wide"
            )
        if n_vocab is not None and embedding[1] != n_vocab:
            raise _refuse(
                "tokenizer.ggml.tokens",
                n_vocab,
                f"token_embd.weight has {embedding[1]} rows",
            )
    if n_vocab is None:
        return
    for key in (
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.unknown_token_id",
    ):
        value = meta.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= n_vocab:
            # llama.cpp ignores some out-of-range special ids and asserts on others.
            raise _refuse(key, value, f"the vocabulary has {n_vocab} tokens")


def _check_layers(header: GgufHeader, key: str, layers: object) -> None:
    if not isinstance(layers, int):
        return
    seen = {
        int(name.split(".")[1])
        for name in header.tensors
        if name.startswith("blk.") and name.split(".")[1].isdigit()
    }
    if seen and max(seen) >= layers:
        raise _refuse(key, layers, f"tensors exist for layer {max(seen)}")


def check_gguf(path: Path) -> None:
    """Refuse a GGUF file with impossible hyperparameters (MODEL_LOAD_FAILED names the key).

    A file that is not GGUF or is cut short passes through: llama.cpp fails
    those cleanly, with its own message.
    """
    try:
        header = read_header(path)
    except (_NotGguf, OSError, struct.error):
        return
    check_hyperparameters(header)
