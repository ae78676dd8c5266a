"""The model worker: one thread that owns a model and executes its schedule.

The worker is a small continuous-batching engine over llama.cpp's low-level
API. Each request occupies one sequence slot of a shared context; every step
builds one ``llama_batch`` with the next token of each generating sequence
plus chunks of prompts being read, runs one ``llama_decode``, and samples each
sequence with its own sampler chain. Requests join and leave between steps.

What to run is decided by :class:`~engine.runtime.scheduler.Scheduler` (which
requests start in which slots reusing which cached tokens, which stop, what
each step decodes); this module executes those plans with llama.cpp and
reports the outcome back to the scheduler's slot table. Detokenization and
stop conditions live in :mod:`engine.runtime.text_stream`.

Everything crossing the boundary is a message (see :mod:`engine.runtime.messages`);
cancellation is a flag checked between decode steps.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

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
    EngineError,
    InferenceFailedError,
    ModelLoadFailedError,
    RequestCancelledError,
)
from engine.runtime.healing import TokenHealer, log_prob_among
from engine.runtime.llama_backend import (
    ContextConfig,
    LlamaContext,
    LlamaModel,
    LogprobMeter,
    Sampler,
    flash_attention,
    repack_weights,
)
from engine.runtime.messages import (
    DoneEvent,
    ErrorEvent,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    TokenEvent,
)
from engine.runtime.scheduler import Admission, Scheduler
from engine.runtime.slots import Running
from engine.runtime.text_stream import TextStream
from engine.runtime.token_memo import TokenMemo

log = logging.getLogger(__name__)


def _nothing() -> None:
    """The default state listener."""


# The smallest prompt budget a FIM prompt is cut to for a small per-slot stream.
_MIN_FIM_BUDGET = 64
# Cached prefixes shorter than this are read again (see Scheduler.min_prefix).
_MIN_PREFIX_TOKENS = 32


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker loads its model and sizes its context."""

    path: Path
    n_gpu_layers: int
    use_mmap: bool
    context: ContextConfig
    fim_family: str  # "auto", "none" or a family name from engine.completion.prompts
    max_queue: int = 64
    # Cached runs of at least this many tokens are shifted into place when a
    # prompt loses tokens in the middle (0: off); see slots.reusable_chunks.
    cache_reuse_min: int = 0
    # llama.cpp RPC servers (host:port) holding the offloaded layers; see engine.runtime.rpc.
    rpc_servers: tuple[str, ...] = ()
    # llama.cpp's weight repacking: "auto", "on" or "off" (see llama_backend.repack_weights).
    weight_repack: str = "auto"


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


@dataclass(eq=False, slots=True)
class _Job:
    """What the worker keeps for a running request besides its scheduled sequence."""

    seq: Running
    sampler: Sampler
    prompt: BuiltPrompt
    output: TextStream
    submitted: float
    admitted: float
    cached_prompt_tokens: int
    logprob_sum: float = 0.0
    first_token_at: float | None = None
    # Token healing: the ids the first generated token is chosen among (None
    # once it is written, or when the prompt was not healed).
    healing: npt.NDArray[np.int64] | None = None


