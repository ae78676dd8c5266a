"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

import re

from fastapi import Request

from engine.catalog import MODEL_ID_PATTERN
from engine.engine import Engine
from engine.errors import ModelNotFoundError

_MODEL_ID = re.compile(MODEL_ID_PATTERN)


def get_engine(request: Request) -> Engine:
    """The engine this app was created with."""
    engine: Engine = request.app.state.engine
    return engine


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
