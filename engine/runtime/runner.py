"""Model runners: each loaded model in a child process of its own.

llama.cpp aborts the process on some bad inputs (``GGML_ASSERT``), and a
native crash or an out-of-memory kill cannot be caught in Python. So, as
Ollama runs its llama.cpp runners, every loaded model lives in a child
process: a :class:`ModelWorker` (continuous batching, prompt cache,
priorities) runs there, and this process talks to it through the message
interface of :mod:`engine.runtime.messages`, over a pipe:

- parent -> child: ``submit`` (a request without its sink), ``cancel``, ``stop``;
- child -> parent: ``loaded`` / ``load_failed``, ``progress``, worker events
  (token, done, error) and ``state`` (queued and active counts).

:class:`RunnerClient` has the worker's interface, so the registry, the engine
and refactoring's text generator use it unchanged. When the child dies, every
request in flight fails at once with ``MODEL_CRASHED`` and ``on_exit`` tells
the registry why (the signal or exit code); unloading ends the process, so
the operating system gets every byte back.

``isolation="thread"`` runs the same child code on a thread of this process,
over the same pipe protocol: the same code path, for debugging and for tests
that need no crash isolation.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import psutil

from engine import errors
from engine.errors import EngineError, ModelCrashedError, ModelLoadFailedError
from engine.heap import freeze_startup_heap
from engine.runtime.messages import (
    DoneEvent,
    ErrorEvent,
    EventSink,
    GenerationRequest,
    Priority,
    TokenEvent,
    WorkerEvent,
)
from engine.runtime.worker import ModelInfo, ModelWorker, WorkerConfig

log = logging.getLogger(__name__)

Isolation = Literal["process", "thread"]
ExitListener = Callable[[str], None]
Connection = multiprocessing.connection.Connection


class _NoSink:
    """Stands in for a request's sink while the request crosses the pipe."""

    def emit(self, event: WorkerEvent) -> None:
        """Never called: the child gives the request a sink of its own."""


_NO_SINK = _NoSink()


@dataclass(frozen=True)
class WireError:
    """An EngineError as plain data (exception pickling loses custom fields)."""

    kind: str
    message: str
    details: dict[str, Any]

    @classmethod
    def of(cls, error: EngineError) -> WireError:
        """The wire form of ``error``."""
        return cls(type(error).__name__, error.message, dict(error.details))

    def rebuild(self) -> EngineError:
        """The EngineError again, of the same class when the engine defines it."""
        kind = getattr(errors, self.kind, None)
        if not (isinstance(kind, type) and issubclass(kind, EngineError)):
            kind = EngineError
        error = kind.__new__(kind)
        EngineError.__init__(error, self.message, self.details)
        if isinstance(error, errors.InvalidRequestError):
            error.field = str(self.details.get("field", ""))
        return error


def _to_wire(event: WorkerEvent) -> tuple[str, Any]:
    if isinstance(event, ErrorEvent):
        return ("error", (event.request_id, WireError.of(event.error)))
    return ("event", event)


# -- the child side --------------------------------------------------------------


_CLOSE = object()  # ends the outbox


class _Outbox:
    """Everything the child sends, in order, written by one sender thread.

    The worker thread only queues a message: no system call on the decode
    path. Waking the parent is what costs: a pipe write that wakes a reader
    in another process took 20-80 us on the 2-core machine, on the decode's
    critical path, which is as long as a tiny model's whole decode step. So
    the sender sends whatever has queued up as one message, and after each
    send it lets ``interval`` seconds pass before the next one, unless an
    urgent message arrives: a request's first token (its time to first
    token), its last event (the latency of the whole answer), a load or
    stop message. Only the tokens in between and the queue counts wait, for
    at most the interval, and the tokens of one request cross merged into
    one event. A fast decode then wakes the parent once per interval instead
    of once per token; ``interval=0`` sends every token on its own.
    """

    def __init__(self, conn: Connection, interval: float) -> None:
        self._conn = conn
        self._interval = interval
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._urgent = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="runner-sender", daemon=True)
        self._thread.start()

    def put(self, message: Any, *, urgent: bool = True) -> None:
        """Queue one message for the parent (never blocks)."""
        self._queue.put(message)
        if urgent and self._interval:
            self._urgent.set()

    def close(self) -> None:
        """Send what is queued, then stop the sender."""
        self.put(_CLOSE)
        self._thread.join(timeout=5)

    def _pump(self) -> None:
        while True:
            batch = [self._queue.get()]  # idle: the next message goes out at once
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            closing = batch[-1] is _CLOSE
            if closing:
                batch.pop()
            if batch:
                batch = _merge_tokens(batch)
                try:
                    self._conn.send(batch[0] if len(batch) == 1 else ("batch", batch))
                except (OSError, ValueError):
                    return  # the parent is gone, which ends this child anyway
            if closing:
                return
            if self._interval:
                self._urgent.wait(self._interval)
                self._urgent.clear()


