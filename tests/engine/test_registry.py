"""Model registry: status machine, load queue, measured memory, failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from gguf import GGUFValueType

from engine.engine import Engine
from engine.errors import (
    ModelLoadFailedError,
    ModelNotFoundError,
    ModelNotLoadedError,
)
from engine.models.catalog import ModelSpec, build_catalog, load_catalog_file
from engine.models.registry import RegistryEvent
from tests.conftest import make_settings
from tests.support.tiny_models import write_corrupt_model, write_hostile_model

U32 = GGUFValueType.UINT32


async def wait_status(engine: Engine, model_id: str, *wanted: str, timeout: float = 30) -> str:
    """Poll until the model reaches one of the wanted statuses."""
    for _ in range(int(timeout / 0.02)):
        status = engine.model(model_id).status
        if status in wanted:
            return status
        await asyncio.sleep(0.02)
    raise AssertionError(f"{model_id} stayed {engine.model(model_id).status}")


async def test_lifecycle_available_loading_loaded_unloading_available(engine: Engine) -> None:
    events: list[RegistryEvent] = []
    engine.add_listener(events.append)
    assert engine.model("tiny-starcoder").status == "available"
    assert engine.model("tiny-starcoder").last_used is None

    ticket = await engine.load_model("tiny-starcoder", priority="high", timeout_seconds=60)
    assert ticket.status == "loading"
    assert ticket.queue_position >= 0
    assert ticket.estimated_completion_time_seconds >= 0
    assert await wait_status(engine, "tiny-starcoder", "loaded", "error") == "loaded"

    view = engine.model("tiny-starcoder")
    assert view.info is not None
    assert view.info.fim_family == "starcoder"
    assert view.memory_usage_mb is not None and view.memory_usage_mb > 0
    # Loading twice is idempotent.
    again = await engine.load_model("tiny-starcoder")
    assert (again.status, again.queue_position) == ("loaded", 0)

    result = await engine.unload_model("tiny-starcoder")
    assert result.unload_time_ms > 0
    assert result.memory_freed_mb >= 0
    assert engine.model("tiny-starcoder").status == "available"
    assert engine.model("tiny-starcoder").memory_usage_mb is None

    statuses = [e.status for e in events if e.kind == "status" and e.model_id == "tiny-starcoder"]
    assert statuses == ["loading", "loaded", "unloading", "available"]
    assert any(e.kind == "progress" and e.progress >= 1.0 for e in events)


async def test_queue_orders_loads_by_priority(engine: Engine) -> None:
    tickets = [
        await engine.load_model("tiny-codellama", priority="low"),
        await engine.load_model("tiny-deepseek", priority="low"),
        await engine.load_model("tiny-qwen", priority="high"),
    ]
    # The high-priority request is placed ahead of the low ones still queued.
    assert tickets[2].queue_position <= tickets[1].queue_position
    for model_id in ("tiny-codellama", "tiny-deepseek", "tiny-qwen"):
        assert await wait_status(engine, model_id, "loaded") == "loaded"
    # Estimates grow with the work ahead in the queue.
    assert tickets[1].estimated_completion_time_seconds >= 0


async def test_force_reload_replaces_the_worker(engine: Engine) -> None:
    await engine.load_model("tiny-qwen")
    await wait_status(engine, "tiny-qwen", "loaded")
    first = engine.registry.worker("tiny-qwen")
    ticket = await engine.load_model("tiny-qwen", force_reload=True)
    assert ticket.status == "loading"
    await wait_status(engine, "tiny-qwen", "loaded")
    assert engine.registry.worker("tiny-qwen") is not first


async def test_missing_file_is_an_error_status_not_a_crash(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    settings = make_settings(tmp_path, tiny_models)
    settings.models.append(
        ModelSpec(id="ghost", name="Ghost", path=tmp_path / "nowhere" / "ghost.gguf")
    )
    engine = Engine(settings)
    try:
        view = engine.model("ghost")
        assert view.status == "error"
        assert view.error is not None and "ghost.gguf" in view.error
        assert str(tmp_path) not in view.error  # no absolute paths
        assert engine.health().status == "degraded"
    finally:
        await engine.close()


async def test_corrupt_model_fails_to_load_and_others_keep_serving(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    bad = write_corrupt_model(tmp_path / "bad.gguf", kind="truncated")
    settings = make_settings(tmp_path, tiny_models)
    settings.models.append(ModelSpec(id="broken", name="Broken", path=bad))
    engine = Engine(settings)
    try:
        await engine.load_model("broken")
        assert await wait_status(engine, "broken", "loaded", "error") == "error"
        error = engine.model("broken").error
        assert error is not None and str(tmp_path) not in error
        assert engine.health().status == "degraded"
        with pytest.raises(ModelLoadFailedError):
            engine.registry.worker("broken")
        # Another model still loads and generates.
        await engine.load_model("tiny-starcoder")
        await wait_status(engine, "tiny-starcoder", "loaded")
        assert engine.registry.worker("tiny-starcoder").active_requests == 0
    finally:
        await engine.close()


async def test_unknown_model_suggests_a_close_match(engine: Engine) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        engine.model("tiny-starcodr")
    details = caught.value.details
    assert "tiny-starcoder" in details["available_models"]
    assert details["suggestion"] == "Use 'tiny-starcoder' instead"


async def test_unload_of_a_model_that_is_not_loaded(engine: Engine) -> None:
    with pytest.raises(ModelNotLoadedError):
        await engine.unload_model("tiny-deepseek")


def test_catalog_file_resolves_relative_paths(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[[models]]\nid = "qwen-coder"\nname = "Qwen2.5-Coder"\npath = "weights/q.gguf"\n'
        'fim = "qwen"\ncontext_length = 8192\n',
        encoding="utf-8",
    )
    specs = load_catalog_file(catalog)
    assert specs[0].path == tmp_path / "weights" / "q.gguf"
    assert specs[0].fim == "qwen"
    merged = build_catalog([], catalog, include_default=False)
    assert list(merged) == ["qwen-coder"]
    assert list(build_catalog([], None, include_default=False)) == ["gemma3-270m"]


@pytest.mark.parametrize("bad_id", ["../etc/passwd", "/abs/path", "a\\b", "%2e%2e", ""])
def test_catalog_rejects_path_like_ids(bad_id: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ModelSpec(id=bad_id, name="x", path=tmp_path / "x.gguf")


async def test_start_preloads_the_completion_model(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    engine = Engine(make_settings(tmp_path, tiny_models, preload=None))
    try:
        await engine.start()
        first = engine.default_model_id()
        assert await wait_status(engine, first, "loaded") == "loaded"
        # Only that one: the others stay available until asked for.
        assert [v.status for v in engine.list_models()].count("loaded") == 1
    finally:
        await engine.close()
    quiet = Engine(make_settings(tmp_path / "quiet", tiny_models, preload=None))
    try:
        await quiet.start(preload_default=False)
        assert all(v.status == "available" for v in quiet.list_models())
    finally:
        await quiet.close()


async def test_a_model_llama_cpp_would_abort_on_fails_cleanly(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    """``block_count = 0`` trips a GGML_ASSERT (SIGABRT) inside llama.cpp's loader."""
    bad = write_hostile_model(tmp_path / "zero-layers.gguf", {"llama.block_count": (0, U32)})
    settings = make_settings(tmp_path, tiny_models)
    settings.models.append(ModelSpec(id="hostile", name="Hostile", path=bad))
    engine = Engine(settings)
    try:
        await engine.load_model("hostile")
        assert await wait_status(engine, "hostile", "loaded", "error") == "error"
        error = engine.model("hostile").error
        assert error is not None and "llama.block_count" in error
        assert engine.health().status == "degraded"
        await engine.load_model("tiny-starcoder")
        assert await wait_status(engine, "tiny-starcoder", "loaded") == "loaded"
    finally:
        await engine.close()
