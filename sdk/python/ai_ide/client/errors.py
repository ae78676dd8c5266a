"""The SDK's exceptions: one class per error code, each carrying the envelope.

``APIStatusError`` is the base of every error answer; catch a subclass
(``RateLimitError``, ``ModelNotFoundError``, ...) for one code, or a family
(``NotFoundError`` covers ``MODEL_NOT_FOUND`` too). A code this SDK does not
know yet still raises ``APIStatusError`` with the envelope.
"""

from __future__ import annotations

from typing import Any

from ai_ide.wire import ErrorBody, ErrorEnvelope


class AIIDEError(Exception):
    """Anything this SDK raises on purpose."""


class APIConnectionError(AIIDEError):
    """The server could not be reached, or the connection broke."""


class APITimeoutError(APIConnectionError):
    """The request ran past its timeout."""


class StreamEndedError(AIIDEError):
    """A stream closed before its ``done`` event."""


class APIStatusError(AIIDEError):
    """The server answered with an error envelope.

    ``status_code``, ``code``, ``message``, ``details``, ``request_id`` and
    the whole ``envelope`` are attributes; ``retry_after`` is the server's
    ``Retry-After`` in seconds, if it sent one.
    """

    code_name: str | None = None  # the code this class stands for

    def __init__(
        self, status_code: int, envelope: ErrorEnvelope, retry_after: float | None = None
    ) -> None:
        self.status_code = status_code
        self.envelope = envelope
        self.retry_after = retry_after
        super().__init__(f"{status_code} {envelope.error.code}: {envelope.error.message}")

    @property
    def error(self) -> ErrorBody:
        """The envelope's ``error`` object."""
        return self.envelope.error

    @property
    def code(self) -> str:
        """The stable error code, e.g. ``MODEL_NOT_FOUND``."""
        return self.envelope.error.code

    @property
    def message(self) -> str:
        """What went wrong and what to fix."""
        return self.envelope.error.message

    @property
    def details(self) -> dict[str, Any]:
        """Code-specific facts (``field``, ``retry_after_seconds``, ...)."""
        return dict(self.envelope.error.details)

    @property
    def request_id(self) -> str:
        """The server's id of the failed request (also in ``X-Request-ID``)."""
        return self.envelope.error.request_id


# Families first, then one class per code (the README's error table).
class BadRequestError(APIStatusError):
    """400: the request cannot be used as sent."""

    code_name = "BAD_REQUEST"


class InvalidRequestError(BadRequestError):
    """400 INVALID_REQUEST: a value is unusable; ``details.field`` names it."""

    code_name = "INVALID_REQUEST"


class ContextLengthExceededError(BadRequestError):
    """400 CONTEXT_LENGTH_EXCEEDED: prompt plus max_tokens does not fit the model."""

    code_name = "CONTEXT_LENGTH_EXCEEDED"


class UnsupportedLanguageError(BadRequestError):
    """400 UNSUPPORTED_LANGUAGE: no grammar for the language."""

    code_name = "UNSUPPORTED_LANGUAGE"


class UnauthorizedError(APIStatusError):
    """401: missing, invalid, expired or revoked credentials (``details.reason``)."""

    code_name = "UNAUTHORIZED"


class ForbiddenError(APIStatusError):
    """403: valid credentials that may not do this."""

    code_name = "FORBIDDEN"


class NotFoundError(APIStatusError):
    """404: no such route, job, batch or webhook for this caller."""

    code_name = "NOT_FOUND"


class ModelNotFoundError(NotFoundError):
    """404 MODEL_NOT_FOUND: unknown model id; ``details.available_models`` lists them."""

    code_name = "MODEL_NOT_FOUND"


class MethodNotAllowedError(APIStatusError):
    """405: wrong HTTP method for the route."""

    code_name = "METHOD_NOT_ALLOWED"


class NotAcceptableError(APIStatusError):
    """406: the server cannot answer in an accepted media type."""

    code_name = "NOT_ACCEPTABLE"


class RequestTimeoutError(APIStatusError):
    """408: the body did not arrive in time."""

    code_name = "REQUEST_TIMEOUT"


class ConflictError(APIStatusError):
    """409: the model is not in a state that allows this."""

    code_name = "CONFLICT"


class ModelNotLoadedError(ConflictError):
    """409 MODEL_NOT_LOADED."""

    code_name = "MODEL_NOT_LOADED"


