"""What the routers share through the app: the model pool, the metrics, the request's model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:
    from modelport.server.pool import ModelPool

__all__ = ["pool_of", "record_model"]


def pool_of(request: Request) -> ModelPool:
    """The app's model pool."""
    pool: ModelPool = request.app.state.pool
    return pool


def record_model(request: Request, name: str) -> None:
    """Name the request's model in its access-log line."""
    request.state.model = name
