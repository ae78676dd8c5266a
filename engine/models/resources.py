"""Measured system figures: process memory (psutil) and GPU memory (NVML).

GPU figures are ``None`` when no NVIDIA GPU or driver is present: the API
reports null rather than a made-up number.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from typing import Any

import psutil


@dataclass(frozen=True)
class GpuMemory:
    """Device memory of the first GPU, in MiB, and this process's share."""

    used_mb: float
    total_mb: float
    process_mb: float | None
    utilization_percent: float | None


@dataclass(frozen=True)
class SystemResources:
    """A snapshot of machine load."""

    cpu_usage_percent: float
    memory_usage_percent: float
    process_rss_mb: float
    gpu: GpuMemory | None


class ResourceMonitor:
    """Reads psutil and, where available, NVML. One per engine; thread-safe."""

    def __init__(self) -> None:
        self._process = psutil.Process(os.getpid())
        self._lock = threading.Lock()
        self._nvml: Any = None
        self._handle: Any = None
        self._nvml_checked = False
        # Prime psutil's CPU counter so the first reading is meaningful.
        psutil.cpu_percent(interval=None)

    def _gpu_handle(self) -> Any:
        with self._lock:
            if not self._nvml_checked:
                self._nvml_checked = True
                try:
                    import pynvml

                    pynvml.nvmlInit()
                    if pynvml.nvmlDeviceGetCount() > 0:
                        self._nvml = pynvml
                        self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
                except Exception:  # no driver, no GPU: GPU figures stay null
                    self._nvml = None
            return self._handle

    def rss_mb(self) -> float:
        """Resident memory of this process in MiB."""
        return float(self._process.memory_info().rss) / 2**20

    def gpu_memory(self) -> GpuMemory | None:
        """GPU memory in MiB, or None without an NVIDIA GPU."""
        handle = self._gpu_handle()
        if handle is None:
            return None
        nvml = self._nvml
        try:
            info = nvml.nvmlDeviceGetMemoryInfo(handle)
            process_mb: float | None = None
            with contextlib.suppress(Exception):
                for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                        process_mb = float(proc.usedGpuMemory) / 2**20
            util: float | None = None
            with contextlib.suppress(Exception):
                util = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            return GpuMemory(
                used_mb=float(info.used) / 2**20,
                total_mb=float(info.total) / 2**20,
                process_mb=process_mb,
                utilization_percent=util,
            )
        except Exception:
            return None

    def memory_footprint_mb(self) -> float:
        """Host RSS plus this process's GPU memory: what a model load adds to."""
        gpu = self.gpu_memory()
        device = 0.0
        if gpu is not None:
            device = gpu.process_mb if gpu.process_mb is not None else gpu.used_mb
        return self.rss_mb() + device

    def system(self) -> SystemResources:
        """CPU and memory load of the machine, and GPU memory if present."""
        return SystemResources(
            cpu_usage_percent=float(psutil.cpu_percent(interval=None)),
            memory_usage_percent=float(psutil.virtual_memory().percent),
            process_rss_mb=self.rss_mb(),
            gpu=self.gpu_memory(),
        )