class ModelBusyError(ConflictError):
    """409 MODEL_BUSY: requests kept running past the unload grace period."""

    code_name = "MODEL_BUSY"


class PayloadTooLargeError(APIStatusError):
    """413: the body is over the server's limit."""

    code_name = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaTypeError(APIStatusError):
    """415: the body is not JSON."""

    code_name = "UNSUPPORTED_MEDIA_TYPE"


class UnprocessableError(APIStatusError):
    """422: the request is well-formed but cannot be carried out."""


class RequestValidationError(UnprocessableError):
    """422 VALIDATION_ERROR: a field is missing, mistyped or out of range (``details.field``)."""

    code_name = "VALIDATION_ERROR"


class RefactorNotApplicableError(UnprocessableError):
    """422 REFACTOR_NOT_APPLICABLE: the selection does not fit, or no candidate passed."""

    code_name = "REFACTOR_NOT_APPLICABLE"


class RateLimitError(APIStatusError):
    """429 RATE_LIMIT_EXCEEDED; ``retry_after`` says when to try again."""

    code_name = "RATE_LIMIT_EXCEEDED"


class HeadersTooLargeError(APIStatusError):
    """431: request headers over the server's limit."""

    code_name = "HEADERS_TOO_LARGE"


class RequestCancelledError(APIStatusError):
    """499: the request was cancelled."""

    code_name = "REQUEST_CANCELLED"


class InternalServerError(APIStatusError):
    """5xx: the server failed."""

    code_name = "INTERNAL_ERROR"


class InferenceFailedError(InternalServerError):
    """500 INFERENCE_FAILED: llama.cpp failed while decoding; the model keeps serving."""

    code_name = "INFERENCE_FAILED"


class ServiceUnavailableError(InternalServerError):
    """503: try again later (``retry_after``)."""

    code_name = "SERVICE_UNAVAILABLE"


class ModelCrashedError(ServiceUnavailableError):
    """503 MODEL_CRASHED: the model's runner died; it restarts by itself."""

    code_name = "MODEL_CRASHED"


class ModelLoadingError(ServiceUnavailableError):
    """503 MODEL_LOADING: the model is loading; ``retry_after`` is the estimate."""

    code_name = "MODEL_LOADING"


class ModelLoadFailedError(ServiceUnavailableError):
    """503 MODEL_LOAD_FAILED: the model's file is missing, corrupt or too large."""

    code_name = "MODEL_LOAD_FAILED"


class QueueFullError(ServiceUnavailableError):
    """503 QUEUE_FULL: the model's queue is full."""

    code_name = "QUEUE_FULL"


class InferenceTimeoutError(InternalServerError):
    """504 INFERENCE_TIMEOUT: generation passed its deadline."""

    code_name = "INFERENCE_TIMEOUT"


ERROR_CLASSES: dict[str, type[APIStatusError]] = {
    cls.code_name: cls
    for cls in (
        BadRequestError,
        InvalidRequestError,
        ContextLengthExceededError,
        UnsupportedLanguageError,
        UnauthorizedError,
        ForbiddenError,
        NotFoundError,
        ModelNotFoundError,
        MethodNotAllowedError,
        NotAcceptableError,
        RequestTimeoutError,
        ConflictError,
        ModelNotLoadedError,
        ModelBusyError,
        PayloadTooLargeError,
        UnsupportedMediaTypeError,
        RequestValidationError,
        RefactorNotApplicableError,
        RateLimitError,
        HeadersTooLargeError,
        RequestCancelledError,
        InternalServerError,
        InferenceFailedError,
        ServiceUnavailableError,
        ModelCrashedError,
        ModelLoadingError,
        ModelLoadFailedError,
        QueueFullError,
        InferenceTimeoutError,
    )
    if cls.code_name is not None
}


def error_for(
    status_code: int, envelope: ErrorEnvelope, retry_after: float | None = None
) -> APIStatusError:
    """The exception for an error answer: by code, else by status family."""
    cls = ERROR_CLASSES.get(envelope.error.code)
    if cls is None:
        cls = _BY_STATUS.get(status_code, APIStatusError)
        if cls is APIStatusError and status_code >= 500:
            cls = InternalServerError
    return cls(status_code, envelope, retry_after)


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}
