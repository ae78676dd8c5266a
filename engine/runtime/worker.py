"""The model worker: one thread that owns a model and schedules its decoding.

The worker is a small continuous-batching scheduler over llama.cpp's low-level
API. Each request occupies one sequence slot of a shared context; every step
builds one ``llama_batch`` with the next token of each generating sequence
plus chunks of prompts being read, runs one ``llama_decode``, and samples each
sequence with its own sampler chain. Requests join and leave between steps.

Slots remember which tokens their part of the KV cache holds. A new request
takes the free slot whose cached tokens share the longest prefix with its
prompt, so a keystroke re-reads only the changed tail of the prompt.

Everything crossing the boundary is a message (see :mod:`engine.runtime.messages`);
cancellation is a flag checked between decode steps.
"""

from __future__ import annotations

import codecs
import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.completion.postprocess import should_stop
from engine.completion.prompts import (
    FAMILY_ORDER,
    BuiltPrompt,
    FimPrompt,
    FimTokens,
    TextPrompt,
    build_fim_prompt,
    detect_family,
)
from engine.errors import (
    ContextLengthExceededError,
    EngineError,
    InferenceFailedError,
    InferenceTimeoutError,
    ModelLoadFailedError,
    QueueFullError,
    RequestCancelledError,
)
from engine.runtime.llama_backend import (
    ContextConfig,
    LlamaContext,
    LlamaModel,
    LogprobMeter,
    Sampler,
)
from engine.runtime.messages import (
    DoneEvent,
    ErrorEvent,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Priority,
    TokenEvent,
)

log = logging.getLogger(__name__)

