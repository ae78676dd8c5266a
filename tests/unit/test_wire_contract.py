"""The wire contract agrees with the engine, services and server that speak it.

The contract (``ai_ide.wire``) may not import the engine, so the few facts
both need are checked here instead of being imported.
"""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime
from pathlib import Path

import engine.errors
from ai_ide import wire
from engine.models.catalog import MODEL_ID_PATTERN
from lsp_server.sidecar import errors as sidecar_errors
from lsp_server.sidecar.convert import rfc3339

ROOT = Path(__file__).resolve().parents[2]


def test_model_id_pattern_is_the_catalogs() -> None:
    assert wire.MODEL_ID_PATTERN == MODEL_ID_PATTERN


def test_every_engine_error_code_is_in_the_contract_with_its_status() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(engine.errors, inspect.isclass)
        if issubclass(cls, engine.errors.EngineError)
    ]
    assert len(classes) > 10
    mismatched = {
        cls.code: (cls.http_status, wire.ERROR_STATUS.get(cls.code))
        for cls in classes
        if wire.ERROR_STATUS.get(cls.code) != cls.http_status
    }
    assert mismatched == {}


def test_every_http_fallback_code_is_in_the_contract() -> None:
    mapping = sidecar_errors._HTTP_CODES
    assert {code: wire.ERROR_STATUS.get(code) for code in mapping.values()} == {
        code: status for status, code in mapping.items()
    }


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _published_literals(path: Path) -> set[str]:
    """First arguments of ``EngineEvent("...", ...)`` calls written as literals."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "EngineEvent"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(node.args[0].value)
    return found


def test_event_types_are_listed_once_and_all_published() -> None:
    sources = sorted((ROOT / "engine").rglob("*.py")) + sorted((ROOT / "services").rglob("*.py"))
    published = set().union(*(_published_literals(p) for p in sources))
    assert published, "no EngineEvent(...) calls found"
    assert published <= set(wire.EVENT_TYPES)
    # No type in the list that nothing can publish (types chosen in a variable count too).
    literals = set().union(*(_string_constants(p) for p in sources))
    assert set(wire.EVENT_TYPES) <= literals
    # And nobody keeps a second list.
    assert not hasattr(__import__("engine.events").events, "EVENT_TYPES")


def test_the_contract_names_the_subscription_bounds_the_service_checks() -> None:
    from services.webhooks import subscriptions

    assert subscriptions.MIN_SECRET_LENGTH == wire.MIN_SECRET_LENGTH
    assert subscriptions.EVENT_TYPES is wire.EVENT_TYPES


def test_timestamps_are_rfc3339_with_four_digit_years() -> None:
    assert rfc3339(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"  # strftime: "1-01-01"
    assert rfc3339(datetime(2026, 12, 2, 14, 9, 5, 999, tzinfo=UTC)) == "2026-12-02T14:09:05Z"
    assert rfc3339(None) is None
