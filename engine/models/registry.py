"""The model registry: status of every catalog model, loading and unloading.

Status machine: ``available -> loading -> loaded -> unloading -> available``,
plus ``error`` (from loading, for a model whose file is missing, or after a
crash). Loads wait in one priority queue served by one loader thread, so
load-time and memory measurements of one model are not mixed with another's.

Each loaded model runs in a runner (a child process, see
:mod:`engine.runtime.runner`). When one dies, the registry is the supervisor:
the model shows ``error`` with the reason, a ``crashed`` event goes out, and
it is loaded again after a backoff that doubles per crash, until
``max_crashes`` within ``crash_window_seconds``, after which it stays
``error`` until someone asks for a load.

A remote model (``backend = "llama-server"`` or ``"openai"``) is served by a
:class:`~engine.remote.runner.RemoteRunner` behind the same interface: its
load is a probe of the engine (and a load request to a llama-server router),
its "crash" is the circuit breaker opening. An unreachable engine is probed
again with the same doubling backoff, capped at ``_REMOTE_RETRY_MAX_SECONDS``
and without the crash limit, so the model comes back by itself once its
engine does. Its unload answers ``CONFLICT`` (409) unless the engine is a
router that unloads on request.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import difflib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from engine.config import InferenceSettings
from engine.errors import (
    EngineError,
    ModelBusyError,
    ModelLoadFailedError,
    ModelLoadingError,
    ModelManagedRemotelyError,
    ModelNotFoundError,
    ModelNotLoadedError,
)
from engine.models.catalog import ModelSpec
from engine.models.gguf_check import check_gguf
from engine.models.resources import ResourceMonitor
from engine.remote.runner import RemoteRunner
from engine.runtime.llama_backend import ContextConfig
from engine.runtime.port import ModelRunner
from engine.runtime.runner import RunnerClient, runner_rss_mb
from engine.runtime.worker import ModelInfo, WorkerConfig

log = logging.getLogger(__name__)

ModelStatus = Literal["available", "loading", "loaded", "unloading", "error"]
LoadPriority = Literal["high", "normal", "low"]
_PRIORITY_RANK: dict[str, int] = {"high": 0, "normal": 1, "low": 2}
# Until a load has been measured, estimates assume this read speed.
_INITIAL_LOAD_BYTES_PER_S = 256 * 2**20
# An unreachable remote engine is probed again at most this far apart.
_REMOTE_RETRY_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class ModelView:
    """A snapshot of one model's state, safe to hand to any thread."""

    spec: ModelSpec
    status: ModelStatus
    error: str | None
    memory_usage_mb: float | None
    last_used: datetime | None
    loaded_at: datetime | None
    load_progress: float
    info: ModelInfo | None
    file_size_bytes: int | None
    # The cells one request can use: measured once loaded; before, what the
    # catalog entry and the KV layout give (a slot's share with "per_slot").
    request_context: int


@dataclass(frozen=True)
class LoadTicket:
    """The answer to a load request."""

    model_id: str
    status: ModelStatus
    queue_position: int
    estimated_completion_time_seconds: float


@dataclass(frozen=True)
class UnloadResult:
    """Measured effect of an unload."""

    model_id: str
    memory_freed_mb: float
    unload_time_ms: float


@dataclass(frozen=True)
class RegistryEvent:
    """A status change or load progress, for webhooks and editor progress."""

    model_id: str
    kind: Literal["status", "progress", "crashed"]
    status: ModelStatus
    progress: float = 0.0
    error: str | None = None
    memory_usage_mb: float | None = None
    previous: ModelStatus | None = None


Listener = Callable[[RegistryEvent], None]
PathResolver = Callable[[ModelSpec], Path]


@dataclass
class _State:
    spec: ModelSpec
    status: ModelStatus = "available"
    error: str | None = None
    worker: ModelRunner | None = None
    info: ModelInfo | None = None
    memory_usage_mb: float | None = None
    last_used: datetime | None = None
    loaded_at: datetime | None = None
    load_progress: float = 0.0
    load_started: float | None = None
    file_size: int | None = None
    crashes: list[float] = field(default_factory=list)  # monotonic times, in the window


@dataclass(order=True)
class _LoadJob:
    rank: int
    order: int
    model_id: str = ""
    timeout: float = 0.0


