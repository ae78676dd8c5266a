"""The worker's scheduling policy, on fake token lists: no llama.cpp, no threads, no sleeps.

A tiny fake executor stands in for the worker: it "decodes" what each step
plan asks for, records it in the slot table, and samples token 7 wherever a
sequence's pending tokens were all fed.
"""

from __future__ import annotations

import pytest

from engine.completion.prompts import BuiltPrompt
from engine.errors import (
    ContextLengthExceededError,
    EngineError,
    InferenceFailedError,
    InferenceTimeoutError,
    QueueFullError,
    RequestCancelledError,
)
from engine.runtime.messages import (
    GenerationRequest,
    Priority,
    SamplingParams,
    WorkerEvent,
)
from engine.runtime.scheduler import (
    EDITOR_ACTIVE_SECONDS,
    SHARE_MIN_TOKENS,
    Admission,
    Scheduler,
)
from engine.runtime.slots import ChunkMove, Running, common_prefix, reusable_chunks

SAMPLED = 7


class NullSink:
    """Events go nowhere: the scheduler never emits."""

    def emit(self, event: WorkerEvent) -> None:
        """Drop the event."""


def req(
    request_id: str,
    tokens: list[int] | None = None,
    priority: Priority = Priority.NORMAL,
    max_tokens: int = 8,
    group: str | None = None,
    deadline: float | None = None,
) -> GenerationRequest:
    return GenerationRequest(
        prompt=tokens if tokens is not None else [1, 2, 3],
        params=SamplingParams(max_tokens=max_tokens),
        sink=NullSink(),
        priority=priority,
        group=group,
        deadline=deadline,
        request_id=request_id,
    )


def prepare(request: GenerationRequest) -> BuiltPrompt:
    assert isinstance(request.prompt, list)  # these tests queue token lists only
    tokens = [int(t) for t in request.prompt]
    return BuiltPrompt(tokens, False, 0, len(tokens), 0)


def scheduler(
    n_slots: int = 4, n_ctx: int = 4096, batch: int = 512, max_queue: int = 64
) -> Scheduler:
    return Scheduler(n_slots, n_ctx, batch, max_queue, prepare, model_id="fake")


def admit_all(
    s: Scheduler, now: float = 0.0
) -> tuple[list[Admission], list[tuple[str, EngineError]]]:
    """Ask for admissions until none starts, as the worker does."""
    admitted: list[Admission] = []
    rejected: list[tuple[str, EngineError]] = []
    while True:
        plan = s.admit(now)
        rejected += [(r.request_id, error) for r, error in plan.rejected]
        if plan.admission is None:
            return admitted, rejected
        admitted.append(plan.admission)


def ids(admissions: list[Admission]) -> list[str]:
    return [a.seq.request.request_id for a in admissions]


def step(s: Scheduler, now: float = 1.0) -> list[tuple[str, int]]:
    """Execute one step plan: decode the planned tokens, sample where a sequence was fed."""
    plan = s.plan_step(now)
    for seq, added in plan:
        last = added == len(seq.pending)
        s.slots.advance(seq, added)
        if last:
            s.slots.sampled(seq, SAMPLED)
    return [(seq.request.request_id, added) for seq, added in plan]


def running(s: Scheduler, request_id: str) -> Running:
    return next(r for r in s.slots.running() if r.request.request_id == request_id)


def finish(s: Scheduler, request_id: str, now: float = 1.0) -> None:
    s.slots.release(running(s, request_id), now)


def tokens(start: int, n: int) -> list[int]:
    return list(range(start, start + n))


# -- priorities and ordering --------------------------------------------------


def test_classes_are_admitted_in_priority_order_and_fifo_within_a_class() -> None:
    s = scheduler(n_slots=1)
    s.add(req("running", priority=Priority.BATCH), 0.0)
    assert ids(admit_all(s)[0]) == ["running"]
    for name, priority in [
        ("batch1", Priority.BATCH),
        ("normal1", Priority.NORMAL),
        ("batch2", Priority.BATCH),
        ("speculative1", Priority.SPECULATIVE),
        ("normal2", Priority.NORMAL),
        ("speculative2", Priority.SPECULATIVE),
    ]:
        s.add(req(name, priority=priority), 0.0)
    assert admit_all(s)[0] == []  # the only slot is busy
    order = ["running"]
    while s.queue_length:
        finish(s, order[-1])
        admitted, rejected = admit_all(s)
        assert not rejected
        order += ids(admitted)
    assert order == [
        "running",
        "speculative1",
        "speculative2",
        "normal1",
        "normal2",
        "batch1",
        "batch2",
    ]