def _merge_tokens(batch: list[Any]) -> list[Any]:
    """``batch`` with each request's consecutive token events joined into one.

    A request's events keep their order (its token text, then its done or
    error event); only token events whose request has no other message
    between them are joined.
    """
    merged: list[Any] = []
    open_tokens: dict[str, int] = {}  # request id -> index of its joinable token event
    for message in batch:
        event = message[1] if message[0] == "event" else None
        if isinstance(event, TokenEvent):
            at = open_tokens.get(event.request_id)
            if at is not None:
                joined = merged[at][1]
                merged[at] = ("event", TokenEvent(event.request_id, joined.text + event.text))
                continue
            open_tokens[event.request_id] = len(merged)
        elif event is not None:
            open_tokens.pop(event.request_id, None)
        elif message[0] == "error":
            open_tokens.pop(message[1][0], None)
        merged.append(message)
    return merged


class _PipeSink:
    """Queues a request's events for the parent (called on the worker thread)."""

    def __init__(self, outbox: _Outbox) -> None:
        self._outbox = outbox
        self._streaming: set[str] = set()  # requests whose first token has gone

    def emit(self, event: WorkerEvent) -> None:
        """Forward one event: a request's first token and its last event at once."""
        request_id = event.request_id
        if isinstance(event, TokenEvent):
            urgent = request_id not in self._streaming
            self._streaming.add(request_id)
        else:
            urgent = True
            self._streaming.discard(request_id)
        self._outbox.put(_to_wire(event), urgent=urgent)


def serve_runner(
    conn: Connection,
    model_id: str,
    config: WorkerConfig,
    load_timeout: float | None,
    stream_interval: float = 0.0,
    after_load: Callable[[], object] | None = None,
) -> None:
    """The child's main loop: load the model, then serve commands until ``stop``.

    Streamed tokens cross to the parent at most every ``stream_interval``
    seconds (see :class:`_Outbox`). ``after_load`` runs once the model serves.
    """
    from engine.runtime.llama_backend import route_native_logs

    route_native_logs()
    outbox = _Outbox(conn, stream_interval)
    try:
        _serve(conn, outbox, model_id, config, load_timeout, after_load)
    finally:
        outbox.close()


def _serve(
    conn: Connection,
    outbox: _Outbox,
    model_id: str,
    config: WorkerConfig,
    load_timeout: float | None,
    after_load: Callable[[], object] | None,
) -> None:
    # The worker says when its queue or active count may have changed (on
    # admission, release, submit and cancel, never per token); a reporter
    # thread then sends the new counts. Nothing polls, so nothing wakes up
    # between tokens to compete with the decode threads.
    changed = threading.Event()
    worker = ModelWorker(
        model_id,
        config,
        on_progress=lambda value: outbox.put(("progress", value)),
        on_state=changed.set,
    )
    try:
        info = worker.start(timeout=load_timeout)
    except EngineError as exc:
        outbox.put(("load_failed", WireError.of(exc)))
        return
    outbox.put(("loaded", info))
    if after_load is not None:
        after_load()
    sink = _PipeSink(outbox)
    stop_state = threading.Event()

    def report_state() -> None:
        last: tuple[tuple[int, ...], int] = ((), -1)
        while True:
            changed.wait()
            changed.clear()
            if stop_state.is_set():
                return
            now = (worker.queued_by_priority, worker.active_requests)
            if now != last:
                last = now
                # Counts for health and back-pressure: they may wait for the
                # next send like a token.
                outbox.put(("state", now), urgent=False)

    reporter = threading.Thread(target=report_state, name="runner-state", daemon=True)
    reporter.start()
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return  # the parent is gone: nobody to answer
            command = message[0]
            if command == "submit":
                request: GenerationRequest = message[1]
                try:
                    worker.submit(replace(request, sink=sink))
                except EngineError as exc:
                    sink.emit(ErrorEvent(request.request_id, exc))
            elif command == "cancel":
                reason = message[2]
                worker.cancel(message[1], reason.rebuild() if reason is not None else None)
            elif command == "stop":
                return
    finally:
        stop_state.set()
        changed.set()
        worker.stop()  # fails what is queued ("unloaded") and frees the model
        reporter.join(timeout=1)
        outbox.put(("stopped",))


