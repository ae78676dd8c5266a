"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request

from engine.engine import Engine
from engine.errors import ModelNotFoundError
from engine.models.catalog import MODEL_ID_PATTERN
from services.composition import Services

_MODEL_ID = re.compile(MODEL_ID_PATTERN)


@dataclass(frozen=True)
class Caller:
    """Who made a request: the owner of its jobs, batches and webhooks."""

    id: str  # "key:<key id>" for API keys, "jwt:<sub>" for tokens
    kind: Literal["api_key", "jwt"]


async def get_engine(request: Request) -> Engine:
    """The engine this app was created with."""
    engine: Engine = request.app.state.engine
    return engine


async def get_services(request: Request) -> Services:
    """The services this app was created with."""
    services: Services = request.app.state.services
    return services


async def get_caller(request: Request) -> Caller:
    """The authenticated caller (set by the auth dependency on every route)."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        raise RuntimeError("route is missing the authentication dependency")
    return caller


# The getters are coroutines so that FastAPI calls them on the event loop: a
# plain function dependency goes through its thread pool, a hop per
# dependency on every request.
EngineDep = Annotated[Engine, Depends(get_engine)]
ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]


def checked_model_id(engine: Engine, model_id: str | None) -> str:
    """A client's model id, or the completion model when it names none.

    Anything path-like is simply not a known model (404).
    """
    if model_id is None:
        return engine.resolve_model(None)
    if not _MODEL_ID.match(model_id) or model_id not in engine.model_ids():
        if _MODEL_ID.match(model_id):
            raise engine.not_found(model_id)
        raise ModelNotFoundError(
            "Requested model is not available",
            {"available_models": engine.model_ids()},
        )
    return model_id
