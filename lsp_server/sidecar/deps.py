"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from engine.catalog import MODEL_ID_PATTERN
from engine.engine import Engine
from engine.errors import ModelNotFoundError

_MODEL_ID = re.compile(MODEL_ID_PATTERN)


@dataclass(frozen=True)
class Caller:
    """Who made a request: the owner of its jobs, batches and webhooks."""

    id: str  # "key:<key id>" for API keys, "jwt:<sub>" for tokens
    kind: Literal["api_key", "jwt"]


def get_engine(request: Request) -> Engine:
    """The engine this app was created with."""
    engine: Engine = request.app.state.engine
    return engine


def get_caller(request: Request) -> Caller:
    """The authenticated caller (set by the auth dependency on every route)."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        raise RuntimeError("route is missing the authentication dependency")
    return caller


def checked_model_id(engine: Engine, model_id: str) -> str:
    """A model id from a URL: anything path-like is simply not a known model (404)."""
    if not _MODEL_ID.match(model_id) or model_id not in engine.catalog:
        if _MODEL_ID.match(model_id):
            raise engine.registry.not_found(model_id)
        raise ModelNotFoundError(
            "Requested model is not available",
            {"available_models": list(engine.catalog)},
        )
    return model_id