def test_a_keystroke_is_admitted_before_earlier_background_work() -> None:
    s = scheduler(n_slots=2)
    s.add(req("busy", priority=Priority.INTERACTIVE), 0.0)
    s.add(req("busy2", priority=Priority.INTERACTIVE), 0.0)
    assert len(admit_all(s)[0]) == 2
    for i in range(3):
        s.add(req(f"queued{i}", priority=Priority.BATCH), 0.0)
    s.add(req("keystroke", priority=Priority.INTERACTIVE), 0.0)
    finish(s, "busy")
    assert ids(admit_all(s)[0]) == ["keystroke"]


# -- the reserved editor slot -------------------------------------------------


def type_once(s: Scheduler, now: float = 0.0) -> None:
    """An editor's keystroke, run and finished: an editor is now typing."""
    s.add(req("typed", tokens(7000, 4), Priority.INTERACTIVE), now)
    assert ids(admit_all(s, now)[0]) == ["typed"]
    finish(s, "typed", now)


def test_background_work_leaves_one_slot_for_the_editor() -> None:
    s = scheduler(n_slots=4)
    assert s.reserved_slots == 1
    type_once(s)
    for i in range(5):
        s.add(req(f"batch{i}", tokens(100 * i, 4), Priority.BATCH), 0.0)
    admitted, _ = admit_all(s)
    assert ids(admitted) == ["batch0", "batch1", "batch2"]
    s.add(req("normal", tokens(900, 4), Priority.NORMAL), 0.0)
    assert admit_all(s) == ([], [])
    assert s.queue_length == 3 and s.slots.n_running == 3
    # The keystroke takes the reserved slot at once, ahead of the queued work.
    s.add(req("keystroke", tokens(50, 4), Priority.INTERACTIVE), 0.0)
    assert ids(admit_all(s)[0]) == ["keystroke"]
    # While the keystroke runs, the slot a batch request frees is the reserved one.
    finish(s, "batch0")
    assert admit_all(s) == ([], [])
    # Then the queue moves on by priority.
    finish(s, "keystroke")
    assert ids(admit_all(s)[0]) == ["normal"]


def test_speculative_work_may_use_the_reserved_slot() -> None:
    # Only NORMAL and BATCH keep off it: a keystroke pre-empts speculation anyway.
    s = scheduler(n_slots=2)
    type_once(s)
    s.add(req("batch", priority=Priority.BATCH), 0.0)
    assert ids(admit_all(s)[0]) == ["batch"]
    s.add(req("normal", [4, 5], priority=Priority.NORMAL), 0.0)
    assert ids(admit_all(s)[0]) == []
    s.add(req("speculative", [5, 6], priority=Priority.SPECULATIVE), 0.0)
    assert ids(admit_all(s)[0]) == ["speculative"]
    assert s.queue_length == 1


def test_a_context_warm_up_is_editor_work_behind_everything_else() -> None:
    s = scheduler(n_slots=2)
    type_once(s)
    s.add(req("warm", [5, 6], priority=Priority.WARM), 0.0)
    s.add(req("batch", [7, 8], priority=Priority.BATCH), 0.0)
    # Lowest priority: the batch request is admitted first, into the one slot
    # background work may use; the warm-up then takes the editor's slot.
    assert ids(admit_all(s)[0]) == ["batch", "warm"]
    # A keystroke stops it, like a guess.
    s.add(req("keystroke", [9, 10], priority=Priority.INTERACTIVE), 0.0)
    stopped = s.interrupted(0.0)
    assert [seq.request.request_id for seq, _ in stopped] == ["warm"]
    assert isinstance(stopped[0][1], RequestCancelledError)


