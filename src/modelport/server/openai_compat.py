"""/v1: the OpenAI-compatible surface (models listing for now)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter

from modelport.catalog.entry import ModelEntry
from modelport.server.errors import error_responses

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"])


def openai_model(entry: ModelEntry) -> dict[str, Any]:
    """An entry in OpenAI's model object format."""
    created = 0
    if entry.release_date is not None:
        created = int(dt.datetime.combine(entry.release_date, dt.time(), dt.UTC).timestamp())
    return {"id": entry.id, "object": "model", "created": created, "owned_by": entry.provider}


@router.get("/models")
def list_models() -> dict[str, Any]:
    """Every catalog model, as OpenAI's ``GET /v1/models`` lists them."""
    from modelport.api import list_catalog

    return {"object": "list", "data": [openai_model(e) for e in list_catalog(sort="id").models]}


@router.get("/models/{model_id:path}", responses=error_responses(404, 422))
def get_model(model_id: str) -> dict[str, Any]:
    """One model by exact id, as OpenAI's ``GET /v1/models/{id}`` returns it."""
    from modelport.api import get_catalog

    return openai_model(get_catalog()[model_id])
