"""Each API operation as a :class:`Call`: built once, sent by either client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ai_ide import wire
from ai_ide.client._core import Call, body_of, parser, query, to_json

CompletionInput = wire.CompletionRequestBody | Mapping[str, Any] | None
GenerationInput = wire.GenerationRequestBody | Mapping[str, Any] | None
RefactorInput = wire.RefactorRequestBody | Mapping[str, Any] | None
OrchestrationInput = wire.OrchestrationRequestBody | Mapping[str, Any] | None
BatchInput = wire.BatchRequestBody | Mapping[str, Any] | None
LoadInput = wire.LoadRequest | Mapping[str, Any] | None
WebhookInput = wire.CreateWebhook | Mapping[str, Any] | None


def _segment(value: str) -> str:
    # An id is one path segment: "../x" must not walk the URL.
    return quote(value, safe="")


def _with_options(body: Any, flags: Mapping[str, bool]) -> Any:
    """The body with ``options`` flags forced on (stream, async)."""
    data = body.model_dump(by_alias=True, exclude_unset=True)
    options = dict(data.get("options") or {})
    options.update(flags)
    data["options"] = options
    return type(body).model_validate(data)


def models_list(limit: int | None, offset: int | None) -> Call[wire.ModelList]:
    """``GET /models``."""
    return Call(
        "GET", "/ai/models", parser(wire.ModelList), params=query(limit=limit, offset=offset)
    )


def model_load(
    model_id: str, body: LoadInput, fields: Mapping[str, Any]
) -> Call[wire.LoadResponse]:
    """``POST /models/{id}/load``."""
    payload = to_json(body_of(wire.LoadRequest, body, fields))
    return Call(
        "POST", f"/ai/models/{_segment(model_id)}/load", parser(wire.LoadResponse), json=payload
    )


def model_unload(model_id: str) -> Call[wire.UnloadResponse]:
    """``POST /models/{id}/unload``."""
    return Call("POST", f"/ai/models/{_segment(model_id)}/unload", parser(wire.UnloadResponse))


def completion(
    body: CompletionInput,
    fields: Mapping[str, Any],
    *,
    stream: bool = False,
    background: bool = False,
    headers: Mapping[str, str] | None = None,
) -> Call[Any]:
    """``POST /inference/completion`` (plain, streamed or as a job)."""
    request = body_of(wire.CompletionRequestBody, body, fields)
    if stream and background:
        raise ValueError("a completion is either streamed or run in the background, not both")
    if stream or background:
        request = _with_options(request, {"stream": True} if stream else {"async": True})
    if request.options.async_:
        return Call(
            "POST",
            "/ai/inference/completion",
            parser(wire.JobAccepted),
            json=to_json(request),
            headers=headers,
        )
    return Call(
        "POST",
        "/ai/inference/completion",
        parser(wire.CompletionResponse),
        json=to_json(request),
        headers=headers,
        stream=request.options.stream,
    )


def generation(body: GenerationInput, fields: Mapping[str, Any], background: bool) -> Call[Any]:
    """``POST /inference/generation``."""
    request = body_of(wire.GenerationRequestBody, body, fields)
    if background:
        request = _with_options(request, {"async": True})
    cast = parser(wire.JobAccepted) if request.options.async_ else parser(wire.GenerationResponse)
    return Call("POST", "/ai/inference/generation", cast, json=to_json(request))


def refactor(body: RefactorInput, fields: Mapping[str, Any], background: bool) -> Call[Any]:
    """``POST /inference/refactor``."""
    request = body_of(wire.RefactorRequestBody, body, fields)
    if background:
        request = _with_options(request, {"async": True})
    cast = parser(wire.JobAccepted) if request.options.async_ else parser(wire.RefactorResponse)
    return Call("POST", "/ai/inference/refactor", cast, json=to_json(request))


def orchestration(
    body: OrchestrationInput, fields: Mapping[str, Any]
) -> Call[wire.OrchestrationResponse]:
    """``POST /orchestration/inference``."""
    request = body_of(wire.OrchestrationRequestBody, body, fields)
    return Call(
        "POST",
        "/ai/orchestration/inference",
        parser(wire.OrchestrationResponse),
        json=to_json(request),
    )


def batch(
    body: BatchInput, fields: Mapping[str, Any], background: bool
) -> Call[wire.BatchResponse]:
    """``POST /batch/inference``."""
    request = body_of(wire.BatchRequestBody, body, fields)
    if background:
        request = _with_options(request, {"async": True})
    return Call("POST", "/ai/batch/inference", parser(wire.BatchResponse), json=to_json(request))


def batch_get(batch_id: str) -> Call[wire.BatchResponse]:
    """``GET /batch/{id}``."""
    return Call("GET", f"/ai/batch/{_segment(batch_id)}", parser(wire.BatchResponse))


def job_get(job_id: str) -> Call[wire.JobStatusResponse]:
    """``GET /jobs/{id}``."""
    return Call("GET", f"/ai/jobs/{_segment(job_id)}", parser(wire.JobStatusResponse))


def metrics(model_id: str, start: str | None, end: str | None) -> Call[wire.ModelMetricsResponse]:
    """``GET /monitoring/models/{id}/metrics``."""
    return Call(
        "GET",
        f"/ai/monitoring/models/{_segment(model_id)}/metrics",
        parser(wire.ModelMetricsResponse),
        params=query(start=start, end=end),
    )


def prometheus() -> Call[str]:
    """``GET /monitoring/prometheus`` (text)."""
    return Call("GET", "/ai/monitoring/prometheus", str, text=True)


def health() -> Call[wire.HealthResponse]:
    """``GET /health``."""
    return Call("GET", "/ai/health", parser(wire.HealthResponse))


def webhook_create(body: WebhookInput, fields: Mapping[str, Any]) -> Call[wire.WebhookEntry]:
    """``POST /webhooks/ai-events``."""
    request = body_of(wire.CreateWebhook, body, fields)
    return Call("POST", "/ai/webhooks/ai-events", parser(wire.WebhookEntry), json=to_json(request))


def webhook_list(limit: int | None, offset: int | None) -> Call[wire.WebhookList]:
    """``GET /webhooks/ai-events``."""
    return Call(
        "GET",
        "/ai/webhooks/ai-events",
        parser(wire.WebhookList),
        params=query(limit=limit, offset=offset),
    )


def webhook_get(webhook_id: str) -> Call[wire.WebhookEntry]:
    """``GET /webhooks/ai-events/{id}``."""
    return Call("GET", f"/ai/webhooks/ai-events/{_segment(webhook_id)}", parser(wire.WebhookEntry))


def webhook_delete(webhook_id: str) -> Call[None]:
    """``DELETE /webhooks/ai-events/{id}``."""
    return Call("DELETE", f"/ai/webhooks/ai-events/{_segment(webhook_id)}", lambda _: None)


def webhook_deliveries(
    webhook_id: str, status: str | None, limit: int | None, offset: int | None
) -> Call[wire.DeliveryList]:
    """``GET /webhooks/ai-events/{id}/deliveries``."""
    return Call(
        "GET",
        f"/ai/webhooks/ai-events/{_segment(webhook_id)}/deliveries",
        parser(wire.DeliveryList),
        params=query(status=status, limit=limit, offset=offset),
    )


def webhook_redeliver(webhook_id: str, delivery_id: str) -> Call[wire.DeliveryEntry]:
    """``POST /webhooks/ai-events/{id}/deliveries/{delivery_id}/redeliver``."""
    return Call(
        "POST",
        f"/ai/webhooks/ai-events/{_segment(webhook_id)}/deliveries/{_segment(delivery_id)}"
        "/redeliver",
        parser(wire.DeliveryEntry),
    )