def test_without_an_editor_background_work_takes_every_slot() -> None:
    s = scheduler(n_slots=4)
    for i in range(4):
        s.add(req(f"batch{i}", tokens(100 * i, 4), Priority.BATCH), 0.0)
    assert len(admit_all(s)[0]) == 4  # no editor has typed: nothing to keep free
    for i in range(4):
        finish(s, f"batch{i}")
    type_once(s, now=10.0)
    later = 10.0 + EDITOR_ACTIVE_SECONDS / 2
    for i in range(4):
        s.add(req(f"next{i}", tokens(100 * i, 4), Priority.BATCH), later)
    assert len(admit_all(s, later)[0]) == 3  # an editor is typing: one slot stays free
    for i in range(3):
        finish(s, f"next{i}", later)
    # Long after the last keystroke the slot is background work's again.
    idle = 10.0 + EDITOR_ACTIVE_SECONDS + 1
    for i in range(3):
        s.add(req(f"last{i}", tokens(900 + 10 * i, 4), Priority.BATCH), idle)
    assert ids(admit_all(s, idle)[0]) == ["next3", "last0", "last1", "last2"]


def test_a_single_slot_is_never_reserved() -> None:
    s = scheduler(n_slots=1)
    assert s.reserved_slots == 0
    s.add(req("batch", priority=Priority.BATCH), 0.0)
    assert ids(admit_all(s)[0]) == ["batch"]


# -- pre-emption, supersession, cancellation ----------------------------------


def test_a_keystroke_preempts_speculative_work_queued_and_running() -> None:
    s = scheduler(n_slots=4)
    s.add(req("spec-running", [1, 2], Priority.SPECULATIVE), 0.0)
    s.add(req("normal-running", [3, 4], Priority.NORMAL), 0.0)
    assert len(admit_all(s)[0]) == 2
    step(s)
    s.add(req("spec-queued", [5, 6], Priority.SPECULATIVE), 0.0)
    s.add(req("keystroke", [8, 9], Priority.INTERACTIVE), 0.0)
    stopped = s.interrupted(0.0)
    assert [(seq.request.request_id, type(error)) for seq, error in stopped] == [
        ("spec-running", RequestCancelledError)
    ]
    assert "pre-empted" in stopped[0][1].message
    finish(s, "spec-running")
    admitted, rejected = admit_all(s)
    assert ids(admitted) == ["keystroke"]
    assert [(name, type(error)) for name, error in rejected] == [
        ("spec-queued", RequestCancelledError)
    ]


def test_a_newer_request_of_a_group_supersedes_the_older_ones() -> None:
    s = scheduler(n_slots=1)
    s.add(req("old-running", group="doc"), 0.0)
    admit_all(s)
    s.add(req("old-queued", group="doc"), 0.0)
    s.add(req("other", group="elsewhere"), 0.0)
    s.add(req("new", group="doc"), 0.0)
    stopped = s.interrupted(0.0)
    assert [seq.request.request_id for seq, _ in stopped] == ["old-running"]
    assert "superseded" in stopped[0][1].message
    finish(s, "old-running")
    admitted, rejected = admit_all(s)
    assert [name for name, _ in rejected] == ["old-queued"]
    assert ids(admitted) == ["other"]


def test_cancel_drops_queued_requests_and_interrupts_running_ones() -> None:
    s = scheduler(n_slots=1)
    s.add(req("running"), 0.0)
    admit_all(s)
    s.add(req("queued"), 0.0)
    reason = RequestCancelledError("client went away")
    s.cancel("running", reason)
    s.cancel("queued", reason)
    assert s.interrupted(0.0) == [(running(s, "running"), reason)]
    assert s.interrupted(0.0) == []  # reported once
    finish(s, "running")
    assert admit_all(s) == ([], [("queued", reason)])


def test_cancellations_of_finished_requests_are_forgotten() -> None:
    s = scheduler()
    s.cancel("long-gone", RequestCancelledError("late"))
    s.interrupted(0.0)
    # An unrelated request that happens to reuse the id is not affected.
    s.add(req("long-gone"), 0.0)
    admitted, rejected = admit_all(s)
    assert ids(admitted) == ["long-gone"] and not rejected


