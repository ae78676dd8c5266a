"""Impossible GGUF hyperparameters are refused by name before llama.cpp sees them."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGUFValueType as T

from engine.errors import ModelLoadFailedError
from engine.models.gguf_check import check_gguf, read_header
from tests.support.tiny_models import write_corrupt_model, write_hostile_model, write_tiny_model

U32, F32 = T.UINT32, T.FLOAT32


def test_a_good_model_passes_and_its_header_is_read(tmp_path: Path) -> None:
    path = write_tiny_model(tmp_path / "ok.gguf")
    check_gguf(path)
    header = read_header(path)
    assert header.metadata["llama.block_count"] == 2
    assert header.tensors["token_embd.weight"][0] == 64


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"llama.block_count": (0, U32)}, "llama.block_count"),
        ({"llama.block_count": (1, U32)}, "llama.block_count"),  # tensors for layer 1 exist
        ({"llama.attention.head_count": (0, U32)}, "llama.attention.head_count"),
        ({"llama.attention.head_count_kv": (3, U32)}, "llama.attention.head_count_kv"),
        ({"llama.attention.head_count": (6, U32)}, "llama.attention.head_count"),
        ({"llama.embedding_length": (0, U32)}, "llama.embedding_length"),
        ({"llama.embedding_length": (96, U32)}, "llama.embedding_length"),
        ({"llama.rope.dimension_count": (15, U32)}, "llama.rope.dimension_count"),
        ({"llama.rope.dimension_count": (64, U32)}, "llama.rope.dimension_count"),
        (
            {"llama.attention.layer_norm_rms_epsilon": (float("nan"), F32)},
            "llama.attention.layer_norm_rms_epsilon",
        ),
        (
            {"llama.attention.layer_norm_rms_epsilon": (-1.0, F32)},
            "llama.attention.layer_norm_rms_epsilon",
        ),
        ({"llama.rope.freq_base": (float("inf"), F32)}, "llama.rope.freq_base"),
        ({"llama.context_length": (0, U32)}, "llama.context_length"),
        ({"tokenizer.ggml.bos_token_id": (99999, U32)}, "tokenizer.ggml.bos_token_id"),
        ({"general.architecture": ("", T.STRING)}, "general.architecture"),
    ],
)
def test_impossible_values_are_refused_by_name(
    tmp_path: Path, overrides: dict[str, tuple[object, T]], key: str
) -> None:
    path = write_hostile_model(tmp_path / "bad.gguf", overrides)
    with pytest.raises(ModelLoadFailedError) as caught:
        check_gguf(path)
    assert caught.value.details["key"] == key
    assert key in caught.value.message


@pytest.mark.parametrize("kind", ["truncated", "garbage", "empty"])
def test_files_llama_cpp_rejects_itself_pass_through(tmp_path: Path, kind: str) -> None:
    check_gguf(write_corrupt_model(tmp_path / f"{kind}.gguf", kind=kind))  # type: ignore[arg-type]
