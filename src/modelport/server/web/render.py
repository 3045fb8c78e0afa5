"""Rendering the UI's pages: the templates, the navigation, the static files' addresses, the
headers every page carries, and how numbers read (each with its unit)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.responses import HTMLResponse

from modelport import units as fmt

if TYPE_CHECKING:
    import jinja2
    from starlette.requests import Request

__all__ = [
    "NAV",
    "STATIC",
    "TEMPLATES",
    "NavItem",
    "fragment_requested",
    "page",
    "static_url",
]

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"


@dataclass(frozen=True)
class NavItem:
    """One page in the navigation."""

    key: str
    label: str
    href: str


#: The UI's pages in navigation order.
NAV: list[NavItem] = [
    NavItem("models", "Models", "/ui/models"),
    NavItem("compare", "Compare", "/ui/compare"),
    NavItem("store", "Store", "/ui/store"),
    NavItem("playground", "Playground", "/ui/playground"),
    NavItem("usage", "Usage", "/ui/usage"),
    NavItem("keys", "Keys", "/ui/keys"),
    NavItem("system", "System", "/ui/system"),
]

#: What a page may load: only this server's own files (no CDN, no inline script); styles
#: may be inline because htmx sets a few while it swaps.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages and htmx fragments share URLs: a cache must keep them apart.
    "Vary": "HX-Request, Cookie",
    "Cache-Control": "no-store",
}


@functools.cache
def static_url(path: str) -> str:
    """The address of a static file, with its content's digest so a browser never keeps
    a stale copy after an upgrade."""
    digest = hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:12]
    return f"/ui/static/{path}?v={digest}"


def fragment_requested(request: Request, target: str) -> bool:
    """Whether htmx asked for only the part of the page with id ``target``."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-target") == target
        and request.headers.get("hx-history-restore-request") != "true"
    )


@functools.cache
def environment() -> jinja2.Environment:
    """The templates, loaded once (jinja2 is imported only when a page is first asked for)."""
    import jinja2

    from modelport import __version__

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        params=fmt.params,
        tokens=fmt.tokens,
        size=fmt.size,
        price=fmt.price,
        millis=fmt.millis,
        age=fmt.age,
        money=fmt.usd,
        duration=_duration,
        usd=_usd,
        gb=_gb,
        number=_number,
    )
    env.globals.update(nav=NAV, static=static_url, version=__version__)
    return env


def page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page (or fragment) rendered from ``template``, with the UI's headers, and the token
    its forms send to show they come from this site (``csrf``)."""
    from modelport.server.web import csrf

    # A server that asked for a key has signed this browser in (or it shows the form).
    context.setdefault("signed_in", getattr(request.app.state, "sessions", None) is not None)
    token = csrf.token_of(request) or csrf.new_token()
    html = environment().get_template(template).render(request=request, csrf=token, **context)
    response = HTMLResponse(
        html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})}
    )
    csrf.issue(request, response, token)
    return response


def _usd(value: float | None) -> str:
    """A price in US dollars as published: ``2.5`` → ``$2.50``, ``0.0004`` → ``$0.0004``."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0 (free)"
    return f"${value:,.2f}" if value >= 0.1 else f"${value:.6g}"


def _gb(value: float | None) -> str:
    """Gigabytes: ``19.8`` → ``19.8 GB``."""
    return "unknown" if value is None else f"{value:,.3g} GB" if value < 100 else f"{value:,.0f} GB"


def _duration(seconds: int) -> str:
    """A whole number of seconds in its largest unit: ``3600`` → ``1 hour``."""
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds} seconds"


def _number(value: float | None) -> str:
    """A plain number without trailing zeros: ``1.0`` → ``1``."""
    return "unknown" if value is None else f"{value:g}"