def test_deadlines_time_out_queued_and_running_requests() -> None:
    s = scheduler(n_slots=1)
    s.add(req("running", deadline=5.0), 0.0)
    admit_all(s)
    step(s)
    step(s)
    s.add(req("queued", deadline=3.0), 0.0)
    s.add(req("patient"), 0.0)
    assert s.next_deadline() == 3.0
    assert s.interrupted(4.0) == []
    [(seq, error)] = s.interrupted(5.0)
    assert seq.request.request_id == "running"
    assert isinstance(error, InferenceTimeoutError)
    assert error.details["generated_tokens"] == 2
    finish(s, "running")
    admitted, rejected = admit_all(s, now=5.0)
    assert [(name, type(e)) for name, e in rejected] == [("queued", InferenceTimeoutError)]
    assert ids(admitted) == ["patient"]
    assert s.next_deadline() is None


# -- slot choice by shared prefix ---------------------------------------------


def test_a_request_takes_the_free_slot_sharing_the_longest_prefix() -> None:
    s = scheduler(n_slots=4)
    table = s.slots.slots
    table[0].cached = [1, 2, 3]
    table[1].cached = [1, 2, 3, 4, 5, 6]
    table[2].cached = [9, 9]
    s.add(req("typing", [1, 2, 3, 4, 5, 7, 8], Priority.INTERACTIVE), 0.0)
    [admission] = admit_all(s)[0]
    seq = admission.seq
    assert seq.seq_id == 1 and admission.donor is None
    assert admission.reuse == seq.n_past == 5
    assert seq.pending == [7, 8]
    assert table[1].cached == [1, 2, 3, 4, 5]  # the changed tail is dropped


def test_an_identical_prompt_rereads_only_its_last_token() -> None:
    s = scheduler(n_slots=2)
    s.slots.slots[1].cached = [1, 2, 3, 4, 5, 6]
    s.add(req("again", [1, 2, 3, 4], Priority.INTERACTIVE), 0.0)
    [admission] = admit_all(s)[0]
    # The last prompt token is decoded again: its logits give the first sample.
    assert admission.seq.seq_id == 1 and admission.reuse == 3
    assert admission.seq.pending == [4]


def test_a_short_common_prefix_is_read_again_from_the_start() -> None:
    """A BOS token or a first line in common is not kept: the prompt reads as if fresh."""
    s = Scheduler(4, 4096, 512, 64, prepare, model_id="fake", min_prefix=32)
    table = s.slots.slots
    table[0].cached = tokens(1, 20)  # shares 20 tokens with "short": fewer than 32
    table[1].cached = [*tokens(1, 40), 99]
    s.add(req("short", tokens(1, 20) + [500] * 10, Priority.INTERACTIVE), 0.0)
    s.add(req("long", [*tokens(1, 40), 7], Priority.INTERACTIVE), 0.0)
    short, long = admit_all(s)[0]
    assert short.reuse == short.seq.n_past == 0 and short.donor is None
    assert short.seq.pending == tokens(1, 20) + [500] * 10
    assert long.seq.seq_id == 1 and long.reuse == 40 and long.seq.pending == [7]
    # A short prompt seen before keeps all of it but the last token.
    step(s)  # both prompts read into their slots
    finish(s, "short")
    s.add(req("again", tokens(1, 20) + [500] * 10, Priority.INTERACTIVE), 2.0)
    [again] = admit_all(s, 2.0)[0]
    assert again.reuse == 29 and again.seq.pending == [500]


def test_ties_go_to_the_least_recently_used_slot() -> None:
    s = scheduler(n_slots=3)
    for slot, used in zip(s.slots.slots, (3.0, 1.0, 2.0), strict=True):
        slot.last_used = used
    s.add(req("a", [5, 6], Priority.INTERACTIVE), 0.0)
    assert admit_all(s)[0][0].seq.seq_id == 1


def test_a_prompt_held_by_another_slot_is_copied_from_it() -> None:
    prompt = tokens(1, 40)
    s = scheduler(n_slots=4)
    s.add(req("first", prompt, Priority.INTERACTIVE), 0.0)
    [first] = admit_all(s)[0]
    assert first.reuse == 0
    assert step(s) == [("first", 40)]
    s.add(req("alternative", prompt, Priority.INTERACTIVE), 0.0)
    [second] = admit_all(s)[0]
    assert second.seq.seq_id != first.seq.seq_id
    assert second.donor == first.seq.seq_id
    assert second.reuse == 39 and second.seq.pending == [40]


