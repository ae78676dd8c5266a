"""Typed engine errors.

Every failure the engine reports is an :class:`EngineError` with a stable
``code``. Each face maps them once: the REST sidecar to the documented JSON
error envelope (using ``http_status``), the language server to JSON-RPC errors
or ``window/showMessage``. Messages never contain absolute paths or stack traces.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Base class: a stable error code, an HTTP status and structured details."""

    code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class InvalidRequestError(EngineError):
    """The request is well-formed JSON but a field is out of range or unusable."""

    code = "INVALID_REQUEST"
    http_status = 400

    def __init__(self, field: str, message: str, **details: Any) -> None:
        super().__init__(message, {"field": field, **details})
        self.field = field


class ContextLengthExceededError(InvalidRequestError):
    """The prompt does not fit the model's context window."""

    code = "CONTEXT_LENGTH_EXCEEDED"


class ModelNotFoundError(EngineError):
    """No catalog entry has this id."""

    code = "MODEL_NOT_FOUND"
    http_status = 404


class ModelLoadFailedError(EngineError):
    """llama.cpp could not load the model (missing, corrupt or too large file)."""

    code = "MODEL_LOAD_FAILED"
    http_status = 503


class ModelLoadingError(EngineError):
    """The model is being loaded; the client should retry later."""

    code = "MODEL_LOADING"
    http_status = 503

    def __init__(self, model_id: str, retry_after_seconds: int) -> None:
        super().__init__(
            f"Model '{model_id}' is loading; retry in about {retry_after_seconds} s",
            {"model_id": model_id, "retry_after_seconds": retry_after_seconds},
        )
        self.retry_after_seconds = retry_after_seconds


class ModelNotLoadedError(EngineError):
    """The model exists but is not loaded and automatic loading is off."""

    code = "MODEL_NOT_LOADED"
    http_status = 409


class ModelBusyError(EngineError):
    """The model is serving requests and cannot be unloaded or reloaded now."""

    code = "MODEL_BUSY"
    http_status = 409


class QueueFullError(EngineError):
    """A bounded queue refused more work."""

    code = "QUEUE_FULL"
    http_status = 503


class ModelCrashedError(EngineError):
    """The model's runner died (native abort, out of memory, killed) during the request."""

    code = "MODEL_CRASHED"
    http_status = 503


class InferenceTimeoutError(EngineError):
    """Generation did not finish within the allowed time."""

    code = "INFERENCE_TIMEOUT"
    http_status = 504


class InferenceFailedError(EngineError):
    """llama.cpp failed while decoding; the model keeps serving other requests."""

    code = "INFERENCE_FAILED"
    http_status = 500


class RequestCancelledError(EngineError):
    """The caller cancelled the request (LSP ``$/cancelRequest``, HTTP disconnect)."""

    code = "REQUEST_CANCELLED"
    http_status = 499


class RefactorNotApplicableError(EngineError):
    """The selection does not fit the refactoring (e.g. not an expression)."""

    code = "REFACTOR_NOT_APPLICABLE"
    http_status = 422


class UnsupportedLanguageError(EngineError):
    """No tree-sitter grammar is available for the language."""

    code = "UNSUPPORTED_LANGUAGE"
    http_status = 400


class NotFoundError(EngineError):
    """A job, batch, webhook or other resource does not exist for this caller."""

    code = "NOT_FOUND"
    http_status = 404


class RemoteEngineError(EngineError):
    """A remote inference engine (llama-server, vLLM) is unreachable, timed out or failed."""

    code = "SERVICE_UNAVAILABLE"
    http_status = 503


class ModelManagedRemotelyError(EngineError):
    """The model's remote engine loads and unloads it; this server cannot."""

    code = "CONFLICT"
    http_status = 409