def _trim_heap() -> None:
    """Ask glibc to return freed heap pages to the OS so unloads show up in RSS."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).malloc_trim(0)


class ModelRegistry:
    """Tracks, loads and unloads the catalog's models."""

    def __init__(
        self,
        catalog: dict[str, ModelSpec],
        settings: InferenceSettings,
        resources: ResourceMonitor,
        resolve_path: PathResolver,
        listener: Listener | None = None,
    ) -> None:
        self._settings = settings
        self._resources = resources
        self._resolve_path = resolve_path
        self._listener = listener
        self._lock = threading.Condition()
        self._states = {model_id: _State(spec) for model_id, spec in catalog.items()}
        self._queue: list[_LoadJob] = []
        self._order = itertools.count()
        self._load_speed: float | None = None  # measured bytes/s of the last loads
        self._closing = False
        self._loading: ModelRunner | None = None  # the load in progress, to abandon at close
        self._loader = threading.Thread(target=self._load_loop, name="model-loader", daemon=True)
        self._loader.start()
        for state in self._states.values():
            self._check_file(state)

    # -- views ---------------------------------------------------------------

    def _view(self, state: _State) -> ModelView:
        return ModelView(
            spec=state.spec,
            status=state.status,
            error=state.error,
            memory_usage_mb=state.memory_usage_mb,
            last_used=state.last_used,
            loaded_at=state.loaded_at,
            load_progress=state.load_progress,
            info=state.info,
            file_size_bytes=state.file_size,
            request_context=self._request_context(state),
        )

    def _request_context(self, state: _State) -> int:
        if state.info is not None:
            return state.info.n_ctx
        spec = state.spec
        if spec.is_remote or self._settings.kv_cache == "shared":
            return spec.context_length
        return spec.context_length // self._settings.n_seq_max

    def views(self) -> list[ModelView]:
        """Snapshots of every model, in catalog order."""
        with self._lock:
            return [self._view(s) for s in self._states.values()]

    def view(self, model_id: str) -> ModelView:
        """Snapshot of one model (MODEL_NOT_FOUND if unknown)."""
        with self._lock:
            return self._view(self._state(model_id))

    @property
    def model_ids(self) -> list[str]:
        """Catalog ids, in order."""
        return list(self._states)

    def _state(self, model_id: str) -> _State:
        state = self._states.get(model_id)
        if state is None:
            raise self.not_found(model_id)
        return state

    def not_found(self, model_id: str) -> ModelNotFoundError:
        """The documented MODEL_NOT_FOUND error, with a suggestion."""
        available = list(self._states)
        close = difflib.get_close_matches(model_id, available, n=1, cutoff=0.0)
        loaded = [m for m, s in self._states.items() if s.status == "loaded"]
        suggestion_id = close[0] if close else (loaded[0] if loaded else None)
        details: dict[str, object] = {"available_models": available}
        if suggestion_id is not None:
            details["suggestion"] = f"Use '{suggestion_id}' instead"
        return ModelNotFoundError(f"Requested model '{model_id}' is not available", details)

    def _emit(self, event: RegistryEvent) -> None:
        if self._listener is not None:
            try:
                self._listener(event)
            except Exception:
                log.exception("registry listener failed")

    def _set_status(self, state: _State, status: ModelStatus, error: str | None = None) -> None:
        previous = state.status
        state.status = status
        state.error = error
        self._lock.notify_all()
        self._emit(
            RegistryEvent(
                state.spec.id,
                "status",
                status,
                error=error,
                memory_usage_mb=state.memory_usage_mb,
                previous=previous,
            )
        )

    def _check_file(self, state: _State) -> bool:
        """Mark a model whose file is missing as ``error``; True if the file exists."""
        if state.spec.path is None:
            return True  # embedded: assembled on load
        try:
            state.file_size = state.spec.path.stat().st_size
        except OSError:
            state.file_size = None
            with self._lock:
                self._set_status(state, "error", f"GGUF file not found: {state.spec.path.name}")
            return False
        return True

    # -- loading -------------------------------------------------------------

    def _estimate_locked(self, model_id: str) -> tuple[int, float]:
        speed = self._load_speed or _INITIAL_LOAD_BYTES_PER_S
        default_size = 512 * 2**20
        seconds = 0.0
        for state in self._states.values():
            if state.status == "loading" and state.load_started is not None:
                size = state.file_size or default_size
                elapsed = time.monotonic() - state.load_started
                seconds += max(0.0, size / speed - elapsed)
        ordered = sorted(self._queue)
        position = 0
        for index, job in enumerate(ordered):
            size = self._states[job.model_id].file_size or default_size
            seconds += size / speed
            if job.model_id == model_id:
                position = index
                break
        return position, seconds

    def request_load(
        self,
        model_id: str,
        priority: LoadPriority = "normal",
        timeout_seconds: float | None = None,
        force_reload: bool = False,
    ) -> LoadTicket:
        """Queue a load (or report the one in progress); returns at once."""
        state = self._state(model_id)
        if force_reload and state.status == "loaded":
            self.unload(model_id)
        with self._lock:
            if state.status in ("loaded", "unloading"):
                return LoadTicket(model_id, state.status, 0, 0.0)
            queued = any(job.model_id == model_id for job in self._queue)
            if state.status == "loading" and not queued:
                _, seconds = self._estimate_locked(model_id)
                return LoadTicket(model_id, "loading", 0, round(seconds, 2))
            if not queued:
                timeout = timeout_seconds or self._settings.load_timeout_seconds
                heapq.heappush(
                    self._queue,
                    _LoadJob(_PRIORITY_RANK[priority], next(self._order), model_id, timeout),
                )
                self._set_status(state, "loading")
                state.load_progress = 0.0
            position, seconds = self._estimate_locked(model_id)
            return LoadTicket(model_id, "loading", position, round(seconds, 2))

    def _load_loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._lock.wait()
                if self._closing:
                    return
                job = heapq.heappop(self._queue)
                state = self._states[job.model_id]
                state.load_started = time.monotonic()
            self._load_one(state, job.timeout)

    def _progress(self, state: _State) -> Callable[[float], None]:
        last = [-1.0]

        def report(value: float) -> None:
            state.load_progress = value
            # llama.cpp calls this per tensor; a few events are enough.
            if value - last[0] >= 0.05 or value >= 1.0:
                last[0] = value
                self._emit(RegistryEvent(state.spec.id, "progress", "loading", progress=value))

        return report

    def _load_remote(self, state: _State, timeout: float, *, quiet: bool = False) -> None:
        """Probe a remote engine (a router loads the model); the model serves from there.

        ``quiet``: a re-probe of a model already ``error``, which says nothing
        new (no status event) while the engine stays unreachable for the same reason.
        """
        spec = state.spec
        worker = RemoteRunner(
            spec,
            request_timeout=self._settings.request_timeout_seconds,
            max_queue=self._settings.max_queue,
        )
        worker.on_exit = lambda reason: self._crashed(state, worker, reason)
        with self._lock:
            self._loading = worker
        try:
            info = worker.start(timeout=timeout)
        except EngineError as exc:
            with self._lock:
                self._loading = None
                if not (quiet and state.status == "error" and state.error == exc.message):
                    self._set_status(state, "error", exc.message)
            if exc.details.get("unreachable"):
                self._retry_remote(state)
            return
        with self._lock:
            self._loading = None
            state.worker = worker
            state.info = info
            state.crashes.clear()
            state.memory_usage_mb = None  # held by the remote engine, not measured here
            state.loaded_at = datetime.now(UTC)
            state.load_progress = 1.0
            self._set_status(state, "loaded")

    def _retry_remote(self, state: _State) -> None:
        """Probe an unreachable remote engine again later (doubling, capped; no limit)."""
        with self._lock:
            if self._closing:
                return
            state.crashes.append(time.monotonic())
            attempts = len(state.crashes)
        delay = min(
            self._settings.restart_backoff_seconds * 2 ** min(attempts - 1, 16),
            _REMOTE_RETRY_MAX_SECONDS,
        )
        timer = threading.Timer(delay, self._reprobe, args=(state,))
        timer.daemon = True
        timer.start()

    def _reprobe(self, state: _State) -> None:
        with self._lock:
            if self._closing or state.status != "error" or state.worker is not None:
                return  # loaded, unloaded or shut down meanwhile
        self._load_remote(state, self._settings.load_timeout_seconds, quiet=True)

    def _load_one(self, state: _State, timeout: float) -> None:
        spec = state.spec
        if spec.is_remote:
            self._load_remote(state, timeout)
            return
        try:
            path = self._resolve_path(spec)
            state.file_size = path.stat().st_size
            check_gguf(path)  # values llama.cpp would abort on, named before it sees them
            config = WorkerConfig(
                path=path,
                n_gpu_layers=spec.n_gpu_layers,
                use_mmap=self._settings.use_mmap,
                weight_repack=self._settings.weight_repack,
                context=ContextConfig(
                    n_ctx=spec.context_length,
                    n_batch=self._settings.n_batch,
                    n_ubatch=self._settings.n_ubatch,
                    n_seq_max=self._settings.n_seq_max,
                    n_threads=self._settings.n_threads,
                    flash_attn=self._settings.flash_attn,
                    kv_cache=self._settings.kv_cache,
                    swa_full=self._settings.swa_cache == "full",
                ),
                fim_family=spec.fim,
                max_queue=self._settings.max_queue,
                cache_reuse_min=self._settings.cache_reuse_tokens,
                rpc_servers=spec.rpc_servers,
            )
            before = self._resources.memory_footprint_mb()
            started = time.monotonic()
            worker = RunnerClient(
                spec.id,
                config,
                on_progress=self._progress(state),
                isolation=self._settings.isolation,
                stream_interval=self._settings.stream_interval_ms / 1000.0,
            )
            worker.on_exit = lambda reason: self._crashed(state, worker, reason)
            with self._lock:
                self._loading = worker
            try:
                info = worker.start(timeout=timeout)
            finally:
                with self._lock:
                    self._loading = None
            elapsed = max(time.monotonic() - started, 1e-3)
            after = self._resources.memory_footprint_mb()
            runner_mb = runner_rss_mb(worker)
        except FileNotFoundError:
            with self._lock:
                self._set_status(state, "error", "GGUF file not found")
            return
        except EngineError as exc:
            with self._lock:
                self._set_status(state, "error", exc.message)
            return
        except Exception as exc:
            log.exception("loading %s failed", spec.id)
            with self._lock:
                self._set_status(state, "error", f"load failed: {type(exc).__name__}")
            return
        speed = (state.file_size or info.size_bytes) / elapsed
        with self._lock:
            self._load_speed = speed if self._load_speed is None else (self._load_speed + speed) / 2
            state.worker = worker
            state.info = info
            # The runner process's resident memory when it has its own, else
            # the measured growth of this process; llama.cpp's own accounting
            # of the weights is the floor when the OS shares pages.
            grown = runner_mb if runner_mb is not None else after - before
            state.memory_usage_mb = round(max(grown, info.size_bytes / 2**20), 1)
            state.loaded_at = datetime.now(UTC)
            state.load_progress = 1.0
            self._set_status(state, "loaded")

    def _crashed(self, state: _State, worker: ModelRunner, reason: str) -> None:
        """A runner died under a loaded model (called on the runner's reader thread)."""
        settings = self._settings
        if state.spec.is_remote:
            self._remote_down(state, worker, reason)
            return
        with self._lock:
            if state.worker is not worker:
                return  # an old runner, already replaced or unloaded
            now = time.monotonic()
            state.crashes = [t for t in state.crashes if now - t < settings.crash_window_seconds]
            state.crashes.append(now)
            crashes = len(state.crashes)
            give_up = crashes >= settings.max_crashes or self._closing
            state.worker = None
            state.info = None
            state.memory_usage_mb = None
            state.load_progress = 0.0
            self._emit(RegistryEvent(state.spec.id, "crashed", "error", error=reason))
            if give_up:
                note = f"{crashes} crashes in {settings.crash_window_seconds:g} s: not restarted"
            else:
                note = "restarting"
            self._set_status(state, "error", f"crashed ({reason}); {note}")
        if give_up:
            return
        delay = settings.restart_backoff_seconds * 2 ** (crashes - 1)
        timer = threading.Timer(delay, self._restart, args=(state,))
        timer.daemon = True
        timer.start()

    def _remote_down(self, state: _State, worker: ModelRunner, reason: str) -> None:
        """A remote engine stopped answering: ``error`` now, probed again later."""
        with self._lock:
            if state.worker is not worker:
                return
            state.worker = None
            state.info = None
            state.load_progress = 0.0
            self._emit(RegistryEvent(state.spec.id, "crashed", "error", error=reason))
            self._set_status(state, "error", reason)
        self._retry_remote(state)

    def _restart(self, state: _State) -> None:
        with self._lock:
            if self._closing or state.status != "error" or state.worker is not None:
                return  # unloaded, reloaded or shut down meanwhile
        self.request_load(state.spec.id, "high")

    def wait_loaded(self, model_id: str, timeout: float) -> ModelRunner:
        """Block until the model is loaded; raise if it fails or time runs out."""
        state = self._state(model_id)
        deadline = time.monotonic() + timeout
        with self._lock:
            while state.status == "loading":
                if self._closing:
                    raise ModelLoadFailedError(
                        f"model '{model_id}' was not loaded: the server is shutting down",
                        {"model_id": model_id, "reason": "shutdown"},
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    _, seconds = self._estimate_locked(model_id)
                    raise ModelLoadingError(model_id, max(1, round(seconds)))
                self._lock.wait(remaining)
            return self._worker_locked(state)

    def _worker_locked(self, state: _State) -> ModelRunner:
        if state.status == "loaded" and state.worker is not None:
            return state.worker
        if state.status == "error":
            raise ModelLoadFailedError(
                f"model '{state.spec.id}' failed to load: {state.error}",
                {"model_id": state.spec.id, "reason": state.error},
            )
        if state.status == "loading":
            _, seconds = self._estimate_locked(state.spec.id)
            raise ModelLoadingError(state.spec.id, max(1, round(seconds)))
        if state.status == "unloading":
            raise ModelBusyError(f"model '{state.spec.id}' is unloading")
        raise ModelNotLoadedError(
            f"model '{state.spec.id}' is not loaded",
            {"model_id": state.spec.id, "suggestion": f"POST /v1/ai/models/{state.spec.id}/load"},
        )

    def worker(self, model_id: str) -> ModelRunner:
        """The loaded model's worker, or the error saying why there is none."""
        with self._lock:
            state = self._state(model_id)
            worker = self._worker_locked(state)
            state.last_used = datetime.now(UTC)
            return worker

    # -- unloading -----------------------------------------------------------

    def unload(self, model_id: str, busy_timeout: float = 30.0) -> UnloadResult:
        """Unload a model, waiting up to ``busy_timeout`` for running requests."""
        state = self._state(model_id)
        with self._lock:
            worker = state.worker
            if isinstance(worker, RemoteRunner) and not worker.can_unload():
                raise ModelManagedRemotelyError(
                    f"model '{model_id}' is managed by its remote engine ({state.spec.backend}); "
                    "unload it there",
                    {
                        "model_id": model_id,
                        "reason": "managed_remotely",
                        "backend": state.spec.backend,
                    },
                )
            if state.status != "loaded" or worker is None:
                raise ModelNotLoadedError(
                    f"model '{model_id}' is not loaded (status: {state.status})",
                    {"model_id": model_id, "status": state.status},
                )
            self._set_status(state, "unloading")
        deadline = time.monotonic() + busy_timeout
        while worker.active_requests or worker.queue_length:
            if time.monotonic() >= deadline:
                with self._lock:
                    self._set_status(state, "loaded")
                raise ModelBusyError(
                    f"model '{model_id}' is still serving requests",
                    {"active_requests": worker.active_requests},
                )
            time.sleep(0.02)
        before = self._resources.memory_footprint_mb()
        runner_mb = runner_rss_mb(worker) if isinstance(worker, RunnerClient) else None
        started = time.monotonic()
        if isinstance(worker, RemoteRunner):
            try:
                worker.unload_remote()  # a router: its instance ends, our figures stay 0
            except EngineError:
                with self._lock:
                    self._set_status(state, "loaded")
                raise
            runner_mb, before = 0.0, 0.0
        else:
            worker.stop()
        _trim_heap()
        elapsed_ms = (time.monotonic() - started) * 1000.0
        after = self._resources.memory_footprint_mb()
        freed = runner_mb if runner_mb is not None else before - after
        with self._lock:
            state.worker = None
            state.info = None
            state.memory_usage_mb = None
            state.load_progress = 0.0
            self._set_status(state, "available")
        return UnloadResult(model_id, round(max(freed, 0.0), 1), round(elapsed_ms, 2))

    def loaded_workers(self) -> list[ModelRunner]:
        """Workers of loaded models, for load figures (does not count as a use)."""
        with self._lock:
            return [s.worker for s in self._states.values() if s.status == "loaded" and s.worker]

    def touch(self, model_id: str) -> None:
        """Record a use of the model (``last_used``)."""
        with self._lock:
            self._state(model_id).last_used = datetime.now(UTC)

    def close(self) -> None:
        """Stop the loader and unload every model."""
        with self._lock:
            self._closing = True
            self._queue.clear()
            loading = self._loading
            self._lock.notify_all()
        if loading is not None:
            loading.abandon()  # a load in progress ends with its runner, not in minutes
        # An abandoned load may still be starting its process: not worth
        # waiting for, the loader is a daemon thread and the runner exits with
        # its pipe.
        self._loader.join(timeout=0.5 if loading is not None else 10)
        for model_id, state in list(self._states.items()):
            if isinstance(state.worker, RemoteRunner):
                # The engine keeps the model for its other clients (replicas).
                state.worker.stop()
                continue
            if state.status == "loaded":
                try:
                    self.unload(model_id, busy_timeout=0.0)
                except EngineError:
                    if state.worker is not None:
                        state.worker.stop()