def test_a_request_waits_for_a_running_reader_of_its_prompt() -> None:
    prompt = tokens(1, SHARE_MIN_TOKENS + 8)
    s = scheduler(n_slots=4)
    s.add(req("first", prompt, Priority.INTERACTIVE), 0.0)
    s.add(req("alternative", prompt, Priority.INTERACTIVE), 0.0)
    assert ids(admit_all(s)[0]) == ["first"]  # the copy waits for the prompt's cells
    assert s.queue_length == 1
    step(s)
    [second] = admit_all(s)[0]
    assert second.donor == running(s, "first").seq_id
    assert second.reuse == len(prompt) - 1


def test_a_short_shared_prompt_is_not_worth_waiting_for() -> None:
    prompt = tokens(1, SHARE_MIN_TOKENS - 1)
    s = scheduler(n_slots=4)
    s.add(req("first", prompt, Priority.INTERACTIVE), 0.0)
    s.add(req("second", prompt, Priority.INTERACTIVE), 0.0)
    admitted, _ = admit_all(s)
    assert ids(admitted) == ["first", "second"]
    assert admitted[1].donor is None  # nothing is decoded yet to copy


def test_a_cache_that_cannot_keep_a_prefix_is_rewound() -> None:
    s = scheduler(n_slots=2)
    s.slots.slots[0].cached = [1, 2, 3, 9]
    s.add(req("a", [1, 2, 3, 4], Priority.INTERACTIVE), 0.0)
    [admission] = admit_all(s)[0]
    assert admission.reuse == 3
    s.slots.rewind(admission.seq)  # what the worker does when seq_rm fails
    assert admission.seq.pending == [1, 2, 3, 4] and admission.seq.n_past == 0
    assert s.slots.slots[0].cached == []
    assert step(s) == [("a", 4)]
    assert s.slots.slots[0].cached == [1, 2, 3, 4]


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2


# -- admission limits ---------------------------------------------------------


def test_the_queue_is_bounded() -> None:
    s = scheduler(n_slots=1, max_queue=2)
    s.add(req("a"), 0.0)
    s.add(req("b"), 0.0)
    with pytest.raises(QueueFullError) as caught:
        s.add(req("c"), 0.0)
    assert caught.value.details == {"queue_length": 2, "max_queue": 2}
    assert "model 'fake'" in caught.value.message
    admit_all(s)
    s.add(req("c"), 0.0)  # room again once one started


def test_no_more_requests_run_than_there_are_slots() -> None:
    s = scheduler(n_slots=2)
    for name in "abc":
        s.add(req(name, priority=Priority.INTERACTIVE), 0.0)
    assert ids(admit_all(s)[0]) == ["a", "b"]
    assert admit_all(s)[0] == []
    assert s.slots.n_running == 2 and s.queue_length == 1
    finish(s, "a")
    assert ids(admit_all(s)[0]) == ["c"]


def test_prompts_that_cannot_fit_the_context_are_refused() -> None:
    s = scheduler(n_ctx=64)
    s.add(req("too-long", tokens(1, 60), max_tokens=8), 0.0)
    s.add(req("empty", []), 0.0)
    s.add(req("fits", tokens(1, 50), max_tokens=8), 0.0)
    admitted, rejected = admit_all(s)
    assert ids(admitted) == ["fits"]
    assert [(name, type(e)) for name, e in rejected] == [
        ("too-long", ContextLengthExceededError),
        ("empty", ContextLengthExceededError),
    ]


