"""Shared bits for the benchmarks: an engine on the default model, and statistics."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from engine.config import Settings, load_settings


def default_model_settings(**inference: object) -> Settings:
    """Settings that serve only the embedded default model, with a scratch data dir."""
    data = Path(tempfile.mkdtemp(prefix="ai-ide-bench-"))
    return load_settings(None, data_dir=data, inference=dict(inference))


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
