// One exception class per error code of the API, each carrying the envelope.
import type { components } from './generated/openapi.js';

export type ErrorCode = components['schemas']['ErrorCode'];
export type ErrorEnvelope = components['schemas']['ErrorEnvelope'];
export type ErrorBody = components['schemas']['ErrorBody'];

/** Anything this SDK throws on purpose. */
export class AIIDEError extends Error {
  override name = 'AIIDEError';
}

/** The server could not be reached, or the connection broke. */
export class APIConnectionError extends AIIDEError {
  override name = 'APIConnectionError';
}

/** The request ran past its timeout. */
export class APITimeoutError extends APIConnectionError {
  override name = 'APITimeoutError';
}

/** A stream closed before its `done` event. */
export class StreamEndedError extends AIIDEError {
  override name = 'StreamEndedError';
}

/** The server answered with an error envelope. */
export class APIStatusError extends AIIDEError {
  override name = 'APIStatusError';
  readonly status: number;
  readonly envelope: ErrorEnvelope;
  /** The server's `Retry-After`, in seconds, if it sent one. */
  readonly retryAfter: number | undefined;

  constructor(status: number, envelope: ErrorEnvelope, retryAfter?: number) {
    super(`${status} ${envelope.error.code}: ${envelope.error.message}`);
    this.status = status;
    this.envelope = envelope;
    this.retryAfter = retryAfter;
  }

  /** The stable error code, e.g. `MODEL_NOT_FOUND`. */
  get code(): string {
    return this.envelope.error.code;
  }

  /** Code-specific facts (`field`, `retry_after_seconds`, ...). */
  get details(): Record<string, unknown> {
    return this.envelope.error.details ?? {};
  }

  /** The server's id of the failed request (also in `X-Request-ID`). */
  get requestId(): string {
    return this.envelope.error.request_id;
  }
}

// Families, then one class per code (the same tree as the Python SDK).
export class BadRequestError extends APIStatusError { override name = 'BadRequestError'; }
export class InvalidRequestError extends BadRequestError { override name = 'InvalidRequestError'; }
export class ContextLengthExceededError extends BadRequestError { override name = 'ContextLengthExceededError'; }
export class UnsupportedLanguageError extends BadRequestError { override name = 'UnsupportedLanguageError'; }
export class UnauthorizedError extends APIStatusError { override name = 'UnauthorizedError'; }
export class ForbiddenError extends APIStatusError { override name = 'ForbiddenError'; }
export class NotFoundError extends APIStatusError { override name = 'NotFoundError'; }
export class ModelNotFoundError extends NotFoundError { override name = 'ModelNotFoundError'; }
export class MethodNotAllowedError extends APIStatusError { override name = 'MethodNotAllowedError'; }
export class NotAcceptableError extends APIStatusError { override name = 'NotAcceptableError'; }
export class RequestTimeoutError extends APIStatusError { override name = 'RequestTimeoutError'; }
export class ConflictError extends APIStatusError { override name = 'ConflictError'; }
export class ModelNotLoadedError extends ConflictError { override name = 'ModelNotLoadedError'; }
export class ModelBusyError extends ConflictError { override name = 'ModelBusyError'; }
export class PayloadTooLargeError extends APIStatusError { override name = 'PayloadTooLargeError'; }
export class UnsupportedMediaTypeError extends APIStatusError { override name = 'UnsupportedMediaTypeError'; }
export class UnprocessableError extends APIStatusError { override name = 'UnprocessableError'; }
export class RequestValidationError extends UnprocessableError { override name = 'RequestValidationError'; }
export class RefactorNotApplicableError extends UnprocessableError { override name = 'RefactorNotApplicableError'; }
export class RateLimitError extends APIStatusError { override name = 'RateLimitError'; }
export class HeadersTooLargeError extends APIStatusError { override name = 'HeadersTooLargeError'; }
export class RequestCancelledError extends APIStatusError { override name = 'RequestCancelledError'; }
export class InternalServerError extends APIStatusError { override name = 'InternalServerError'; }
export class InferenceFailedError extends InternalServerError { override name = 'InferenceFailedError'; }
export class ServiceUnavailableError extends InternalServerError { override name = 'ServiceUnavailableError'; }
export class ModelCrashedError extends ServiceUnavailableError { override name = 'ModelCrashedError'; }
export class ModelLoadingError extends ServiceUnavailableError { override name = 'ModelLoadingError'; }
export class ModelLoadFailedError extends ServiceUnavailableError { override name = 'ModelLoadFailedError'; }
export class QueueFullError extends ServiceUnavailableError { override name = 'QueueFullError'; }
export class InferenceTimeoutError extends InternalServerError { override name = 'InferenceTimeoutError'; }

type StatusErrorClass = new (status: number, envelope: ErrorEnvelope, retryAfter?: number) => APIStatusError;

/**
 * The class of each code. Typed by the generated `ErrorCode`, so a code added
 * to the contract fails the build until it has its class.
 */
export const ERROR_CLASSES: Record<ErrorCode, StatusErrorClass> = {
  VALIDATION_ERROR: RequestValidationError,
  BAD_REQUEST: BadRequestError,
  INVALID_REQUEST: InvalidRequestError,
  CONTEXT_LENGTH_EXCEEDED: ContextLengthExceededError,
  UNSUPPORTED_LANGUAGE: UnsupportedLanguageError,
  UNAUTHORIZED: UnauthorizedError,
  FORBIDDEN: ForbiddenError,
  MODEL_NOT_FOUND: ModelNotFoundError,
  NOT_FOUND: NotFoundError,
  METHOD_NOT_ALLOWED: MethodNotAllowedError,
  NOT_ACCEPTABLE: NotAcceptableError,
  REQUEST_TIMEOUT: RequestTimeoutError,
  MODEL_NOT_LOADED: ModelNotLoadedError,
  MODEL_BUSY: ModelBusyError,
  CONFLICT: ConflictError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  UNSUPPORTED_MEDIA_TYPE: UnsupportedMediaTypeError,
  REFACTOR_NOT_APPLICABLE: RefactorNotApplicableError,
  RATE_LIMIT_EXCEEDED: RateLimitError,
  HEADERS_TOO_LARGE: HeadersTooLargeError,
  REQUEST_CANCELLED: RequestCancelledError,
  INTERNAL_ERROR: InternalServerError,
  INFERENCE_FAILED: InferenceFailedError,
  MODEL_CRASHED: ModelCrashedError,
  MODEL_LOADING: ModelLoadingError,
  MODEL_LOAD_FAILED: ModelLoadFailedError,
  QUEUE_FULL: QueueFullError,
  SERVICE_UNAVAILABLE: ServiceUnavailableError,
  INFERENCE_TIMEOUT: InferenceTimeoutError,
};

const BY_STATUS: Record<number, StatusErrorClass> = {
  400: BadRequestError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  409: ConflictError,
  422: UnprocessableError,
  429: RateLimitError,
  503: ServiceUnavailableError,
};

/** The exception for an error answer: by code, else by status family. */
export function errorFor(status: number, envelope: ErrorEnvelope, retryAfter?: number): APIStatusError {
  const byCode = (ERROR_CLASSES as Record<string, StatusErrorClass | undefined>)[envelope.error.code];
  const cls = byCode ?? BY_STATUS[status] ?? (status >= 500 ? InternalServerError : APIStatusError);
  return new cls(status, envelope, retryAfter);
}