def test_a_failing_prompt_build_fails_only_that_request() -> None:
    calls: list[str] = []

    def flaky(request: GenerationRequest) -> BuiltPrompt:
        calls.append(request.request_id)
        if request.request_id == "broken":
            raise ValueError("tokenizer bug")
        return prepare(request)

    s = Scheduler(2, 4096, 512, 64, flaky)
    s.add(req("keystroke", priority=Priority.INTERACTIVE), 0.0)
    admit_all(s)
    s.add(req("broken"), 0.0)
    s.add(req("waits"), 0.0)
    admitted, rejected = admit_all(s)
    assert [(name, type(e)) for name, e in rejected] == [("broken", InferenceFailedError)]
    assert admitted == []  # "waits" is NORMAL: the only free slot is the reserved one
    admit_all(s)
    # Its prompt is built once, however many admissions it waits through.
    assert calls == ["keystroke", "broken", "waits"]


def test_idle_caches_are_evicted_least_recently_used_first() -> None:
    s = scheduler(n_slots=3, n_ctx=100)
    table = s.slots.slots
    table[1].cached, table[1].last_used = tokens(500, 30), 1.0
    table[2].cached, table[2].last_used = tokens(600, 30), 2.0
    s.add(req("big", tokens(1, 50), max_tokens=10), 3.0)
    plan = s.admit(3.0)
    assert plan.evict == [1]
    assert plan.admission is not None and plan.admission.seq.seq_id == 0
    assert table[1].cached == [] and len(table[2].cached) == 30


def test_per_slot_streams_evict_nothing_and_bound_a_request_by_one_slot() -> None:
    s = scheduler(n_slots=3, n_ctx=120)
    s.per_slot = 40  # each slot has its own stream of 40 cells
    table = s.slots.slots
    table[1].cached, table[1].last_used = tokens(500, 30), 1.0
    table[2].cached, table[2].last_used = tokens(600, 30), 2.0
    s.add(req("fits", tokens(1, 30), max_tokens=10), 3.0)
    plan = s.admit(3.0)
    # The pool is "full" (30 + 30 + 40 of 120 would evict in a shared cache's
    # accounting only past 120), but here no other slot's cache is touched.
    assert plan.evict == [] and plan.admission is not None
    assert len(table[1].cached) == 30 and len(table[2].cached) == 30
    s.add(req("too-big", tokens(1, 35), max_tokens=10), 3.0)
    _, rejected = admit_all(s, 3.0)
    assert [(r, type(e).__name__) for r, e in rejected] == [
        ("too-big", "ContextLengthExceededError")
    ]


def test_a_request_waits_while_running_sequences_hold_the_kv_cache() -> None:
    s = scheduler(n_slots=3, n_ctx=100)
    s.add(req("holder", tokens(1, 10), max_tokens=70), 0.0)
    admit_all(s)
    s.slots.slots[2].cached = tokens(300, 5)
    s.add(req("next", tokens(50, 20), max_tokens=10), 0.0)
    plan = s.admit(0.0)
    assert plan.admission is None and plan.evict == [2]  # evicted, still not enough
    assert s.queue_length == 1
    finish(s, "holder")
    assert ids(admit_all(s)[0]) == ["next"]


# -- step composition ---------------------------------------------------------


def test_a_keystroke_runs_alone_for_its_steps() -> None:
    s = scheduler(n_slots=4)
    s.add(req("batch", [1, 2, 3], Priority.BATCH, max_tokens=100), 0.0)
    admit_all(s)
    assert step(s) == [("batch", 3)]
    assert step(s) == [("batch", 1)]
    s.add(req("keystroke", [4, 5], Priority.INTERACTIVE), 0.0)
    admit_all(s)
    assert step(s) == [("keystroke", 2)]
    assert step(s) == [("keystroke", 1)]
    finish(s, "keystroke")
    assert step(s) == [("batch", 1)]


def test_generating_sequences_go_first_then_prompts_by_priority_within_the_batch() -> None:
    s = scheduler(n_slots=4, batch=8)
    s.add(req("generating", [1], Priority.NORMAL), 0.0)
    admit_all(s)
    step(s)
    s.add(req("batch", tokens(100, 6), Priority.BATCH), 0.0)
    s.add(req("speculative", tokens(200, 10), Priority.SPECULATIVE), 0.0)
    admit_all(s)
    # One token for the generator, then the speculative prompt (higher priority)
    # takes the rest of the batch; the batch prompt waits for room.
    assert step(s) == [("generating", 1), ("speculative", 7)]
    assert step(s) == [("generating", 1), ("speculative", 3), ("batch", 4)]
    assert step(s) == [("generating", 1), ("speculative", 1), ("batch", 2)]
    assert step(s) == [("generating", 1), ("speculative", 1), ("batch", 1)]