def _child_main(
    conn: Connection,
    model_id: str,
    config: WorkerConfig,
    load_timeout: float | None,
    stream_interval: float,
) -> None:
    # The parent decides when this runner ends; Ctrl-C in a terminal must not
    # take the model down behind the parent's back.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The loaded model, llama.cpp's bindings and the engine's modules live as
    # long as this process: no full collection walks them between two tokens.
    serve_runner(conn, model_id, config, load_timeout, stream_interval, freeze_startup_heap)


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "the runner stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the runner was killed by {name}"
    return f"the runner exited with code {code}"


# Why a runner most often ends with code 1 before a word: a process started
# for it imports the program's main module first (multiprocessing does), and a
# script that starts an engine at its top level then starts one there too.
_START_UP_HINT = (
    " before it started (if this program starts the engine from a script, it must"
    ' do so under `if __name__ == "__main__":`: model runner processes import the'
    " main module; otherwise see the runner's output above)"
)


# -- the parent side -------------------------------------------------------------


class RunnerClient:
    """A model worker in a child process (or thread), with the worker's interface."""

    def __init__(
        self,
        model_id: str,
        config: WorkerConfig,
        on_progress: Callable[[float], None] | None = None,
        *,
        isolation: Isolation = "process",
        on_exit: ExitListener | None = None,
        stream_interval: float = 0.0,
    ) -> None:
        self.model_id = model_id
        self.config = config
        self.isolation = isolation
        # Seconds a streamed token may wait in the runner so that the tokens
        # of a fast decode cross the pipe together (see _Outbox).
        self.stream_interval = stream_interval
        self._on_progress = on_progress
        self.on_exit = on_exit
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._pending: dict[str, EventSink] = {}
        # What the runner last reported: requests queued per priority class,
        # and requests decoding.
        self._state: tuple[tuple[int, ...], int] = ((0,) * len(Priority), 0)
        self._loaded = threading.Event()
        self._load_error: EngineError | None = None
        self._stopping = False
        self._abandoned = threading.Event()
        self._dead: str | None = None
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._thread: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self.info: ModelInfo | None = None
        # Whether the runner sent anything yet (one that dies before it did
        # never got to run this module's code).
        self._heard = False

    # -- lifecycle -------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The runner's process id (None in thread isolation or before start)."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float | None = None) -> ModelInfo:
        """Start the runner and load the model; block until it serves or fails."""
        parent, child = multiprocessing.Pipe(duplex=True)
        self._conn = parent
        if self.isolation == "process":
            # Forked from a clean, single-threaded server that has imported
            # this module (llama.cpp included) once: fast to start, and safe,
            # unlike a fork of this multi-threaded process.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            process = context.Process(
                target=_child_main,
                args=(child, self.model_id, self.config, timeout, self.stream_interval),
                name=f"ai-ide-runner-{self.model_id}",
                daemon=True,
            )
            process.start()
            child.close()  # the parent's copy: EOF arrives when the child dies
            self._process = process
            if self._abandoned.is_set():  # given up on while the process started
                process.kill()
        else:
            self._thread = threading.Thread(
                target=serve_runner,
                args=(child, self.model_id, self.config, timeout, self.stream_interval),
                name=f"runner-{self.model_id}",
                daemon=True,
            )
            self._thread.start()
        self._reader = threading.Thread(
            target=self._read, name=f"runner-reader-{self.model_id}", daemon=True
        )
        self._reader.start()
        self._loaded.wait()
        if self._load_error is not None:
            self._join()
            raise self._load_error
        assert self.info is not None
        return self.info

    def stop(self) -> None:
        """End the runner: queued work fails as unloaded, the process exits."""
        with self._lock:
            self._stopping = True
        self._send(("stop",))
        if self._reader is not None:
            self._reader.join(timeout=30)
        self._join()

    def abandon(self) -> None:
        """Give up on this runner now (shutting down): its process is killed."""
        with self._lock:
            self._stopping = True
        self._abandoned.set()
        process = self._process
        if process is not None and process.is_alive():
            process.kill()
        else:
            self._send(("stop",))

    def _join(self) -> None:
        if self._process is not None:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._conn is not None:
            self._conn.close()

    # -- requests --------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> None:
        """Queue a request in the runner; its events arrive on ``request.sink``."""
        with self._lock:
            if self._dead is not None:
                raise ModelCrashedError(
                    f"model '{self.model_id}' is not running: {self._dead}",
                    {"model_id": self.model_id, "reason": self._dead},
                )
            if self._stopping:
                raise ModelLoadFailedError(f"model '{self.model_id}' is unloading")
            self._pending[request.request_id] = request.sink
        self._send(("submit", replace(request, sink=_NO_SINK)))

    def cancel(self, request_id: str, reason: EngineError | None = None) -> None:
        """Stop a request between decode steps (or drop it from the queue)."""
        self._send(("cancel", request_id, WireError.of(reason) if reason is not None else None))

    @property
    def queue_length(self) -> int:
        """Requests waiting for a slot (as the runner last reported)."""
        with self._lock:
            queued, active = self._state
            # A request just sent is waiting even before the runner says so.
            return max(sum(queued), len(self._pending) - active)

    @property
    def queued_by_priority(self) -> tuple[int, ...]:
        """Requests waiting for a slot per priority class (as the runner last reported)."""
        with self._lock:
            return self._state[0]

    @property
    def active_requests(self) -> int:
        """Requests decoding now (as the runner last reported)."""
        with self._lock:
            return min(self._state[1], len(self._pending))

    def _send(self, message: Any) -> None:
        conn = self._conn
        if conn is None:
            return
        with self._send_lock, contextlib.suppress(OSError, ValueError):
            conn.send(message)

    # -- events from the runner -----------------------------------------------

    def _read(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            while True:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    break
                self._heard = True
                if not self._dispatch(message):
                    break
        finally:
            self._ended()

    def _dispatch(self, message: Any) -> bool:
        kind = message[0]
        if kind == "batch":  # what queued up in the runner while it decoded
            return all(self._dispatch(item) for item in message[1])
        if kind == "event":
            event: TokenEvent | DoneEvent = message[1]
            self._deliver(event.request_id, event, final=isinstance(event, DoneEvent))
        elif kind == "error":
            request_id, wire = message[1]
            self._deliver(request_id, ErrorEvent(request_id, wire.rebuild()), final=True)
        elif kind == "state":
            with self._lock:
                self._state = message[1]
        elif kind == "progress":
            if self._on_progress is not None:
                self._on_progress(message[1])
        elif kind == "loaded":
            self.info = message[1]
            self._loaded.set()
        elif kind == "load_failed":
            self._load_error = message[1].rebuild()
            self._loaded.set()
            return False
        elif kind == "stopped":
            return False
        return True

    def _deliver(self, request_id: str, event: WorkerEvent, *, final: bool) -> None:
        with self._lock:
            sink = self._pending.pop(request_id, None) if final else self._pending.get(request_id)
        if sink is not None:
            sink.emit(event)

    def _ended(self) -> None:
        """The pipe closed: a stop we asked for, or the runner died."""
        code: int | None = None
        if self._process is not None:
            self._process.join(timeout=5)
            code = self._process.exitcode
        with self._lock:
            expected = self._stopping or self._load_error is not None
            reason = _exit_reason(code) if not expected else "unloaded"
            if code == 1 and not self._heard and not expected:
                reason += _START_UP_HINT
            self._dead = reason
            orphans = list(self._pending.items())
            self._pending.clear()
        if not self._loaded.is_set():
            self._load_error = ModelLoadFailedError(
                f"llama.cpp could not load the model: {reason}", {"reason": reason}
            )
            self._loaded.set()
            return
        failure: EngineError = (
            ModelLoadFailedError(f"model '{self.model_id}' was unloaded")
            if expected
            else ModelCrashedError(
                f"model '{self.model_id}' crashed: {reason}",
                {"model_id": self.model_id, "reason": reason},
            )
        )
        if not expected:
            log.error("model %s: %s", self.model_id, reason)
            # The registry first: a client answered with the crash must find
            # the model in error when it looks (GET /models) right after.
            if self.on_exit is not None:
                try:
                    self.on_exit(reason)
                except Exception:
                    # The requests in flight still fail below, whatever the listener did.
                    log.exception("exit listener of %s failed", self.model_id)
        for request_id, sink in orphans:
            sink.emit(ErrorEvent(request_id, failure))


def runner_rss_mb(client: RunnerClient) -> float | None:
    """Resident memory of a process runner, measured; None in thread isolation."""
    pid = client.pid
    if pid is None:
        return None
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except (psutil.Error, OSError):
        return None
