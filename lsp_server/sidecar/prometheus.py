"""Prometheus text exposition of the engine's counters and gauges."""

from __future__ import annotations

from collections.abc import Sequence

from engine.engine import Engine
from lsp_server.sidecar.ratelimit import RateLimiter, SharedRateLimiter
from services.composition import Services


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(
    engine: Engine,
    services: Services,
    limiter: RateLimiter | SharedRateLimiter | None = None,
) -> str:
    """Counters from the recorded inferences, live model and queue gauges, loop stalls."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: Sequence[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value:g}" if labels else f"{name} {value:g}")

    totals = services.metrics.totals()
    metric(
        "ai_ide_inferences_total",
        "counter",
        "Inferences recorded, by model and outcome.",
        [(f'{{model="{_label(t.model_id)}",outcome="success"}}', t.successes) for t in totals]
        + [(f'{{model="{_label(t.model_id)}",outcome="error"}}', t.failures) for t in totals],
    )
    metric(
        "ai_ide_inference_duration_milliseconds_sum",
        "counter",
        "Total measured inference time.",
        [(f'{{model="{_label(t.model_id)}"}}', t.duration_ms_sum) for t in totals],
    )
    metric(
        "ai_ide_cache_hits_total",
        "counter",
        "Inferences served from the completion cache.",
        [(f'{{model="{_label(t.model_id)}"}}', t.cache_hits) for t in totals],
    )
    metric(
        "ai_ide_tokens_total",
        "counter",
        "Prompt plus generated tokens.",
        [(f'{{model="{_label(t.model_id)}"}}', t.tokens) for t in totals],
    )
    views = engine.list_models()
    metric(
        "ai_ide_model_loaded",
        "gauge",
        "1 when the model is loaded.",
        [(f'{{model="{_label(v.spec.id)}"}}', 1.0 if v.status == "loaded" else 0.0) for v in views],
    )
    metric(
        "ai_ide_model_memory_megabytes",
        "gauge",
        "Measured memory of loaded models.",
        [
            (f'{{model="{_label(v.spec.id)}"}}', v.memory_usage_mb)
            for v in views
            if v.memory_usage_mb is not None
        ],
    )
    health = engine.health()
    metric(
        "ai_ide_active_requests", "gauge", "Requests decoding now.", [("", health.active_requests)]
    )
    metric(
        "ai_ide_queue_length", "gauge", "Requests waiting for a slot.", [("", health.queue_length)]
    )
    stats = engine.cache_stats()
    metric(
        "ai_ide_cache_lookups_total",
        "counter",
        "Completion cache lookups.",
        [('{result="hit"}', stats.hits), ('{result="miss"}', stats.misses)],
    )
    lag = services.loop_monitor.figures()
    metric(
        "ai_ide_event_loop_stalls_total",
        "counter",
        "Times the event loop was blocked for over 100 ms.",
        [("", lag.stalls)],
    )
    metric(
        "ai_ide_event_loop_lag_max_seconds",
        "gauge",
        "Longest event-loop delay measured since start.",
        [("", lag.max_lag_ms / 1000.0)],
    )
    if isinstance(limiter, SharedRateLimiter):
        metric(
            "ai_ide_rate_limit_fallbacks_total",
            "counter",
            "Requests this replica limited in its own memory because Redis failed.",
            [("", limiter.fallbacks)],
        )
    return "\n".join(lines) + "\n"