def test_slots_keep_their_tokens_after_a_request_ends() -> None:
    s = scheduler(n_slots=1)
    s.add(req("a", [1, 2, 3]), 0.0)
    [admission] = admit_all(s)[0]
    step(s)
    step(s)
    assert s.slots.slots[0].cached == [1, 2, 3, SAMPLED]
    s.slots.release(admission.seq, 9.0)
    assert s.slots.n_running == 0
    assert s.slots.slots[0].last_used == 9.0
    assert s.slots.slots[0].cached == [1, 2, 3, SAMPLED]
    assert s.slots.kv_in_use() == 4


# -- shifting cached chunks into place (cache reuse) ---------------------------


def test_chunks_after_a_gap_are_moved_left_over_it() -> None:
    head, dropped, kept, tail = tokens(1, 4), tokens(100, 10), tokens(200, 30), tokens(300, 5)
    cached = head + dropped + kept
    reused, moves = reusable_chunks(cached, head + kept + tail, 4, 8, 1000)
    assert moves == [ChunkMove(source=14, target=4, length=30)]
    assert reused == 34  # the head and the moved chunk; the new tail is decoded


def test_runs_shorter_than_the_minimum_are_not_moved() -> None:
    head, dropped, short = tokens(1, 4), tokens(100, 10), tokens(200, 5)
    reused, moves = reusable_chunks(head + dropped + short, head + short, 4, 8, 1000)
    assert (reused, moves) == (4, [])


def test_several_chunks_move_in_order_and_the_limit_holds() -> None:
    a, b = tokens(200, 20), tokens(300, 20)
    cached = [1, *tokens(100, 5), *a, *tokens(150, 3), *b]
    reused, moves = reusable_chunks(cached, [1, *a, *b], 1, 8, 40)
    assert moves == [ChunkMove(6, 1, 20), ChunkMove(29, 21, 19)]
    assert reused == 40  # one short of the prompt: its last token is decoded again


def shifting_scheduler(n_slots: int = 2) -> Scheduler:
    s = Scheduler(n_slots, 4096, 512, 64, prepare, model_id="fake", cache_reuse_min=8)
    s.can_shift = True
    return s


def test_a_moved_window_is_served_by_shifting_the_cache() -> None:
    s = shifting_scheduler()
    head, gone, window, line = [1], tokens(100, 32), tokens(200, 64), tokens(400, 3)
    s.slots.slots[1].cached = head + gone + window
    s.add(req("moved", head + window + line, Priority.INTERACTIVE), 0.0)
    [admission] = admit_all(s)[0]
    assert admission.seq.seq_id == 1 and admission.donor is None
    assert admission.moves == (ChunkMove(33, 1, 64),)
    assert admission.reuse == admission.seq.n_past == 65
    assert admission.seq.pending == line
    assert s.slots.slots[1].cached == head + window


def test_the_slot_that_can_serve_most_by_shifting_is_chosen() -> None:
    s = shifting_scheduler(n_slots=3)
    head, window = [1, 2], tokens(200, 64)
    s.slots.slots[0].cached = [*head, 3, 4]  # more recently used, the same prefix
    s.slots.slots[0].last_used = 5.0
    s.slots.slots[2].cached = [*head, *tokens(100, 10), *window]
    s.add(req("moved", [*head, *window, 9], Priority.INTERACTIVE), 0.0)
    [admission] = admit_all(s)[0]
    assert admission.seq.seq_id == 2 and admission.reuse == 66


