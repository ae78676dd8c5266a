"""Engine errors as JSON-RPC errors (the LSP face's one mapping)."""

from __future__ import annotations

from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcRequestCancelled,
)

from engine.errors import EngineError, InvalidRequestError


def to_jsonrpc_error(exc: EngineError) -> JsonRpcException:
    """The JSON-RPC error for an engine error, keeping its code in ``data``."""
    data = {"code": exc.code, "details": exc.details}
    if exc.code == "REQUEST_CANCELLED":
        # Also what a request superseded by a newer one for the same document gets.
        return JsonRpcRequestCancelled(message=exc.message, data=data)
    if isinstance(exc, InvalidRequestError):
        return JsonRpcInvalidParams(message=exc.message, data=data)
    return JsonRpcInternalError(message=exc.message, data=data)
