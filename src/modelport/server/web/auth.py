"""Signing in to the UI of a server that requires an API key: the key is asked for once,
checked, and answered with a session cookie (HttpOnly, so no script reads it); the key
itself is never stored in the browser nor written into a page."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from modelport.server.security import LOGIN_PATH, SESSION_COOKIE, Sessions
from modelport.server.web.render import page

__all__ = ["router", "safe_next"]

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this server, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/ui/models"
    return target


def _sessions(request: Request) -> Sessions | None:
    sessions: Sessions | None = getattr(request.app.state, "sessions", None)
    return sessions


@router.get(LOGIN_PATH)
def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form (a server without a key has none: straight to the UI)."""
    if _sessions(request) is None:
        return RedirectResponse(safe_next(next), status_code=303)
    return page(request, "login.html", next=safe_next(next), error=None, signed_in=False)


@router.post(LOGIN_PATH)
async def login(request: Request) -> Response:
    """Check the key; on success set the session cookie and go where the user was going."""
    sessions = _sessions(request)
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    target = safe_next(form.get("next"))
    if sessions is None:
        return RedirectResponse(target, status_code=303)
    if not sessions.key_matches(form.get("key", "")):
        return page(
            request,
            "login.html",
            status=401,
            next=target,
            error="That is not this server's API key.",
            signed_in=False,
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sessions.issue(),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/ui/logout")
def logout() -> Response:
    """End the session: the cookie is dropped and the sign-in form shown."""
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
