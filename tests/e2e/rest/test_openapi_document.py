"""The served OpenAPI document is the committed ``sdk/openapi.json``.

A change to a wire model (or a route's docstring) changes the served
document; this test then fails until ``python -m lsp_server.sidecar.openapi``
rewrites the committed one and the SDK types generated from it (checked by
the TypeScript SDK's ``npm test`` and tests/sdk/test_rust_sdk.py).
"""

from __future__ import annotations

import json

from engine.config import Settings
from engine.engine import Engine
from lsp_server.sidecar.openapi import COMMITTED_DOCUMENT, render
from tests.support.rest_client import BASE, api_client


async def test_served_document_is_the_committed_one(engine: Engine, settings: Settings) -> None:
    async with api_client(engine, settings) as client:
        response = await client.get(f"{BASE}/openapi.json")
    assert response.status_code == 200
    committed = COMMITTED_DOCUMENT.read_text(encoding="utf-8")
    assert render(response.json()) == committed, (
        "sdk/openapi.json is out of date: run .venv/bin/python -m lsp_server.sidecar.openapi "
        "(it regenerates the SDK types too)"
    )


async def test_document_carries_the_contract_not_fastapis_defaults(
    engine: Engine, settings: Settings
) -> None:
    document = json.loads(COMMITTED_DOCUMENT.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert {"ErrorEnvelope", "TokenEvent", "WebhookPayload", "ErrorCode", "EventType"} <= set(
        schemas
    )
    envelope_ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            default = operation["responses"]["default"]["content"]["application/json"]
            assert default["schema"] == envelope_ref, (method, path)
    stream = document["paths"]["/v1/ai/inference/completion"]["post"]["responses"]["200"]
    events = stream["content"]["text/event-stream"]["x-sse-events"]
    assert set(events) == {"token", "done", "error"}
    # A refusal on the wire really has that shape.
    async with api_client(engine, settings) as client:
        response = await client.post(f"{BASE}/inference/completion", json={"context": {}})
    assert response.status_code == 422
    assert set(response.json()) == {"error"}
