"""Property-based fuzzing of the served OpenAPI document: no request gets a 5xx."""

from __future__ import annotations

import asyncio
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from engine.engine import Engine
from lsp_server.sidecar.app import create_app
from services.composition import Services, shutdown
from tests.conftest import create_api_key, make_settings

EXAMPLES_PER_OPERATION = 30
RESPONSE_TIMEOUT_SECONDS = 120


def test_no_generated_request_gets_a_server_error(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    config = make_settings(tmp_path, tiny_models, rate_limits={"enabled": False})
    key = create_api_key(config)
    engine = Engine(config)
    services = Services(engine, config)
    app = create_app(engine, services, config)
    # Models ready up front, so no request meets a load in progress (a 503 by design).
    for model_id in engine.catalog:
        engine.registry.request_load(model_id)
    for model_id in engine.catalog:
        engine.registry.wait_loaded(model_id, 60)
    schema = schemathesis.openapi.from_asgi("/v1/ai/openapi.json", app, headers={"X-API-Key": key})
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        tested += 1

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            # Schemathesis reads for 10 s by default; a generated generation
            # of thousands of tokens on a busy CI machine takes longer, and a
            # client-side timeout is not the server error this test looks for.
            response = case.call(headers={"X-API-Key": key}, timeout=RESPONSE_TIMEOUT_SECONDS)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:300]}"
                )
            if response.status_code >= 400:
                # Every refusal uses the documented envelope.
                body = response.json()
                if not (isinstance(body, dict) and set(body) == {"error"}):
                    failures.append(f"{case.method} {case.formatted_path}: no envelope {body}")

        try:
            check()
        except Unsatisfiable:
            continue
    asyncio.run(shutdown(engine, services))
    assert tested >= 15, "the OpenAPI document should describe every route"
    assert not failures, "\n".join(failures[:20])
