"""Forms that change something (a key set, a model pulled or removed) must come from this
server's own pages, not from another site that makes the browser post to it.

Two checks, both needed to pass: the request carries the token this browser's pages hold (a
random value kept in a ``SameSite=Strict`` cookie and written into each page; another site
can neither read it nor make the browser send the cookie with its post), and the browser
says the request is not cross-site (``Origin`` and ``Sec-Fetch-Site``). A server without an
API key needs this most: there, no session stands between another site and the forms.
"""

from __future__ import annotations

import hmac
import re
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["COOKIE", "FIELD", "HEADER", "from_this_site", "issue", "new_token", "token_of"]

COOKIE = "modelport_csrf"
FIELD = "csrf"
HEADER = "x-csrf-token"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")


def token_of(request: Request) -> str | None:
    """The token this browser holds, if it holds a well-formed one."""
    value = request.cookies.get(COOKIE, "")
    return value if _TOKEN.fullmatch(value) else None


def issue(request: Request, response: Response, token: str) -> None:
    """Give the browser ``token`` (when it does not hold it already)."""
    if token_of(request) == token:
        return
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def new_token() -> str:
    """A fresh token."""
    return secrets.token_urlsafe(32)


def from_this_site(request: Request, submitted: str | None) -> bool:
    """Whether a state-changing request came from this server's own pages."""
    held = token_of(request)
    if held is None or not submitted:
        return False
    if not hmac.compare_digest(held.encode(), submitted.strip().encode()):
        return False
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is not None:
        # Behind a proxy the scheme may differ (TLS ends there); the host may not.
        host = request.headers.get("host", "")
        if origin == "null" or urlsplit(origin).netloc != host:
            return False
    return True
