"""A random-weight llama model of a real size, quantized, for throughput measurements.

Weights are random (the figures are about speed, not quality); the shape is
what matters: TinyLlama-1.1B by default on a GPU, a small shape on a CPU.
Written as F16 with the ``gguf`` package, then quantized by llama.cpp itself.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

import gguf
import llama_cpp
import numpy as np


@dataclass(frozen=True)
class Shape:
    """Dimensions of a llama-architecture model."""

    name: str
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_vocab: int


SHAPES = {
    "tinyllama-1.1b": Shape("tinyllama-1.1b", 2048, 22, 32, 4, 5632, 32000),
    "codellama-7b": Shape("codellama-7b", 4096, 32, 32, 32, 11008, 32016),
    "small": Shape("small", 512, 6, 8, 4, 1408, 32000),
}

FIM = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")


def _vocabulary(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>", *FIM]
    scores = [0.0] * len(tokens)
    types = [2, 3, 3, 3, 3, 3]  # unknown, control...
    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        scores.append(0.0)
        types.append(6)
    for char in range(33, 127):
        tokens.append(chr(char))
        scores.append(-1.0)
        types.append(1)
    index = 0
    while len(tokens) < n_vocab:
        tokens.append(f"\u2581w{index}")
        scores.append(-2.0)
        types.append(1)
        index += 1
    return tokens, scores, types


def write_f16(path: Path, shape: Shape, seed: int = 0) -> None:
    """Write the random-weight F16 GGUF."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(f"random-{shape.name}")
    writer.add_context_length(8192)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_rope_dimension_count(shape.n_embd // shape.n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    tokens, scores, types = _vocabulary(shape.n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    for key, token_id in zip(
        (
            gguf.Keys.Tokenizer.FIM_PRE_ID,
            gguf.Keys.Tokenizer.FIM_SUF_ID,
            gguf.Keys.Tokenizer.FIM_MID_ID,
        ),
        (3, 4, 5),
        strict=True,
    ):
        writer.add_uint32(key, token_id)
    rng = np.random.default_rng(seed)
    head = shape.n_embd // shape.n_head

    def tensor(name: str, *dims: int) -> None:
        values = rng.standard_normal(dims, dtype=np.float32) * 0.02
        writer.add_tensor(name, values.astype(np.float16))

    tensor("token_embd.weight", shape.n_vocab, shape.n_embd)
    writer.add_tensor("output_norm.weight", np.ones(shape.n_embd, np.float32))
    tensor("output.weight", shape.n_vocab, shape.n_embd)
    for block in range(shape.n_layer):
        prefix = f"blk.{block}"
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(shape.n_embd, np.float32))
        tensor(f"{prefix}.attn_q.weight", shape.n_embd, shape.n_embd)
        tensor(f"{prefix}.attn_k.weight", shape.n_head_kv * head, shape.n_embd)
        tensor(f"{prefix}.attn_v.weight", shape.n_head_kv * head, shape.n_embd)
        tensor(f"{prefix}.attn_output.weight", shape.n_embd, shape.n_embd)
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(shape.n_embd, np.float32))
        tensor(f"{prefix}.ffn_gate.weight", shape.n_ff, shape.n_embd)
        tensor(f"{prefix}.ffn_up.weight", shape.n_ff, shape.n_embd)
        tensor(f"{prefix}.ffn_down.weight", shape.n_embd, shape.n_ff)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def quantize(source: Path, target: Path, ftype: int = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M) -> None:
    """Quantize with llama.cpp (Q4_K_M by default)."""
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = os.cpu_count() or 4
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(target).encode(), ctypes.byref(params)
    )
    if status != 0:
        raise RuntimeError(f"llama_model_quantize failed with {status}")


def make_model(directory: Path, shape: Shape) -> Path:
    """The quantized model file for ``shape`` (made once per directory)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"random-{shape.name}-q4_k_m.gguf"
    if not target.exists():
        source = directory / f"random-{shape.name}-f16.gguf"
        write_f16(source, shape)
        quantize(source, target)
        source.unlink()
    return target
