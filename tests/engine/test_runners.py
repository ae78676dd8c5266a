"""Each model runs in a child process: a native crash ends that model, not the server.

Real llama.cpp in real runner processes, killed with real signals: SIGKILL
(what the OOM killer sends), SIGABRT (what a GGML_ASSERT raises), and an
abort inside llama.cpp's own loader on a hostile file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from gguf import GGUFValueType

from engine.completion.prompts import TextPrompt
from engine.config import Settings
from engine.engine import Engine
from engine.errors import ModelCrashedError
from engine.events import EngineEvent
from engine.models import registry as registry_module
from engine.models.catalog import ModelSpec
from engine.models.registry import RegistryEvent
from engine.runtime.messages import SamplingParams
from tests.conftest import make_settings
from tests.support.tiny_models import write_hostile_model

LONG = SamplingParams(max_tokens=1500, ignore_eos=True)


def crash_settings(tmp_path: Path, tiny_models: dict[str, Path], **inference: object) -> Settings:
    return make_settings(
        tmp_path / "data",
        tiny_models,
        inference={"restart_backoff_seconds": 0.2, **inference},
    )


async def wait_for(condition: object, what: str, seconds: float = 60.0) -> None:
    assert callable(condition)
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def generating(engine: Engine, model_id: str) -> asyncio.Task[object]:
    """A long generation, started and known to be decoding."""
    task = asyncio.create_task(engine.run(model_id, TextPrompt("def f():\n"), LONG))
    worker = engine.registry.worker(model_id)
    await wait_for(lambda: worker.active_requests > 0, "the generation to start")
    return task


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGABRT])
async def test_a_dead_runner_fails_its_requests_and_comes_back(
    tmp_path: Path, tiny_models: dict[str, Path], sig: signal.Signals
) -> None:
    engine = Engine(crash_settings(tmp_path, tiny_models))
    events: list[EngineEvent] = []
    statuses: list[RegistryEvent] = []
    engine.bus.subscribe(events.append)
    engine.add_listener(statuses.append)
    try:
        await engine.worker_for("tiny-starcoder")
        await engine.worker_for("tiny-qwen")
        runner = engine.registry.worker("tiny-starcoder")
        pid = runner.pid
        assert pid is not None and pid != os.getpid()
        task = await generating(engine, "tiny-starcoder")
        os.kill(pid, sig)
        with pytest.raises(ModelCrashedError) as caught:
            await task
        assert sig.name in caught.value.message
        # It showed error with the reason (the restart may already be under way),
        # before the request failed: a client told of the crash finds the
        # model in error when it looks.
        assert any(
            e.status == "error" and e.error and sig.name in e.error
            for e in statuses
            if e.model_id == "tiny-starcoder" and e.kind == "status"
        ), statuses
        crashed = [e for e in events if e.type == "model_crashed"]
        assert crashed and sig.name in crashed[0].data["reason"]
        assert not [e for e in events if e.type == "model_load_failed"]
        # The other model never stopped serving.
        other = await engine.run("tiny-qwen", TextPrompt("x = "), SamplingParams(max_tokens=4))
        assert other.completion_tokens > 0
        # The supervisor restarts the crashed model in a new process.
        await wait_for(lambda: engine.model("tiny-starcoder").status == "loaded", "a restart")
        again = engine.registry.worker("tiny-starcoder")
        assert again.pid not in (None, pid)
        result = await engine.run(
            "tiny-starcoder", TextPrompt("y = "), SamplingParams(max_tokens=4)
        )
        assert result.completion_tokens > 0
        assert engine.health().status == "healthy"
    finally:
        await engine.close()


async def test_a_model_that_keeps_crashing_stays_in_error(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    engine = Engine(crash_settings(tmp_path, tiny_models, max_crashes=2))
    try:
        await engine.worker_for("tiny-starcoder")
        for crash in range(2):
            # Loaded (first by us, then by the supervisor's restart): kill it.
            await wait_for(
                lambda: engine.model("tiny-starcoder").status == "loaded", f"load {crash}"
            )
            pid = engine.registry.worker("tiny-starcoder").pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await wait_for(lambda: engine.model("tiny-starcoder").status == "error", "error")
        await asyncio.sleep(1.0)  # past the backoff: no restart comes
        view = engine.model("tiny-starcoder")
        assert view.status == "error"
        assert view.error is not None and "not restarted" in view.error
        assert engine.health().status == "degraded"
    finally:
        await engine.close()


async def test_unloading_ends_the_runner_process(engine: Engine) -> None:
    await engine.worker_for("tiny-starcoder")
    pid = engine.registry.worker("tiny-starcoder").pid
    assert pid is not None
    loaded = engine.model("tiny-starcoder").memory_usage_mb
    assert loaded is not None and loaded > 0
    result = await engine.unload_model("tiny-starcoder")
    assert result.memory_freed_mb > 0  # the runner's measured resident memory
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_an_abort_inside_llama_cpp_at_load_is_a_failed_load(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the GGUF checks, ``block_count = 0`` aborts llama.cpp's loader (SIGABRT)."""
    monkeypatch.setattr(registry_module, "check_gguf", lambda path: None)
    hostile = write_hostile_model(
        tmp_path / "zero.gguf", {"llama.block_count": (0, GGUFValueType.UINT32)}
    )
    settings = crash_settings(tmp_path, tiny_models)
    settings.models.append(ModelSpec(id="hostile", name="Hostile", path=hostile))
    engine = Engine(settings)
    try:
        await engine.load_model("hostile")
        await wait_for(lambda: engine.model("hostile").status == "error", "the failed load")
        error = engine.model("hostile").error
        assert error is not None and "runner" in error
        result = await engine.run("tiny-qwen", TextPrompt("z = "), SamplingParams(max_tokens=4))
        assert result.completion_tokens > 0
    finally:
        await engine.close()


async def test_thread_isolation_runs_the_same_protocol(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    engine = Engine(crash_settings(tmp_path, tiny_models, isolation="thread"))
    try:
        await engine.worker_for("tiny-starcoder")
        assert engine.registry.worker("tiny-starcoder").pid is None
        result = await engine.run(
            "tiny-starcoder", TextPrompt("a = "), SamplingParams(max_tokens=6)
        )
        assert result.completion_tokens > 0
    finally:
        await engine.close()


UNGUARDED_SCRIPT = """
import asyncio, multiprocessing, sys
from engine.config import load_settings
from engine.engine import Engine
from engine.errors import ModelLoadFailedError

async def main():
    settings = load_settings(
        None,
        data_dir=sys.argv[2],
        models=[{"id": "t", "name": "t", "path": sys.argv[1]}],
        include_default_model=False,
        completion={"model": "t"},
        preload=[],
    )
    engine = Engine(settings)
    try:
        await engine.worker_for("t")
        print("LOADED")
    finally:
        await engine.close()

# No `if __name__ == "__main__":` guard: the runner process imports this
# file too and starts an engine of its own there.
try:
    asyncio.run(main())
except ModelLoadFailedError as exc:
    if multiprocessing.current_process().name != "MainProcess":
        raise
    print("ERROR", exc.message)
"""


def test_a_script_without_a_main_guard_is_told_what_to_do(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(tiny_models["tiny-codellama"]), str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # the output says what happened
        cwd=Path(__file__).resolve().parents[2],
    )
    assert "ERROR" in done.stdout, done.stdout + done.stderr
    assert 'if __name__ == "__main__":' in done.stdout
