"""Matching events to webhook subscribers: the in-memory index, no database."""

from __future__ import annotations

from engine.events import EngineEvent
from services.webhooks.subscriptions import IndexEntry, SubscriberIndex, goes_to_nobody


def entry(sid: str, owner: str, *events: str, active: bool = True) -> IndexEntry:
    return IndexEntry(sid, owner, frozenset(events), active)


def index_of(*entries: IndexEntry) -> SubscriberIndex:
    index = SubscriberIndex()
    for item in entries:
        index.put(item)
    return index


def test_owner_events_go_only_to_the_owner() -> None:
    index = index_of(
        entry("a1", "alice", "inference_completed", "model_loaded"),
        entry("a2", "alice", "job_completed"),
        entry("b1", "bob", "inference_completed"),
    )
    assert index.targets(EngineEvent("inference_completed", {}, owner="alice")) == ["a1"]
    assert index.targets(EngineEvent("job_completed", {}, owner="alice")) == ["a2"]
    assert index.targets(EngineEvent("inference_completed", {}, owner="bob")) == ["b1"]
    assert index.targets(EngineEvent("job_completed", {}, owner="carol")) == []


def test_model_events_go_to_every_subscriber_of_the_type() -> None:
    index = index_of(
        entry("a1", "alice", "model_loaded"),
        entry("b1", "bob", "model_loaded", "model_unloaded"),
    )
    assert index.targets(EngineEvent("model_loaded", {})) == ["a1", "b1"]
    assert index.targets(EngineEvent("model_unloaded", {})) == ["b1"]
    assert index.targets(EngineEvent("model_load_failed", {})) == []


def test_editor_request_events_go_to_nobody() -> None:
    index = index_of(entry("a1", "alice", "inference_completed", "error_occurred"))
    for event_type in ("inference_completed", "error_occurred", "job_completed"):
        event = EngineEvent(event_type, {})
        assert goes_to_nobody(event)
        assert index.targets(event) == []
    assert not goes_to_nobody(EngineEvent("model_loaded", {}))
    assert not goes_to_nobody(EngineEvent("inference_completed", {}, owner="alice"))


def test_disabled_and_removed_subscriptions_get_nothing() -> None:
    index = index_of(entry("a1", "alice", "model_loaded"), entry("a2", "alice", "model_loaded"))
    index.set_active("a1", False)
    assert index.targets(EngineEvent("model_loaded", {})) == ["a2"]
    index.set_active("a1", True)
    index.remove("a2")
    assert index.targets(EngineEvent("model_loaded", {}, owner="alice")) == ["a1"]
    index.set_active("unknown", True)  # not known here: nothing to change
    index.remove("unknown")
    assert index.targets(EngineEvent("model_loaded", {})) == ["a1"]


def test_a_reload_read_before_a_local_change_does_not_undo_it() -> None:
    index = SubscriberIndex()
    version = index.version
    index.put(entry("new", "alice", "model_loaded"))  # committed while the reload read
    assert not index.replace([entry("old", "bob", "model_loaded")], version)
    assert index.targets(EngineEvent("model_loaded", {})) == ["new"]
    assert index.replace([entry("old", "bob", "model_loaded")], index.version)
    assert index.targets(EngineEvent("model_loaded", {})) == ["old"]
    inactive = [entry("off", "bob", "model_loaded", active=False)]
    assert index.replace(inactive, index.version)
    assert index.targets(EngineEvent("model_loaded", {})) == []
