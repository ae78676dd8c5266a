"""The scheduling policy of a model worker, as plain data in and plans out.

No llama.cpp and no threads here: the worker holds its lock around the calls
that touch the queue, executes the plans with llama.cpp and reports back. One
turn of the worker's loop is:

1. :meth:`Scheduler.admit`, repeated until it admits nothing: the queued
   requests to drop (cancelled, timed out, invalid), the idle caches to evict
   to make room, and the next request to start, in which slot and with how
   many prompt tokens whose KV cells it reuses (its slot's own, or copied
   from the slot that shares most of its prompt). One request at a time,
   because the next decision depends on what the cache operations achieved
   (:meth:`SlotTable.rewind` records a cache that could not keep a prefix).
2. :meth:`Scheduler.interrupted`: running requests to stop before the step
   (cancelled, superseded, pre-empted by a keystroke, past their deadline).
3. :meth:`Scheduler.plan_step`: which sequences feed how many tokens into the
   next ``llama_decode``.
4. After decoding, :attr:`Scheduler.slots` records the tokens decoded
   (:meth:`SlotTable.advance`), sampled (:meth:`SlotTable.sampled`) and the
   requests that finished (:meth:`SlotTable.release`).

The policy: lower :class:`Priority` values run first and requests of one class
in arrival order; one slot stays free for the editor's next keystroke when
there are several; a keystroke cancels speculative work and runs alone for its
few steps; a newer request of a group supersedes the older ones; a request
takes the free slot whose cache serves most of its prompt, or, when none
serves half of it, the least recently used one, so that switching between
files keeps each file's prompt cached.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from engine.completion.prompts import BuiltPrompt
from engine.errors import (
    ContextLengthExceededError,
    EngineError,
    InferenceFailedError,
    InferenceTimeoutError,
    QueueFullError,
    RequestCancelledError,
)
from engine.runtime.messages import GenerationRequest, Priority
from engine.runtime.slots import (
    ChunkMove,
    Running,
    Slot,
    SlotTable,
    common_prefix,
    reusable_chunks,
)

log = logging.getLogger(__name__)

# A request waits for a running one to finish reading a prompt when it shares
# at least this many more tokens with it than with any cache it could use now.
SHARE_MIN_TOKENS = 32

# A request reuses a slot's cache when that serves at least this share of its
# prompt (llama-server's --slot-prompt-similarity); otherwise it takes the
# least recently used slot.
SLOT_SIMILARITY = 0.5

# One slot is kept free for an editor's next keystroke from its first
# keystroke until this long after its last one. Before any (a server only
# scripts use) and after, background work gets every slot: reserving one for
# an editor that is not there cost a quarter of the throughput at 4 slots.
EDITOR_ACTIVE_SECONDS = 600.0

# While an editor is active, a step that reads prompts for background work
# (REST, batch, a context warm-up) reads about this long at most: a keystroke
# waits for the step in progress, and a full batch of 512 prompt tokens takes
# over a second on a small CPU. The tokens per step follow the measured
# reading speed, in multiples of BACKGROUND_CHUNK_MIN; on a GPU the cap is
# the whole batch anyway.
BACKGROUND_STEP_SECONDS = 0.15
BACKGROUND_CHUNK_MIN = 64

PreparePrompt = Callable[[GenerationRequest], BuiltPrompt]


def preempted_by(
    request: GenerationRequest,
) -> list[tuple[Callable[[GenerationRequest], bool], EngineError]]:
    """What a newly queued request stops, queued or running, and why.

    A newer request of the same group (one document's completions) supersedes
    the older ones; an editor keystroke stops every speculative guess and
    context warm-up. The one policy for every runner, local or remote.
    """
    rules: list[tuple[Callable[[GenerationRequest], bool], EngineError]] = []
    if request.group is not None:
        group = request.group
        rules.append(
            (
                lambda r: r.group == group,
                RequestCancelledError("superseded by a newer request for the same document"),
            )
        )
    if request.priority == Priority.INTERACTIVE:
        rules.append(
            (
                lambda r: r.priority in (Priority.SPECULATIVE, Priority.WARM),
                RequestCancelledError("speculative work pre-empted by a keystroke"),
            )
        )
    return rules


@dataclass(frozen=True, slots=True)
class Admission:
    """Start a request: its sequence is already recorded in its slot.

    The worker makes the slot's cache hold the first ``reuse`` prompt tokens:
    by copying them from ``donor`` when it is set, otherwise by moving the
    chunks in ``moves`` into place (each: drop the cells between the chunk's
    target and its source, then shift it left) and dropping the rest of the
    slot's own cache.
    """

    seq: Running
    prompt: BuiltPrompt
    submitted: float
    donor: int | None
    reuse: int
    moves: tuple[ChunkMove, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """What the worker does before starting the next request (if any)."""

    rejected: list[tuple[GenerationRequest, EngineError]]
    evict: list[int]  # sequence ids whose cells to remove, in this order, first
    admission: Admission | None


class Scheduler:
    """Admission, slot choice, priorities, pre-emption and step composition."""

    def __init__(
        self,
        n_slots: int,
        n_ctx: int,
        batch_capacity: int,
        max_queue: int,
        prepare: PreparePrompt,
        model_id: str = "model",
        cache_reuse_min: int = 0,
        min_prefix: int = 0,
    ) -> None:
        self.slots = SlotTable(n_slots)
        # A cached prefix shorter than this (a BOS token, a common first line)
        # is read again from position 0 rather than kept, unless it is all of
        # the prompt but the last token: it saves next to nothing, and the
        # prompt is then read exactly as in a fresh context, so what an
        # unrelated request left in the slot cannot change this one's greedy
        # tokens (llama.cpp's results vary with the cells a read attends over).
        self.min_prefix = min_prefix
        # Chunks of at least this many cached tokens are shifted into place
        # rather than decoded again (0: only the common prefix is reused), when
        # the context can shift positions: the worker sets ``can_shift`` once
        # it has one (recurrent models and some architectures cannot).
        self.cache_reuse_min = cache_reuse_min
        self.can_shift = False
        # The context's real sizes: the worker sets them again once it exists.
        self.n_ctx = n_ctx
        # Cells of each slot's own stream when the KV cache has one per slot
        # (then no slot's cache is evicted for another's); None: one shared pool.
        self.per_slot: int | None = None
        self.batch_capacity = batch_capacity
        # Seconds per prompt token of the recent reading steps (None: none yet).
        self._seconds_per_token: float | None = None
        self.max_queue = max_queue
        self.model_id = model_id
        # One slot stays free for interactive work when there are several,
        # while an editor is typing (see EDITOR_ACTIVE_SECONDS).
        self.reserved_slots = 1 if n_slots > 1 else 0
        self._last_keystroke: float | None = None
        self._prepare = prepare
        self._queue: list[tuple[int, int, float, GenerationRequest]] = []
        self._order = itertools.count()
        self._cancelled: dict[str, EngineError] = {}
        self._prompts: dict[str, BuiltPrompt] = {}

    # -- intake ------------------------------------------------------------

    def add(self, request: GenerationRequest, now: float) -> None:
        """Queue a request, superseding its group and pre-empting speculation."""
        if len(self._queue) >= self.max_queue:
            raise QueueFullError(
                f"model '{self.model_id}' has {len(self._queue)} queued requests",
                {"queue_length": len(self._queue), "max_queue": self.max_queue},
            )
        for match, reason in preempted_by(request):
            self._cancel_where(match, reason)
        if request.priority == Priority.INTERACTIVE:
            self._last_keystroke = now
        heapq.heappush(self._queue, (int(request.priority), next(self._order), now, request))

    def cancel(self, request_id: str, reason: EngineError) -> None:
        """Stop a request: dropped from the queue, or interrupted between steps."""
        self._cancelled[request_id] = reason

    def _cancel_where(
        self, match: Callable[[GenerationRequest], bool], reason: EngineError
    ) -> None:
        for _, _, _, queued in self._queue:
            if match(queued):
                self._cancelled[queued.request_id] = reason
        for running in self.slots.running():
            if match(running.request):
                self._cancelled[running.request.request_id] = reason

    @property
    def queue_length(self) -> int:
        """Requests waiting for a slot."""
        return len(self._queue)

    def editor_active(self, now: float) -> bool:
        """Whether an editor has typed within :data:`EDITOR_ACTIVE_SECONDS` of ``now``."""
        seen = self._last_keystroke
        return seen is not None and now - seen <= EDITOR_ACTIVE_SECONDS

    def reserved_now(self, now: float) -> int:
        """Slots background work keeps off at ``now``: one while an editor is typing."""
        return self.reserved_slots if self.editor_active(now) else 0

    def observe_step(self, tokens: int, seconds: float) -> None:
        """A decode step fed ``tokens`` and took ``seconds``: learn the prompt reading speed."""
        if tokens < BACKGROUND_CHUNK_MIN // 2 or seconds <= 0.0:
            return  # a step of generated tokens says little about reading
        measured = seconds / tokens
        known = self._seconds_per_token
        self._seconds_per_token = measured if known is None else 0.7 * known + 0.3 * measured

    def background_chunk(self, now: float) -> int:
        """Prompt tokens background work may read in one step at ``now``."""
        per_token = self._seconds_per_token
        if per_token is None or not self.editor_active(now):
            return self.batch_capacity
        fits = int(BACKGROUND_STEP_SECONDS / per_token) // BACKGROUND_CHUNK_MIN
        return max(BACKGROUND_CHUNK_MIN, min(self.batch_capacity, fits * BACKGROUND_CHUNK_MIN))

    def queued_by_priority(self) -> tuple[int, ...]:
        """Requests waiting for a slot, per priority class (indexed by ``Priority``)."""
        counts = [0] * len(Priority)
        for _, _, _, request in self._queue:
            counts[request.priority] += 1
        return tuple(counts)

    def next_deadline(self) -> float | None:
        """The earliest deadline of a queued request (the worker wakes up for it)."""
        deadlines = [r.deadline for _, _, _, r in self._queue if r.deadline is not None]
        return min(deadlines) if deadlines else None

    def drain(self) -> list[GenerationRequest]:
        """Empty the queue (the worker is stopping) and return what was in it."""
        queued = [entry[3] for entry in self._queue]
        self._queue.clear()
        self._prompts.clear()
        return queued

    # -- admission ---------------------------------------------------------

    def admit(self, now: float) -> Plan:
        """Decide on the queue's head until one request starts or none can.

        The request's sequence is recorded in its slot assuming the worker's
        cache operations succeed; the worker rewinds it if they do not.
        """
        rejected: list[tuple[GenerationRequest, EngineError]] = []
        queue = self._queue
        while queue:
            free = self.slots.free()
            if not free:
                break
            _, _, submitted, request = queue[0]
            reason = self._cancelled.pop(request.request_id, None)
            if reason is None and request.deadline is not None and now >= request.deadline:
                reason = InferenceTimeoutError("the request timed out while queued")
            if reason is not None:
                heapq.heappop(queue)
                self._prompts.pop(request.request_id, None)
                rejected.append((request, reason))
                continue
            try:
                built = self._prepared(request)
            except EngineError as exc:
                heapq.heappop(queue)
                rejected.append((request, exc))
                continue
            except Exception as exc:
                log.exception("building a prompt failed")
                heapq.heappop(queue)
                rejected.append((request, InferenceFailedError(type(exc).__name__)))
                continue
            if not request.priority.for_editor and len(free) <= self.reserved_now(now):
                break  # the last slot stays free for the editor's next keystroke
            tokens = built.tokens
            reuse = {s.seq_id: self._reuse_plan(s, tokens) for s in free}
            slot = max(free, key=lambda s: (reuse[s.seq_id][0], -s.last_used))
            if reuse[slot.seq_id][0] < len(tokens) * SLOT_SIMILARITY:
                # Little of it is cached anywhere (another file, say): take the
                # least recently used slot, an empty one first, rather than
                # overwrite a cache that its document is likely to come back to.
                slot = min(free, key=lambda s: (s.last_used, len(s.cached)))
            if request.priority == Priority.SPECULATIVE and reuse[slot.seq_id][1]:
                # The guess moved its window (the accepted text added a line
                # past a window step): served by shifting, it would rewrite
                # the cache the document's real prompt sits in, and the next
                # keystroke, which keeps the old window, would read it all
                # again. A guess is worth less than that cache: skip it.
                heapq.heappop(queue)
                self._prompts.pop(request.request_id, None)
                rejected.append(
                    (request, RequestCancelledError("the guess would rewrite its document's cache"))
                )
                continue
            own = reuse[slot.seq_id][0]
            if self._shared_prompt_pending(tokens, own):
                break
            evict, fits = self._make_room(slot, len(tokens) + request.params.max_tokens, tokens)
            if not fits:
                return Plan(rejected, evict, None)  # wait for running sequences to finish
            heapq.heappop(queue)
            self._prompts.pop(request.request_id, None)
            return Plan(
                rejected, evict, self._start(slot, request, built, submitted, reuse[slot.seq_id])
            )
        return Plan(rejected, [], None)

    def _prepared(self, request: GenerationRequest) -> BuiltPrompt:
        """The request's prompt tokens, built once (it may wait several admissions)."""
        built = self._prompts.get(request.request_id)
        if built is not None:
            return built
        built = self._prepare(request)
        if not built.tokens:
            raise ContextLengthExceededError("prompt", "the prompt is empty")
        need = len(built.tokens) + request.params.max_tokens
        room = self.n_ctx if self.per_slot is None else self.per_slot
        if need > room:
            raise ContextLengthExceededError(
                "parameters.max_tokens",
                f"prompt ({len(built.tokens)} tokens) plus max_tokens "
                f"({request.params.max_tokens}) exceeds the context of "
                f"{room} tokens",
                prompt_tokens=len(built.tokens),
                context_length=room,
            )
        self._prompts[request.request_id] = built
        return built

    def _shared_prompt_pending(self, tokens: list[int], own: int) -> bool:
        """True when a running request is still reading a prompt this one shares.

        Waiting a step or two for it lets this request copy that KV cache
        (alternatives, best-of-n, orchestration on one model) instead of
        computing the same prompt again.
        """
        for running in self.slots.running():
            if running.n_generated or not running.pending:
                continue
            if common_prefix(running.prompt, tokens) - own >= SHARE_MIN_TOKENS:
                return True
        return False

    def _make_room(self, chosen: Slot, need: int, tokens: list[int]) -> tuple[list[int], bool]:
        """Idle caches to evict so that ``need`` cells fit, and whether they then fit."""
        if self.per_slot is not None:
            # The slot's own stream: nothing else competes for its cells.
            return [], need <= self.per_slot
        keep = common_prefix(chosen.cached, tokens)
        in_use = self.slots.kv_in_use() - len(chosen.cached) + keep
        evicted: list[int] = []
        if in_use + need - keep <= self.n_ctx:
            return evicted, True
        # Least recently used first, until the request fits.
        idle = sorted(
            (s for s in self.slots.slots if s.running is None and s is not chosen and s.cached),
            key=lambda s: s.last_used,
        )
        for slot in idle:
            in_use -= len(slot.cached)
            self.slots.forget(slot.seq_id)
            evicted.append(slot.seq_id)
            if in_use + need - keep <= self.n_ctx:
                return evicted, True
        return evicted, False

    def _reuse_plan(self, slot: Slot, tokens: list[int]) -> tuple[int, tuple[ChunkMove, ...]]:
        """How many prompt tokens ``slot``'s cache can serve, and the moves that takes.

        One short of the prompt at most: its last token must be decoded again
        to produce the logits the first sample is drawn from.
        """
        limit = len(tokens) - 1
        prefix = min(common_prefix(slot.cached, tokens), limit)
        reused, moves = prefix, list[ChunkMove]()
        if self.can_shift and self.cache_reuse_min and len(slot.cached) > prefix:
            reused, moves = reusable_chunks(
                slot.cached, tokens, prefix, self.cache_reuse_min, limit
            )
        return (reused, tuple(moves)) if self._worth_keeping(reused, limit) else (0, ())

    def _worth_keeping(self, cached: int, limit: int) -> bool:
        """Whether ``cached`` prompt tokens are kept (see ``min_prefix``)."""
        return cached >= self.min_prefix or cached == limit

    def _start(
        self,
        slot: Slot,
        request: GenerationRequest,
        built: BuiltPrompt,
        submitted: float,
        plan: tuple[int, tuple[ChunkMove, ...]],
    ) -> Admission:
        tokens = built.tokens
        reuse, moves = plan
        donor, shared = self.slots.best_donor(slot, tokens)
        donor_id: int | None = None
        limit = len(tokens) - 1
        if donor is not None and shared > reuse and self._worth_keeping(shared, limit):
            # Another sequence holds more of this prompt: share its cells.
            donor_id, reuse, moves = donor.seq_id, shared, ()
        seq = Running(
            request=request,
            seq_id=slot.seq_id,
            prompt=tokens,
            pending=tokens[reuse:],
            n_past=reuse,
            reserved=len(tokens) + request.params.max_tokens,
        )
        self.slots.occupy(slot, seq)
        return Admission(seq, built, submitted, donor_id, reuse, moves)

    # -- decoding ----------------------------------------------------------

    def interrupted(self, now: float) -> list[tuple[Running, EngineError]]:
        """Running requests to stop before the next step, with the reason for each."""
        doomed: list[tuple[Running, EngineError]] = []
        cancelled = self._cancelled
        for running in self.slots.running():
            request = running.request
            reason = cancelled.pop(request.request_id, None) if cancelled else None
            if reason is None and request.deadline is not None and now >= request.deadline:
                reason = InferenceTimeoutError(
                    "generation did not finish in time",
                    {"generated_tokens": running.n_generated},
                )
            if reason is not None:
                doomed.append((running, reason))
        if cancelled:
            # Forget cancellations of requests that already finished.
            active = {r.request.request_id for r in self.slots.running()}
            queued = {entry[3].request_id for entry in self._queue}
            for stale in set(cancelled) - active - queued:
                del cancelled[stale]
        return doomed

    def plan_step(self, now: float) -> list[tuple[Running, int]]:
        """The sequences to decode in the next step and how many tokens each feeds.

        Generating sequences come first (one token each, latency-sensitive),
        then prompt chunks by priority, so a long prompt never stalls typing;
        the batch's capacity cuts the last chunk short. While an editor is
        active, background prompt reading is also cut to
        :meth:`background_chunk` a step, so that a keystroke arriving during
        the step waits a short time for it.
        """
        active = self.slots.running()
        background = self.background_chunk(now)
        if len(active) == 1:
            # The common case (one editor typing): no choice to make.
            running = active[0]
            fed = min(len(running.pending), self.batch_capacity)
            if running.request.priority != Priority.INTERACTIVE:
                fed = min(fed, background)
            return [(running, fed)]
        if any(r.request.priority == Priority.INTERACTIVE for r in active):
            # A keystroke runs alone: background sequences pause for its few
            # steps instead of making each of them slower.
            active = [r for r in active if r.request.priority == Priority.INTERACTIVE]
        generating = [r for r in active if r.n_generated and len(r.pending) == 1]
        if len(generating) < len(active):
            reading = [r for r in active if not (r.n_generated and len(r.pending) == 1)]
            reading.sort(key=lambda r: int(r.request.priority))
            generating.extend(reading)
        rows: list[tuple[Running, int]] = []
        free = self.batch_capacity
        for running in generating:
            if free == 0:
                break
            added = min(len(running.pending), free)
            if running.request.priority != Priority.INTERACTIVE and added > 1:
                added = min(added, background)
                if added == 0:
                    continue
                background -= added
            rows.append((running, added))
            free -= added
        return rows
