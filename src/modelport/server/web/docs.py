"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from the package's own copies of their
files, so that the API's documentation opens on a machine without a network."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.responses import HTMLResponse

from modelport.server.web.render import static_url

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

OAUTH2_REDIRECT = "/docs/oauth2-redirect"

#: The docs may load and call only this server: ReDoc's sidebar shows a logo from its CDN,
#: which the browser then refuses without asking the network (the logo hides itself).
#: FastAPI's pages start the viewers with an inline script; ReDoc searches in a worker.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


def _offline(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    return response


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for this server's OpenAPI document."""
    return _offline(
        get_swagger_ui_html(
            openapi_url=request.app.openapi_url or "/openapi.json",
            title=f"{request.app.title} - Swagger UI",
            swagger_js_url=static_url("vendor/swagger-ui-bundle.js"),
            swagger_css_url=static_url("vendor/swagger-ui.css"),
            swagger_favicon_url=static_url("favicon.svg"),
            oauth2_redirect_url=OAUTH2_REDIRECT,
            # No badge fetched from validator.swagger.io: nothing leaves the machine.
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get(OAUTH2_REDIRECT)
def swagger_ui_redirect() -> HTMLResponse:
    """Swagger UI's OAuth2 redirect page."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc for this server's OpenAPI document."""
    return _offline(
        get_redoc_html(
            openapi_url=request.app.openapi_url or "/openapi.json",
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=static_url("vendor/redoc.standalone.js"),
            redoc_favicon_url=static_url("favicon.svg"),
            with_google_fonts=False,
        )
    )
