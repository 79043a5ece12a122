"""The REST API's interactive documentation (Swagger UI), served from the package itself.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script, so it
is blank offline and under a Content-Security-Policy without 'unsafe-inline'. This page
uses the copy vendored under `static/vendor/` and a script file of ours that reads its
settings from the page.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from hilo.i18n import negotiate
from hilo.web.rendering import render_text

SWAGGER_UI = "vendor/swagger-ui-5.36.0"
# Swagger UI draws its icons from data: URIs and sets element styles from script (CSSOM,
# which style-src does not govern); it needs nothing from another origin and no eval.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


def install(app: FastAPI, url: str = "/api/docs") -> None:
    """Serve the API documentation page at `url` (FastAPI's own page is turned off)."""
    openapi_url = app.openapi_url or "/api/openapi.json"

    @app.get(url, include_in_schema=False)
    def api_docs(request: Request) -> HTMLResponse:
        locale = negotiate(request.headers.get("accept-language"))
        page = render_text("api_docs.html", locale, swagger_ui=SWAGGER_UI, openapi_url=openapi_url)
        return HTMLResponse(
            page,
            headers={
                "Content-Security-Policy": DOCS_CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
            },
        )
