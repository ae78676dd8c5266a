"""The served OpenAPI document: FastAPI's, completed from the wire contract.

FastAPI documents only the models that routes name, and documents its own
validation error shape for 422. The contract's error envelope is what every
refusal really carries, and stream events and webhook payloads travel outside
the request/response pairs, so they are added here. The result is committed
as ``sdk/openapi.json``; ``python -m lsp_server.sidecar.openapi`` writes it and
regenerates what derives from it (the Rust SDK's types, and the TypeScript
SDK's when its node_modules are installed). A test fails when the served and
committed documents differ.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ai_ide import wire

COMMITTED_DOCUMENT = Path(__file__).resolve().parents[2] / "sdk" / "openapi.json"
_REF = "#/components/schemas/{model}"

# Models no route names but clients need: stream events, webhook payloads,
# and the envelope (named by every error response below).
_EXTRA_MODELS: tuple[type[BaseModel], ...] = (
    wire.ErrorEnvelope,
    wire.TokenEvent,
    wire.WebhookPayload,
)
_ENUMS: dict[str, tuple[str, ...]] = {
    "ErrorCode": wire.ERROR_CODES,
    "EventType": wire.EVENT_TYPES,
    "StreamEventType": wire.STREAM_EVENT_TYPES,
}
_ENVELOPE = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorEnvelope")}}}
# What a streamed completion (options.stream) sends: SSE events and their data.
_STREAM = {
    "schema": {
        "type": "string",
        "description": "Server-Sent Events: `token` events (data: TokenEvent), then one "
        "`done` (data: CompletionResponse) or `error` (data: ErrorEnvelope).",
    },
    "x-sse-events": {
        "token": {"$ref": _REF.format(model="TokenEvent")},
        "done": {"$ref": _REF.format(model="CompletionResponse")},
        "error": {"$ref": _REF.format(model="ErrorEnvelope")},
    },
}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with the contract's envelope, events and enums."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _, extra = models_json_schema(
        [(model, "serialization") for model in _EXTRA_MODELS], ref_template=_REF
    )
    schemas.update(extra.get("$defs", {}))
    for name, values in _ENUMS.items():
        schemas[name] = {"type": "string", "enum": list(values), "title": name}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            content = responses.get("200", {}).get("content", {})
            if "text/event-stream" in content:
                content["text/event-stream"] = _STREAM
            if "422" in responses:
                responses["422"]["content"] = _ENVELOPE
                responses["422"]["description"] = "Validation error (VALIDATION_ERROR)"
            responses["default"] = {
                "description": "Any error: the documented envelope (see ErrorCode)",
                "content": _ENVELOPE,
            }
    # FastAPI's own validation models are replaced by the envelope above.
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_openapi` (built once) as the app's document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def render(document: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indents, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def served_document() -> dict[str, Any]:
    """The document the server serves, built from an app over an empty catalog."""
    import asyncio
    import tempfile

    from engine.config import load_settings
    from engine.engine import Engine
    from lsp_server.sidecar.app import create_app
    from services.composition import Services, shutdown

    with tempfile.TemporaryDirectory() as directory:
        settings = load_settings(None, data_dir=Path(directory), preload=[])
        engine = Engine(settings)
        services = Services(engine, settings)
        try:
            return create_app(engine, services, settings).openapi()
        finally:
            asyncio.run(shutdown(engine, services))


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) ``sdk/openapi.json``."""
    args = sys.argv[1:] if argv is None else argv
    text = render(served_document())
    if "--check" in args:
        current = COMMITTED_DOCUMENT.read_text(encoding="utf-8")
        if current != text:
            print(f"{COMMITTED_DOCUMENT} is out of date: run python -m lsp_server.sidecar.openapi")
            return 1
        return 0
    COMMITTED_DOCUMENT.write_text(text, encoding="utf-8")
    print(f"wrote {COMMITTED_DOCUMENT}")
    return regenerate_sdk_types()


def regenerate_sdk_types() -> int:
    """Regenerate the TypeScript and Rust SDK types from the committed document."""
    import shutil
    import subprocess

    sdk = COMMITTED_DOCUMENT.parent
    status = subprocess.run(
        [sys.executable, str(sdk / "rust" / "generate_types.py")], check=False
    ).returncode
    print("wrote sdk/rust/src/types.rs" if status == 0 else "sdk/rust/generate_types.py failed")
    typescript = sdk / "typescript"
    if (typescript / "node_modules" / ".bin" / "openapi-typescript").exists() and shutil.which(
        "npm"
    ):
        status |= subprocess.run(
            ["npm", "run", "--silent", "generate"], cwd=typescript, check=False
        ).returncode
    else:
        print("sdk/typescript has no node_modules: run npm ci && npm run generate there")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