# A request waits for a running one to finish reading a prompt when it shares
# at least this many more tokens with it than with any cache it could use now.
_SHARE_MIN_TOKENS = 32


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker loads its model and sizes its context."""

    path: Path
    n_gpu_layers: int
    use_mmap: bool
    context: ContextConfig
    fim_family: str  # "auto", "none" or a family name from engine.completion.prompts
    max_queue: int = 64


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a loaded model, read from llama.cpp after loading."""

    description: str
    size_bytes: int
    n_params: int
    n_vocab: int
    n_ctx: int
    n_ctx_train: int
    n_seq_max: int
    fim_family: str
    fim: FimTokens
    chat_template: str | None
    load_seconds: float
    bos_text: str = ""
    eos_text: str = ""


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters might be the start of a stop sequence."""
    hold = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), hold, -1):
            if text.endswith(stop[:k]):
                hold = k
                break
    return hold


@dataclass
class _Job:
    """An admitted request and its decoding state."""

    request: GenerationRequest
    sampler: Sampler
    prompt: BuiltPrompt
    submitted: float
    admitted: float
    pending: list[int]  # tokens still to be decoded for this sequence
    n_past: int  # position of the next token in the sequence
    cached_prompt_tokens: int
    reserved: int  # KV cells this job may grow to
    generated: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0
    logprob_sum: float = 0.0
    first_token_at: float | None = None
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )


@dataclass
class _Slot:
    """One sequence id of the shared context and the tokens its cache holds."""

    seq_id: int
    cached: list[int] = field(default_factory=list)
    job: _Job | None = None
    last_used: float = 0.0


class ModelWorker:
    """Owns one llama.cpp model and context on a dedicated thread."""

    def __init__(
        self,
        model_id: str,
        config: WorkerConfig,
        on_progress: Callable[[float], None] | None = None,
    ) -> None:
        self.model_id = model_id
        self.config = config
        self._on_progress = on_progress
        self._lock = threading.Condition()
        self._queue: list[tuple[int, int, float, GenerationRequest]] = []
        self._order = itertools.count()
        self._cancelled: dict[str, EngineError] = {}
        self._stopping = False
        self._load_deadline: float | None = None
        self._loaded = threading.Event()
        self._load_error: EngineError | None = None
        self._thread: threading.Thread | None = None
        self._slots: list[_Slot] = []
        self._model: LlamaModel | None = None
        self._ctx: LlamaContext | None = None
        self.info: ModelInfo | None = None
        self._busy = 0
        self._built: dict[str, BuiltPrompt] = {}
        # One slot stays free for interactive work when there are several.
        self._reserved_slots = 1 if config.context.n_seq_max > 1 else 0

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float | None = None) -> ModelInfo:
        """Load the model on the worker thread; block until it serves or fails."""
        self._load_deadline = None if timeout is None else time.monotonic() + timeout
        self._thread = threading.Thread(
            target=self._run, name=f"model-{self.model_id}", daemon=True
        )
        self._thread.start()
        self._loaded.wait()
        if self._load_error is not None:
            self._thread.join()
            raise self._load_error
        assert self.info is not None
        return self.info

    def stop(self) -> None:
        """Fail queued work, stop the thread and free all native memory."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join()

    # -- requests ----------------------------------------------------------

    def submit(self, request: GenerationRequest) -> None:
        """Queue a request; its events arrive on ``request.sink``."""
        with self._lock:
            if self._stopping:
                raise ModelLoadFailedError(f"model '{self.model_id}' is unloading")
            if len(self._queue) >= self.config.max_queue:
                raise QueueFullError(
                    f"model '{self.model_id}' has {len(self._queue)} queued requests",
                    {"queue_length": len(self._queue), "max_queue": self.config.max_queue},
                )
            if request.group is not None:
                self._supersede_locked(request.group)
            if request.priority == Priority.INTERACTIVE:
                self._preempt_speculation_locked()
            heapq.heappush(
                self._queue,
                (int(request.priority), next(self._order), time.monotonic(), request),
            )
            self._lock.notify_all()

    def cancel(self, request_id: str, reason: EngineError | None = None) -> None:
        """Stop a request between decode steps (or drop it from the queue)."""
        with self._lock:
            self._cancelled[request_id] = reason or RequestCancelledError("request cancelled")
            self._lock.notify_all()

    def _preempt_speculation_locked(self) -> None:
        """An editor keystroke cancels every speculative suggestion in progress."""
        preempted = RequestCancelledError("speculative work pre-empted by a keystroke")
        for _, _, _, queued in self._queue:
            if queued.priority == Priority.SPECULATIVE:
                self._cancelled[queued.request_id] = preempted
        for slot in self._slots:
            if slot.job is not None and slot.job.request.priority == Priority.SPECULATIVE:
                self._cancelled[slot.job.request.request_id] = preempted

    def _supersede_locked(self, group: str) -> None:
        superseded = RequestCancelledError("superseded by a newer request for the same document")
        for _, _, _, queued in self._queue:
            if queued.group == group:
                self._cancelled[queued.request_id] = superseded
        for slot in self._slots:
            if slot.job is not None and slot.job.request.group == group:
                self._cancelled[slot.job.request.request_id] = superseded

    @property
    def queue_length(self) -> int:
        """Requests waiting for a slot."""
        with self._lock:
            return len(self._queue)

    @property
    def active_requests(self) -> int:
        """Requests currently decoding."""
        return self._busy

    # -- the thread --------------------------------------------------------

    def _load_progress(self, value: float) -> bool:
        if self._on_progress is not None:
            self._on_progress(value)
        if self._stopping:
            return False
        return self._load_deadline is None or time.monotonic() < self._load_deadline

    def _load(self) -> None:
        started = time.monotonic()
        cfg = self.config
        try:
            model = LlamaModel(
                cfg.path,
                n_gpu_layers=cfg.n_gpu_layers,
                use_mmap=cfg.use_mmap,
                progress=self._load_progress,
            )
        except ModelLoadFailedError as exc:
            if self._load_deadline is not None and time.monotonic() >= self._load_deadline:
                raise ModelLoadFailedError(
                    f"loading '{self.model_id}' did not finish within the timeout",
                    {"reason": "timeout"},
                ) from exc
            raise
        try:
            ctx = LlamaContext(model, cfg.context)
        except BaseException:
            model.close()
            raise
        family = cfg.fim_family
        if family == "auto":
            family = detect_family(model.token_text, model.fim)
        self._model, self._ctx = model, ctx
        self._logprob = LogprobMeter(model.n_vocab)
        self._slots = [_Slot(seq_id=i) for i in range(cfg.context.n_seq_max)]
        self.info = ModelInfo(
            description=model.description,
            size_bytes=model.size_bytes,
            n_params=model.n_params,
            n_vocab=model.n_vocab,
            n_ctx=ctx.n_ctx,
            n_ctx_train=model.n_ctx_train,
            n_seq_max=cfg.context.n_seq_max,
            fim_family=family,
            fim=model.fim,
            chat_template=model.chat_template,
            load_seconds=time.monotonic() - started,
            bos_text=model.token_text(model.bos) if model.bos is not None else "",
            eos_text=model.token_text(model.eos) if model.eos is not None else "",
        )

    def _run(self) -> None:
        try:
            self._load()
        except EngineError as exc:
            self._load_error = exc
        except Exception as exc:  # native failures must not kill the process
            log.exception("loading %s failed", self.model_id)
            self._load_error = ModelLoadFailedError(f"loading failed: {type(exc).__name__}")
        finally:
            self._loaded.set()
        if self._load_error is not None:
            return
        try:
            self._serve()
        finally:
            self._shutdown()

    def _serve(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                self._admit_locked()
                if not any(slot.job for slot in self._slots):
                    self._lock.wait(timeout=self._next_timeout_locked())
                    continue
            try:
                self._step()
            except Exception as exc:
                # A bug or native failure fails the requests in flight, never
                # the worker: the model keeps serving the next ones.
                log.exception("decode step failed for %s", self.model_id)
                failure = InferenceFailedError(f"generation failed: {type(exc).__name__}")
                for slot in self._slots:
                    if slot.job is not None:
                        self._fail(slot, failure, clear_cache=True)

    def _next_timeout_locked(self) -> float | None:
        deadlines = [r.deadline for _, _, _, r in self._queue if r.deadline is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _shutdown(self) -> None:
        unloading = ModelLoadFailedError(f"model '{self.model_id}' was unloaded")
        with self._lock:
            queued = [entry[3] for entry in self._queue]
            self._queue.clear()
        for request in queued:
            request.sink.emit(ErrorEvent(request.request_id, unloading))
        for slot in self._slots:
            if slot.job is not None:
                self._fail(slot, unloading)
        if self._ctx is not None:
            self._ctx.close()
        if self._model is not None:
            self._model.close()
        self._ctx = None
        self._model = None

    # -- admission ---------------------------------------------------------

    def _build_prompt(self, request: GenerationRequest) -> BuiltPrompt:
        model = self._model
        assert model is not None and self.info is not None
        prompt = request.prompt
        if isinstance(prompt, FimPrompt):
            fim = model.fim if self.info.fim_family != "none" else FimTokens(None, None, None)
            return build_fim_prompt(
                prompt,
                fim,
                model.tokenize,
                bos=model.bos if model.add_bos else None,
                order=FAMILY_ORDER.get(self.info.fim_family, "psm"),
            )
        if isinstance(prompt, TextPrompt):
            tokens = model.tokenize(
                prompt.text,
                add_bos=prompt.add_bos and model.add_bos,
                parse_special=prompt.parse_special,
            )
            return BuiltPrompt(tokens, False, 0, len(tokens), 0)
        tokens = [int(t) for t in prompt]
        return BuiltPrompt(tokens, False, 0, len(tokens), 0)

    def _kv_in_use_locked(self) -> int:
        used = 0
        for slot in self._slots:
            used += slot.job.reserved if slot.job is not None else len(slot.cached)
        return used

    def _prepared_locked(self, request: GenerationRequest) -> BuiltPrompt:
        """The request's prompt tokens, built once (it may wait several admissions)."""
        built = self._built.get(request.request_id)
        if built is not None:
            return built
        built = self._build_prompt(request)
        if not built.tokens:
            raise ContextLengthExceededError("prompt", "the prompt is empty")
        need = len(built.tokens) + request.params.max_tokens
        assert self._ctx is not None
        if need > self._ctx.n_ctx:
            raise ContextLengthExceededError(
                "parameters.max_tokens",
                f"prompt ({len(built.tokens)} tokens) plus max_tokens "
                f"({request.params.max_tokens}) exceeds the context of "
                f"{self._ctx.n_ctx} tokens",
                prompt_tokens=len(built.tokens),
                context_length=self._ctx.n_ctx,
            )
        self._built[request.request_id] = built
        return built

    def _shared_prompt_pending_locked(self, tokens: list[int], own: int) -> bool:
        """True when a running request is still reading a prompt this one shares.

        Waiting a step or two for it lets this request copy that KV cache
        (alternatives, best-of-n, orchestration on one model) instead of
        computing the same prompt again.
        """
        for slot in self._slots:
            job = slot.job
            if job is None or job.generated or not job.pending:
                continue
            if _common_prefix(job.prompt.tokens, tokens) - own >= _SHARE_MIN_TOKENS:
                return True
        return False

    def _admit_locked(self) -> None:
        now = time.monotonic()
        while self._queue:
            free = [slot for slot in self._slots if slot.job is None]
            if not free:
                return
            _, _, submitted, request = self._queue[0]
            reason = self._cancelled.pop(request.request_id, None)
            if reason is None and request.deadline is not None and now >= request.deadline:
                reason = InferenceTimeoutError("the request timed out while queued")
            if reason is not None:
                heapq.heappop(self._queue)
                self._built.pop(request.request_id, None)
                request.sink.emit(ErrorEvent(request.request_id, reason))
                continue
            try:
                built = self._prepared_locked(request)
            except EngineError as exc:
                heapq.heappop(self._queue)
                request.sink.emit(ErrorEvent(request.request_id, exc))
                continue
            except Exception as exc:
                log.exception("building a prompt failed")
                heapq.heappop(self._queue)
                request.sink.emit(
                    ErrorEvent(request.request_id, InferenceFailedError(type(exc).__name__))
                )
                continue
            if request.priority >= Priority.NORMAL and len(free) <= self._reserved_slots:
                return  # the last slot stays free for the editor's next keystroke
            slot = max(free, key=lambda s: (_common_prefix(s.cached, built.tokens), -s.last_used))
            own = _common_prefix(slot.cached, built.tokens)
            if self._shared_prompt_pending_locked(built.tokens, own):
                return
            need = len(built.tokens) + request.params.max_tokens
            if not self._make_room_locked(slot, need, built.tokens):
                return  # wait for running sequences to finish
            heapq.heappop(self._queue)
            self._built.pop(request.request_id, None)
            try:
                self._start_job(slot, request, built, submitted, now)
            except Exception as exc:
                log.exception("starting a request failed")
                request.sink.emit(
                    ErrorEvent(request.request_id, InferenceFailedError(type(exc).__name__))
                )

    def _make_room_locked(self, chosen: _Slot, need: int, tokens: list[int]) -> bool:
        assert self._ctx is not None
        keep = _common_prefix(chosen.cached, tokens)
        in_use = self._kv_in_use_locked() - len(chosen.cached) + keep
        if in_use + need - keep <= self._ctx.n_ctx:
            return True
        # Evict idle caches, least recently used first, until the request fits.
        idle = sorted(
            (s for s in self._slots if s.job is None and s is not chosen and s.cached),
            key=lambda s: s.last_used,
        )
        for slot in idle:
            self._ctx.seq_remove(slot.seq_id, 0, -1)
            in_use -= len(slot.cached)
            slot.cached = []
            if in_use + need - keep <= self._ctx.n_ctx:
                return True
        return False

    def _start_job(
        self,
        slot: _Slot,
        request: GenerationRequest,
        built: BuiltPrompt,
        submitted: float,
        now: float,
    ) -> None:
        assert self._ctx is not None and self._model is not None
        tokens = built.tokens
        keep = min(_common_prefix(slot.cached, tokens), len(tokens) - 1)
        donor, shared = self._best_donor(slot, tokens)
        if donor is not None and shared > keep:
            # Another sequence holds more of this prompt: share its cells.
            self._ctx.seq_remove(slot.seq_id, 0, -1)
            self._ctx.seq_copy(donor.seq_id, slot.seq_id, 0, shared)
            keep = shared
        elif not self._ctx.seq_remove(slot.seq_id, keep, -1):
            # Some caches (recurrent state) cannot drop a tail: start over.
            self._ctx.seq_remove(slot.seq_id, 0, -1)
            keep = 0
        slot.cached = tokens[:keep]
        seed = request.params.seed
        if seed is None:
            seed = hash(request.request_id) & 0xFFFFFFFF
        slot.job = _Job(
            request=request,
            sampler=Sampler(
                request.params,
                seed,
                self._model.n_vocab,
                self._model.end_of_generation_tokens() if request.params.ignore_eos else (),
            ),
            prompt=built,
            submitted=submitted,
            admitted=now,
            pending=tokens[keep:],
            n_past=keep,
            cached_prompt_tokens=keep,
            reserved=len(tokens) + request.params.max_tokens,
        )
        self._busy += 1

    def _best_donor(self, slot: _Slot, tokens: list[int]) -> tuple[_Slot | None, int]:
        """The other slot whose cache shares the longest prefix with ``tokens``."""
        best: _Slot | None = None
        length = 0
        for other in self._slots:
            if other is slot:
                continue
            common = min(_common_prefix(other.cached, tokens), len(tokens) - 1)
            if common > length:
                best, length = other, common
        return best, length

    # -- decoding ----------------------------------------------------------

    def _step(self) -> None:
        ctx = self._ctx
        assert ctx is not None
        self._drop_cancelled()
        batch = ctx.batch
        batch.clear()
        rows: list[tuple[_Slot, int, int]] = []  # slot, tokens added, logits row (-1: none)
        active = [s for s in self._slots if s.job is not None]
        if any(s.job and s.job.request.priority == Priority.INTERACTIVE for s in active):
            # A keystroke runs alone: background sequences pause for its few
            # steps instead of making each of them slower.
            active = [s for s in active if s.job and s.job.request.priority == Priority.INTERACTIVE]
        # Generating sequences first (one token each, latency-sensitive), then
        # prompt chunks by priority, so a long prompt never stalls typing.
        generating = [s for s in active if s.job and len(s.job.pending) == 1 and s.job.generated]
        reading = [s for s in active if s not in generating]
        reading.sort(key=lambda s: int(s.job.request.priority) if s.job else 0)
        for slot in generating + reading:
            job = slot.job
            assert job is not None
            if batch.free == 0:
                break
            chunk = job.pending[: batch.free]
            last = len(chunk) == len(job.pending)
            row = batch.add(chunk, job.n_past, slot.seq_id, logits_last=last)
            rows.append((slot, len(chunk), row if last else -1))
        if not rows:
            return
        try:
            ctx.decode()
        except EngineError as exc:
            log.error("decode failed for %s: %s", self.model_id, exc.message)
            for slot, _, _ in rows:
                self._fail(slot, exc, clear_cache=True)
            return
        now = time.monotonic()
        for slot, added, row in rows:
            job = slot.job
            assert job is not None
            slot.cached.extend(job.pending[:added])
            job.n_past += added
            job.pending = job.pending[added:]
            if row >= 0:
                self._sample(slot, job, row, now)

    def _sample(self, slot: _Slot, job: _Job, row: int, now: float) -> None:
        model, ctx = self._model, self._ctx
        assert model is not None and ctx is not None
        token = job.sampler.sample(ctx, row)
        job.logprob_sum += self._logprob(ctx.logits(row), token)
        job.generated.append(token)
        if job.first_token_at is None:
            job.first_token_at = now
        params = job.request.params
        finish: FinishReason | None = None
        if model.is_eog(token) or model.is_control(token):
            finish = "eos"
        else:
            job.text += job.decoder.decode(model.piece(token))
            finish = self._check_stops(job)
        if finish is None and len(job.generated) >= params.max_tokens:
            finish = "length"
        budget = params.time_budget_ms
        if finish is None and budget is not None and (now - job.admitted) * 1000.0 >= budget:
            finish = "time_budget"
        if finish is not None:
            self._finish(slot, finish)
            return
        job.pending = [token]
        if job.request.stream:
            safe = len(job.text) - _held_back(job.text, params.stop)
            if safe > job.emitted:
                job.request.sink.emit(
                    TokenEvent(job.request.request_id, job.text[job.emitted : safe])
                )
                job.emitted = safe

    def _check_stops(self, job: _Job) -> FinishReason | None:
        params = job.request.params
        text = job.text
        if params.stop:
            window = max(len(s) for s in params.stop) + 16
            start = max(0, len(text) - window)
            cut = min(
                (i for i in (text.find(s, start) for s in params.stop if s) if i >= 0),
                default=-1,
            )
            if cut >= 0:
                job.text = text[:cut]
                return "stop"
        block = job.request.block_stop
        if (
            block is not None
            and text.endswith("\n")
            and should_stop(block.document, block.cursor, text, block.language)
        ):
            return "block_end"
        return None

    def _drop_cancelled(self) -> None:
        now = time.monotonic()
        with self._lock:
            doomed: list[tuple[_Slot, EngineError]] = []
            for slot in self._slots:
                job = slot.job
                if job is None:
                    continue
                reason = self._cancelled.pop(job.request.request_id, None)
                deadline = job.request.deadline
                if reason is None and deadline is not None and now >= deadline:
                    reason = InferenceTimeoutError(
                        "generation did not finish in time",
                        {"generated_tokens": len(job.generated)},
                    )
                if reason is not None:
                    doomed.append((slot, reason))
            if self._cancelled:
                # Forget cancellations of requests that already finished.
                active_ids = {s.job.request.request_id for s in self._slots if s.job}
                queued_ids = {entry[3].request_id for entry in self._queue}
                for stale in set(self._cancelled) - active_ids - queued_ids:
                    del self._cancelled[stale]
        for slot, reason in doomed:
            self._fail(slot, reason)

    def _release(self, slot: _Slot) -> _Job:
        job = slot.job
        assert job is not None
        job.sampler.close()
        slot.job = None
        slot.last_used = time.monotonic()
        self._busy -= 1
        return job

    def _fail(self, slot: _Slot, error: EngineError, clear_cache: bool = False) -> None:
        job = self._release(slot)
        if clear_cache and self._ctx is not None:
            self._ctx.seq_remove(slot.seq_id, 0, -1)
            slot.cached = []
        job.request.sink.emit(ErrorEvent(job.request.request_id, error))

    def _finish(self, slot: _Slot, reason: FinishReason) -> None:
        job = self._release(slot)
        tail = job.decoder.decode(b"", final=True)
        if reason not in ("stop",) and tail:
            job.text += tail
        now = time.monotonic()
        request = job.request
        if request.stream and len(job.text) > job.emitted:
            request.sink.emit(TokenEvent(request.request_id, job.text[job.emitted :]))
        count = len(job.generated)
        mean = job.logprob_sum / count if count else 0.0
        first = job.first_token_at or now
        result = GenerationResult(
            request_id=request.request_id,
            text=job.text,
            completion_tokens=count,
            prompt_tokens=len(job.prompt.tokens),
            cached_prompt_tokens=job.cached_prompt_tokens,
            confidence=math.exp(mean),
            mean_logprob=mean,
            finish_reason=reason,
            queue_ms=(job.admitted - job.submitted) * 1000.0,
            prompt_ms=(first - job.admitted) * 1000.0,
            decode_ms=(now - first) * 1000.0,
            first_token_ms=(first - job.submitted) * 1000.0,
            total_ms=(now - job.submitted) * 1000.0,
            used_fim=job.prompt.used_fim,
        )
        request.sink.emit(DoneEvent(request.request_id, result))


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
