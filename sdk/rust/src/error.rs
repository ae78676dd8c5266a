//! Errors: an error answer carries its envelope and a typed [`ErrorCode`].

use std::fmt;

use crate::types::ErrorEnvelope;

/// The API's error codes, one variant each (`Other` for a code this SDK does not know yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    ValidationError,
    BadRequest,
    InvalidRequest,
    ContextLengthExceeded,
    UnsupportedLanguage,
    Unauthorized,
    Forbidden,
    ModelNotFound,
    NotFound,
    MethodNotAllowed,
    NotAcceptable,
    RequestTimeout,
    ModelNotLoaded,
    ModelBusy,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RefactorNotApplicable,
    RateLimitExceeded,
    HeadersTooLarge,
    RequestCancelled,
    InternalError,
    InferenceFailed,
    ModelCrashed,
    ModelLoading,
    ModelLoadFailed,
    QueueFull,
    ServiceUnavailable,
    InferenceTimeout,
    Other(String),
}

impl ErrorCode {
    /// The code of an envelope's `error.code`.
    pub fn parse(code: &str) -> ErrorCode {
        use ErrorCode::*;
        match code {
            "VALIDATION_ERROR" => ValidationError,
            "BAD_REQUEST" => BadRequest,
            "INVALID_REQUEST" => InvalidRequest,
            "CONTEXT_LENGTH_EXCEEDED" => ContextLengthExceeded,
            "UNSUPPORTED_LANGUAGE" => UnsupportedLanguage,
            "UNAUTHORIZED" => Unauthorized,
            "FORBIDDEN" => Forbidden,
            "MODEL_NOT_FOUND" => ModelNotFound,
            "NOT_FOUND" => NotFound,
            "METHOD_NOT_ALLOWED" => MethodNotAllowed,
            "NOT_ACCEPTABLE" => NotAcceptable,
            "REQUEST_TIMEOUT" => RequestTimeout,
            "MODEL_NOT_LOADED" => ModelNotLoaded,
            "MODEL_BUSY" => ModelBusy,
            "CONFLICT" => Conflict,
            "PAYLOAD_TOO_LARGE" => PayloadTooLarge,
            "UNSUPPORTED_MEDIA_TYPE" => UnsupportedMediaType,
            "REFACTOR_NOT_APPLICABLE" => RefactorNotApplicable,
            "RATE_LIMIT_EXCEEDED" => RateLimitExceeded,
            "HEADERS_TOO_LARGE" => HeadersTooLarge,
            "REQUEST_CANCELLED" => RequestCancelled,
            "INTERNAL_ERROR" => InternalError,
            "INFERENCE_FAILED" => InferenceFailed,
            "MODEL_CRASHED" => ModelCrashed,
            "MODEL_LOADING" => ModelLoading,
            "MODEL_LOAD_FAILED" => ModelLoadFailed,
            "QUEUE_FULL" => QueueFull,
            "SERVICE_UNAVAILABLE" => ServiceUnavailable,
            "INFERENCE_TIMEOUT" => InferenceTimeout,
            other => Other(other.to_string()),
        }
    }
}

/// An error answer: the HTTP status, the envelope, and `Retry-After` if sent.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub code: ErrorCode,
    pub envelope: ErrorEnvelope,
    /// The server's `Retry-After`, in seconds.
    pub retry_after: Option<f64>,
}

impl ApiError {
    /// What went wrong and what to fix.
    pub fn message(&self) -> &str {
        &self.envelope.error.message
    }

    /// Code-specific facts (`field`, `retry_after_seconds`, ...).
    pub fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        self.envelope.error.details.clone().unwrap_or_default()
    }

    /// The server's id of the failed request.
    pub fn request_id(&self) -> &str {
        &self.envelope.error.request_id
    }
}

/// Everything this SDK returns as an error.
#[derive(Debug)]
pub enum Error {
    /// The server answered with an error envelope.
    Api(ApiError),
    /// The server could not be reached, or the connection broke.
    Connection(String),
    /// No answer (or, in a stream, no event) within the timeout.
    Timeout(String),
    /// A stream ended before its `done` event.
    StreamEnded,
    /// An answer that does not fit the contract.
    Decode(String),
    /// A job or batch did not finish within the wait.
    WaitTimeout(String),
}

impl Error {
    /// The API error, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(error) => Some(error),
            _ => None,
        }
    }

    /// The error code, if the server answered with one.
    pub fn code(&self) -> Option<&ErrorCode> {
        self.api().map(|e| &e.code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api(e) => write!(f, "{} {}: {}", e.status, e.envelope.error.code, e.message()),
            Error::Connection(m) => write!(f, "connection failed: {m}"),
            Error::Timeout(m) => write!(f, "timed out: {m}"),
            Error::StreamEnded => write!(f, "the stream ended without a done event"),
            Error::Decode(m) => write!(f, "unexpected answer: {m}"),
            Error::WaitTimeout(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}
