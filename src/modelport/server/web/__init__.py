"""The web UI (``/ui``) and the API docs (``/docs``, ``/redoc``): server-rendered pages over
the same use-cases the registry API answers with, and every file they need shipped inside
the package, so that they work on a machine without a network."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request

    from modelport.server.security import Sessions

__all__ = ["HOME", "install", "wants_page"]

#: Where a browser opening the server lands.
HOME = "/ui/models"


def wants_page(request: Request) -> bool:
    """Whether the request comes from a browser asking for a page (it accepts HTML)."""
    return "text/html" in request.headers.get("accept", "")


def install(app: FastAPI, *, sessions: Sessions | None) -> None:
    """Add the UI's pages, its static files, the sign-in form and the docs to ``app``."""
    from starlette.staticfiles import StaticFiles

    from modelport.server.web import auth, docs, pages
    from modelport.server.web.render import STATIC

    app.state.sessions = sessions
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.include_router(pages.router)
    app.include_router(auth.router)
    app.include_router(docs.router)