def test_a_guess_never_shifts_the_cache_of_its_document() -> None:
    # The speculative guess at the next suggestion moved its window: it is
    # dropped rather than shift the cache the real prompt (old window) is in.
    s = shifting_scheduler()
    head, gone, window, line = [1], tokens(100, 32), tokens(200, 64), tokens(400, 3)
    s.slots.slots[1].cached = head + gone + window
    s.add(req("guess", head + window + line, Priority.SPECULATIVE), 0.0)
    admitted, rejected = admit_all(s)
    assert admitted == [] and [r for r, _ in rejected] == ["guess"]
    assert isinstance(rejected[0][1], RequestCancelledError)
    assert s.slots.slots[1].cached == head + gone + window
    # A guess that only extends the prompt reuses it as ever.
    s.add(req("extends", head + gone + window + line, Priority.SPECULATIVE), 0.0)
    [admission] = admit_all(s)[0]
    assert admission.seq.seq_id == 1 and admission.reuse == 97 and admission.moves == ()


def test_a_context_warm_up_shifts_the_cache_where_a_guess_would_not() -> None:
    # A warm-up reads the prompt the document's next keystroke will send (its
    # context was changed and kept for it): shifting the cache is the point.
    s = shifting_scheduler()
    head, gone, window, line = [1], tokens(100, 32), tokens(200, 64), tokens(400, 3)
    s.slots.slots[1].cached = head + gone + window
    s.add(req("warm", head + window + line, Priority.WARM, max_tokens=1), 0.0)
    [admission] = admit_all(s)[0]
    assert admission.seq.seq_id == 1 and admission.moves != ()


def test_without_shifting_only_the_common_prefix_is_reused() -> None:
    s = shifting_scheduler()
    s.can_shift = False  # a recurrent model, say
    head, gone, window = [1], tokens(100, 32), tokens(200, 64)
    s.slots.slots[1].cached = head + gone + window
    s.add(req("moved", [*head, *window, 7], Priority.INTERACTIVE), 0.0)
    [admission] = admit_all(s)[0]
    assert admission.moves == () and admission.reuse == 1


def test_the_queue_is_counted_per_priority_class() -> None:
    s = scheduler(n_slots=1)
    order = (Priority.BATCH, Priority.NORMAL, Priority.BATCH, Priority.INTERACTIVE)
    for index, priority in enumerate(order):
        s.add(req(f"r{index}", priority=priority), 0.0)
    assert s.queued_by_priority() == (1, 0, 1, 2, 0)
    admit_all(s)  # the keystroke goes first
    assert s.queued_by_priority() == (0, 0, 1, 2, 0)


def test_background_prompts_are_read_in_short_steps_while_an_editor_types() -> None:
    s = scheduler(n_slots=4, batch=512)
    s.add(req("rest", tokens(1000, 2000), Priority.NORMAL, max_tokens=4), 0.0)
    admit_all(s)
    # Reading 512 tokens took 1.2 s (a small CPU): about 0.15 s is 64 tokens.
    s.observe_step(512, 1.2)
    assert step(s, now=1.0) == [("rest", 512)]  # no editor yet: whole batches
    s.add(req("keystroke", tokens(5000, 300), Priority.INTERACTIVE), 2.0)
    admit_all(s, 2.0)
    assert step(s, now=2.0) == [("keystroke", 300)]  # a keystroke reads at full speed
    assert step(s, now=2.0) == [("keystroke", 1)]
    finish(s, "keystroke", 2.0)
    assert step(s, now=3.0) == [("rest", 64)]
    s.add(req("warm", tokens(9000, 500), Priority.WARM), 3.0)
    admit_all(s, 3.0)
    # The cap is for all background reading in a step together.
    assert step(s, now=3.0) == [("rest", 64)]
    # Once the editor has been quiet for EDITOR_ACTIVE_SECONDS: whole batches again.
    assert step(s, now=2.0 + EDITOR_ACTIVE_SECONDS + 1) == [("rest", 512)]


def test_the_background_step_follows_the_measured_reading_speed() -> None:
    s = scheduler(n_slots=2, batch=512)
    assert s.background_chunk(0.0) == 512  # nothing measured yet
    s.add(req("keystroke", [1, 2], Priority.INTERACTIVE), 0.0)
    s.observe_step(1, 5.0)  # one generated token: not a reading speed
    assert s.background_chunk(0.0) == 512
    s.observe_step(512, 0.05)  # a GPU: a whole batch in well under 0.15 s
    assert s.background_chunk(0.0) == 512
    for _ in range(20):
        s.observe_step(256, 1.2)  # slower: the estimate follows
    assert s.background_chunk(0.0) == 64
