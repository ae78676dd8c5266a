"""Shared bits for the benchmarks: an engine on the default model, and statistics."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from engine.completion.warming import WARM_DELAY_SECONDS
from engine.config import Settings, load_settings
from engine.runtime.llama_backend import repack_weights

# llama_cpp.Llama reads llama.cpp's default model parameters while it loads.
_PLAIN_LLAMA_LOCK = threading.Lock()


def default_model_settings(**inference: object) -> Settings:
    """Settings that serve only the embedded default model, with a scratch data dir."""
    data = Path(tempfile.mkdtemp(prefix="ai-ide-bench-"))
    return load_settings(None, data_dir=data, inference=dict(inference))


async def settle(busy: Callable[[], Awaitable[bool]]) -> None:
    """Return once ``busy()`` has been False for the context warm-up's delay and a bit.

    Servers compute a speculative next suggestion after answering and warm a
    changed context once the editor has been quiet for WARM_DELAY_SECONDS;
    on a small machine that work would share the CPU with the next measured
    request, so benchmarks wait for it between measurements.
    """
    quiet_since: float | None = None
    while True:
        if await busy():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter()
        elif time.perf_counter() - quiet_since > WARM_DELAY_SECONDS + 0.2:
            return
        await asyncio.sleep(0.01)


def plain_llama(model_path: Path, **kwargs: Any) -> Any:
    """llama-cpp-python's ``Llama``, repacking weights only where the engine does too.

    ``Llama`` has no argument for llama.cpp's ``use_extra_bufts``, and with
    it on, a CPU with AMX segfaults on K-quant models (see
    ``repack_weights``), so the baseline would crash where the engine does
    not. The default parameters it asks llama.cpp for are adjusted while it
    loads, under a lock.
    """
    import llama_cpp
    import llama_cpp.llama_cpp as native

    repack = repack_weights("auto")
    defaults = native.llama_model_default_params

    def adjusted() -> Any:
        params = defaults()
        params.use_extra_bufts = repack
        return params

    with _PLAIN_LLAMA_LOCK:
        native.llama_model_default_params = adjusted
        try:
            return llama_cpp.Llama(model_path=str(model_path), **kwargs)
        finally:
            native.llama_model_default_params = defaults


def median(values: list[float]) -> float:
    """The median of the measurements."""
    return statistics.median(values)


def report(name: str, value: float, target: str) -> None:
    """Print one benchmark figure in a grep-friendly line."""
    print(f"{name}: {value:.3f}  (target {target})", flush=True)


SAMPLE_PYTHON = """import math
from dataclasses import dataclass


@dataclass
class Circle:
    radius: float

    def area(self) -> float:
        return math.pi * self.radius ** 2

    def perimeter(self) -> float:
        return 2 * math.pi * self.radius


def total_area(shapes):
    return sum(shape.area() for shape in shapes)
"""
