"""One error shape for the whole API: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from hilo.channels.base import WebhookError
from hilo.db.encryption import SecretsUnreadable
from hilo.errors import ActionError, secrets_unreadable
from hilo.i18n import N_, gettext, negotiate

log = logging.getLogger("hilo.api")

HTTP_CODES = {
    401: ("not_authenticated", N_("Sign in first.")),
    403: ("forbidden", N_("You are not allowed to do this.")),
    404: ("not_found", N_("Not found.")),
    405: ("method_not_allowed", N_("This method is not allowed here.")),
    413: ("body_too_large", N_("The request body is too large.")),
    429: ("rate_limited", N_("Too many requests; wait a moment and try again.")),
}


def request_locale(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return str(principal.locale)
    return negotiate(request.headers.get("accept-language"))


def error_content(request: Request, code: str, reason: str, **extra: Any) -> dict[str, Any]:
    """Return the error body, its message in the caller's language."""
    message = gettext(reason, request_locale(request), **{k: v for k, v in extra.items() if k != "details"})
    body: dict[str, Any] = {"code": code, "message": message}
    if "details" in extra:
        body["details"] = extra["details"]
    return {"error": body}


def error_response(
    request: Request, status: int, code: str, reason: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(error_content(request, code, reason, **extra), status_code=status, headers=headers)


def log_webhook_refused(request: Request, exc: WebhookError) -> None:
    log.warning("webhook refused: %s %s %s", request.url.path, exc.code, exc.message)


def install(app: FastAPI) -> None:
    @app.exception_handler(ActionError)
    async def _action(request: Request, exc: ActionError) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        return error_response(request, exc.status, exc.code, exc.reason, headers=headers, **exc.values)

    @app.exception_handler(SecretsUnreadable)
    async def _secrets(request: Request, exc: SecretsUnreadable) -> JSONResponse:
        log.error("%s %s: %s", request.method, request.url.path, exc)
        error = secrets_unreadable()
        return error_response(request, error.status, error.code, error.reason)

    @app.exception_handler(WebhookError)
    async def _webhook(request: Request, exc: WebhookError) -> JSONResponse:
        log_webhook_refused(request, exc)
        return error_response(request, exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"), "problem": err.get("msg")}
            for err in exc.errors()
        ]
        return error_response(
            request, 422, "payload_invalid", N_("Some fields are missing or not valid."), details=details
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code, reason = HTTP_CODES.get(exc.status_code, ("http_error", N_("The request could not be handled.")))
        if isinstance(exc.detail, dict) and "code" in exc.detail:
            code, reason = exc.detail["code"], exc.detail.get("reason", reason)
        return error_response(request, exc.status_code, code, reason, headers=getattr(exc, "headers", None))