class ModelWorker:
    """Owns one llama.cpp model and context on a dedicated thread."""

    def __init__(
        self,
        model_id: str,
        config: WorkerConfig,
        on_progress: Callable[[float], None] | None = None,
        on_state: Callable[[], None] | None = None,
    ) -> None:
        self.model_id = model_id
        self.config = config
        self._on_progress = on_progress
        # Told (cheaply, possibly under the lock) whenever the queue or the
        # active count may have changed, so that a runner reports its state
        # when it changes instead of polling it.
        self._on_state = on_state or _nothing
        self._lock = threading.Condition()
        context = config.context
        # Sized from the configuration until the context reports its real sizes.
        self._scheduler = Scheduler(
            n_slots=context.n_seq_max,
            n_ctx=context.n_ctx,
            batch_capacity=context.n_batch,
            max_queue=config.max_queue,
            prepare=self._build_prompt,
            model_id=model_id,
            cache_reuse_min=config.cache_reuse_min,
            min_prefix=_MIN_PREFIX_TOKENS,
        )
        self._slots = self._scheduler.slots
        self._jobs: list[_Job | None] = [None] * context.n_seq_max  # by sequence id
        self._stopping = False
        self._load_deadline: float | None = None
        self._loaded = threading.Event()
        self._load_error: EngineError | None = None
        self._thread: threading.Thread | None = None
        self._model: LlamaModel | None = None
        self._ctx: LlamaContext | None = None
        self.info: ModelInfo | None = None

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
            self._scheduler.add(request, time.monotonic())
            self._lock.notify_all()
        self._on_state()

    def cancel(self, request_id: str, reason: EngineError | None = None) -> None:
        """Stop a request between decode steps (or drop it from the queue)."""
        with self._lock:
            self._scheduler.cancel(request_id, reason or RequestCancelledError("request cancelled"))
            self._lock.notify_all()
        self._on_state()

    @property
    def queue_length(self) -> int:
        """Requests waiting for a slot."""
        with self._lock:
            return self._scheduler.queue_length

    @property
    def queued_by_priority(self) -> tuple[int, ...]:
        """Requests waiting for a slot, per priority class (indexed by ``Priority``)."""
        with self._lock:
            return self._scheduler.queued_by_priority()

    @property
    def active_requests(self) -> int:
        """Requests currently decoding."""
        return self._slots.n_running

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
                repack=repack_weights(cfg.weight_repack),
                progress=self._load_progress,
                rpc_servers=cfg.rpc_servers,
            )
        except ModelLoadFailedError as exc:
            if self._load_deadline is not None and time.monotonic() >= self._load_deadline:
                raise ModelLoadFailedError(
                    f"loading '{self.model_id}' did not finish within the timeout",
                    {"reason": "timeout"},
                ) from exc
            raise
        try:
            attention = flash_attention(cfg.context.flash_attn, cfg.n_gpu_layers)
            ctx = LlamaContext(model, replace(cfg.context, flash_attn=attention))
        except BaseException:
            model.close()
            raise
        family = cfg.fim_family
        if family == "auto":
            family = detect_family(model.token_text, model.fim)
        self._model, self._ctx = model, ctx
        self._logprob = LogprobMeter(model.n_vocab)
        self._prompt_tokens = TokenMemo(model.tokenize)
        # Indexed once per load (0.7 s for Gemma's 262,144 tokens), not on a keystroke.
        self._healer = TokenHealer([model.piece(t) for t in range(model.n_vocab)], model.is_text)
        with self._lock:
            self._scheduler.n_ctx = ctx.n_ctx
            self._scheduler.per_slot = None if ctx.unified else ctx.n_ctx_seq
            self._scheduler.batch_capacity = ctx.batch.capacity
            self._scheduler.can_shift = ctx.can_shift
        self.info = ModelInfo(
            description=model.description,
            size_bytes=model.size_bytes,
            n_params=model.n_params,
            n_vocab=model.n_vocab,
            n_ctx=ctx.n_ctx_seq,  # what one request can use
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
                # Stopped requests leave their slots before the admission
                # picks one, under the same lock hold: a keystroke that
                # pre-empted the guess running in its document's slot then
                # gets that slot's cache (shifted if need be), where a copy
                # from the still-running guess would keep only the prefix.
                self._interrupt()
                self._admit_locked()
                if not self._slots.n_running:
                    self._lock.wait(timeout=self._next_timeout_locked())
                    continue
            try:
                self._step()
            except Exception as exc:
                # A bug or native failure fails the requests in flight, never
                # the worker: the model keeps serving the next ones.
                log.exception("decode step failed for %s", self.model_id)
                failure = InferenceFailedError(f"generation failed: {type(exc).__name__}")
                for job in self._jobs:
                    if job is not None:
                        self._fail(job, failure, clear_cache=True)

    def _next_timeout_locked(self) -> float | None:
        deadline = self._scheduler.next_deadline()
        if deadline is None:
            return None
        return max(0.0, deadline - time.monotonic())

    def _shutdown(self) -> None:
        unloading = ModelLoadFailedError(f"model '{self.model_id}' was unloaded")
        with self._lock:
            queued = self._scheduler.drain()
        for request in queued:
            request.sink.emit(ErrorEvent(request.request_id, unloading))
        for job in self._jobs:
            if job is not None:
                self._fail(job, unloading)
        if self._ctx is not None:
            self._ctx.close()
        if self._model is not None:
            self._model.close()
        self._ctx = None
        self._model = None

    # -- admission ---------------------------------------------------------

    def _build_prompt(self, request: GenerationRequest) -> BuiltPrompt:
        """Tokenize a request's prompt (the scheduler calls this once per request)."""
        model = self._model
        assert model is not None and self.info is not None
        prompt = request.prompt
        if isinstance(prompt, FimPrompt):
            room = self._scheduler.per_slot
            if room is not None and prompt.budget_tokens + request.params.max_tokens > room:
                # A slot's own stream is the most a request can use: the
                # windows are cut to fit it rather than the request refused.
                budget = max(room - request.params.max_tokens, _MIN_FIM_BUDGET)
                prompt = replace(prompt, budget_tokens=budget)
            fim = model.fim if self.info.fim_family != "none" else FimTokens(None, None, None)
            built = build_fim_prompt(
                prompt,
                fim,
                self._prompt_tokens,
                bos=model.bos if model.add_bos else None,
                order=FAMILY_ORDER.get(self.info.fim_family, "psm"),
            )
            # Heal only a cursor line with code on it: then the prompt's last
            # token is the line's (line tokens come last in every layout).
            # An indentation-only line is left whole: healing its run of
            # spaces would let the model pick a deeper indentation than the
            # user's.
            if not prompt.line_prefix.strip():
                return built
            healing = self._healer.heal(built.tokens, keep=1)
            if healing is None:
                return built
            return replace(built, tokens=built.tokens[:-1], healed=healing.removed)
        if isinstance(prompt, TextPrompt):
            tokens = []
            for index, (text, special) in enumerate(prompt.pieces()):
                tokens += model.tokenize(
                    text,
                    add_bos=index == 0 and prompt.add_bos and model.add_bos,
                    parse_special=special,
                )
            return BuiltPrompt(tokens, False, 0, len(tokens), 0)
        tokens = [int(t) for t in prompt]
        return BuiltPrompt(tokens, False, 0, len(tokens), 0)

    def _admit_locked(self) -> None:
        ctx = self._ctx
        assert ctx is not None
        now = time.monotonic()
        while True:
            plan = self._scheduler.admit(now)
            for request, error in plan.rejected:
                request.sink.emit(ErrorEvent(request.request_id, error))
            for seq_id in plan.evict:
                ctx.seq_remove(seq_id, 0, -1)
            if plan.rejected or plan.admission is not None:
                self._on_state()
            admission = plan.admission
            if admission is None:
                return
            try:
                self._start_job(ctx, admission, now)
            except Exception as exc:
                log.exception("starting a request failed")
                self._slots.release(admission.seq, time.monotonic())
                request = admission.seq.request
                request.sink.emit(
                    ErrorEvent(request.request_id, InferenceFailedError(type(exc).__name__))
                )

    def _start_job(self, ctx: LlamaContext, admission: Admission, now: float) -> None:
        """Make the slot's cache hold the reused prompt prefix; set up sampling."""
        model = self._model
        assert model is not None
        seq = admission.seq
        kept = admission.reuse
        source = admission.donor if admission.donor is not None else seq.seq_id
        # A small sliding-window cache may no longer hold the cells the prefix
        # needs (the edit lies further back than its window; llama-server's test).
        usable = ctx.holds_prefix(source, kept)
        if usable and admission.donor is not None:
            ctx.seq_remove(seq.seq_id, 0, -1)
            ctx.seq_copy(admission.donor, seq.seq_id, kept)
        elif usable:
            for move in admission.moves:
                # Drop the gap before the chunk, then slide the chunk over it.
                ctx.seq_remove(seq.seq_id, move.target, move.source)
                ctx.seq_shift(
                    seq.seq_id, move.source, move.source + move.length, move.target - move.source
                )
            # Some caches (recurrent state) cannot drop a tail.
            usable = ctx.seq_remove(seq.seq_id, kept, -1)
        if not usable:
            # The prefix cannot be kept: read the whole prompt again.
            ctx.seq_remove(seq.seq_id, 0, -1)
            self._slots.rewind(seq)
            kept = 0
        request = seq.request
        params = request.params
        seed = params.seed
        if seed is None:
            seed = hash(request.request_id) & 0xFFFFFFFF
        self._jobs[seq.seq_id] = _Job(
            seq=seq,
            sampler=Sampler(
                params,
                seed,
                model.n_vocab,
                model.end_of_generation_tokens() if params.ignore_eos else (),
            ),
            prompt=admission.prompt,
            output=TextStream(params, request.block_stop, now),
            submitted=admission.submitted,
            admitted=now,
            cached_prompt_tokens=kept,
            healing=(
                self._healer.extensions(admission.prompt.healed)
                if admission.prompt.healed
                else None
            ),
        )

    # -- decoding ----------------------------------------------------------

    def _interrupt(self) -> None:
        """Fail the running requests that were cancelled or ran out of time."""
        with self._lock:  # reentrant: the serving loop calls this holding it
            for seq, reason in self._scheduler.interrupted(time.monotonic()):
                job = self._jobs[seq.seq_id]
                assert job is not None
                self._fail(job, reason)

    def _step(self) -> None:
        ctx = self._ctx
        assert ctx is not None
        self._interrupt()  # what was cancelled since the admission
        plan = self._scheduler.plan_step(time.monotonic())
        if not plan:
            return
        batch = ctx.batch
        batch.clear()
        rows: list[int] = []  # logits row of each planned sequence (-1: none)
        for seq, added in plan:
            pending = seq.pending
            last = added == len(pending)
            row = batch.add(pending if last else pending[:added], seq.n_past, seq.seq_id, last)
            rows.append(row if last else -1)
        started = time.perf_counter()
        try:
            ctx.decode()
        except EngineError as exc:
            log.error("decode failed for %s: %s", self.model_id, exc.message)
            for seq, _ in plan:
                job = self._jobs[seq.seq_id]
                assert job is not None
                self._fail(job, exc, clear_cache=True)
            return
        # The reading speed comes from the prompt tokens; generated ones (one a
        # sequence) would make many slots' decode steps look like reading.
        reading = sum(added for _, added in plan if added > 1)
        self._scheduler.observe_step(reading, time.perf_counter() - started)
        now = time.monotonic()
        slots = self._slots
        for (seq, added), row in zip(plan, rows, strict=True):
            slots.advance(seq, added)
            if row >= 0:
                job = self._jobs[seq.seq_id]
                assert job is not None
                self._sample(job, row, now)

    def _sample(self, job: _Job, row: int, now: float) -> None:
        model, ctx = self._model, self._ctx
        assert model is not None and ctx is not None
        logits = ctx.logits(row)
        healing = job.healing
        if healing is None:
            token = job.sampler.sample(ctx, row)
            job.logprob_sum += self._logprob(logits, token, job.sampler.picks_the_raw_argmax)
            piece = model.piece(token)
        else:
            job.healing = None
            token = job.sampler.sample_among(ctx, row, healing)
            job.logprob_sum += log_prob_among(logits, healing, token)
            # The document already holds the healed bytes that this token starts with.
            piece = model.piece(token)[len(job.prompt.healed) :]
        seq = job.seq
        self._slots.sampled(seq, token)
        if job.first_token_at is None:
            job.first_token_at = now
        end = model.is_eog(token) or model.is_control(token)
        finish = job.output.feed(None if end else piece, seq.n_generated, now)
        if finish is not None:
            self._finish(job, finish)
        elif seq.request.stream:
            delta = job.output.delta()
            if delta:
                seq.request.sink.emit(TokenEvent(seq.request.request_id, delta))

    def _release(self, job: _Job) -> None:
        job.sampler.close()
        self._jobs[job.seq.seq_id] = None
        self._slots.release(job.seq, time.monotonic())
        self._on_state()

    def _fail(self, job: _Job, error: EngineError, clear_cache: bool = False) -> None:
        self._release(job)
        seq_id = job.seq.seq_id
        if clear_cache and self._ctx is not None:
            self._ctx.seq_remove(seq_id, 0, -1)
            self._slots.forget(seq_id)
        request = job.seq.request
        request.sink.emit(ErrorEvent(request.request_id, error))

    def _finish(self, job: _Job, reason: FinishReason) -> None:
        self._release(job)
        rest = job.output.close(reason)
        now = time.monotonic()
        request = job.seq.request
        if request.stream and rest:
            request.sink.emit(TokenEvent(request.request_id, rest))
        count = job.seq.n_generated
        mean = job.logprob_sum / count if count else 0.0
        first = job.first_token_at or now
        result = GenerationResult(
            request_id=request.request_id,
            text=job.output.text,
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
            snippets_used=job.prompt.snippets_used,
        )
        request.sink.emit(DoneEvent(request.request_id, result))
