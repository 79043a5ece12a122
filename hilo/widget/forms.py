"""Web forms: a hosted contact page per web-form channel, and the endpoint sites' own forms post to.

POST /forms/<public-token> takes urlencoded, multipart (with files) or JSON bodies. A
browser form is redirected back to its `redirect` URL (only on an allowed origin) or to
the hosted thank-you page; a client asking for JSON (Accept: application/json) gets JSON.
A filled honeypot field gets the same answer as a real submission, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import html
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import UploadFile

from hilo.channels.base import ChannelAccountView, InboundAttachment
from hilo.channels.webform import HONEYPOT, FieldRule, FormInvalid, WebformSettings, parse_submission
from hilo.channels.widget import origin_allowed
from hilo.errors import ActionError
from hilo.http.deps import client_ip
from hilo.i18n import N_, gettext, negotiate, normalize_locale
from hilo.runtime import Runtime
from hilo.widget.directory import Directory
from hilo.widget.inbound import submit
from hilo.widget.uploads import ACCEPT, check_file, parse_form, read_limited

router = APIRouter(include_in_schema=False)

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
# Submissions per minute from one address to one form; pages per minute from one address.
RATE_SUBMIT = 5
RATE_PAGE = 60
MAX_FILES = 3
# The hosted page runs no script; its only inline code is its own style sheet (the brand colour).
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; object-src 'none'"
# An allowed origin as a CSP source ("https://shop.example", "https://*.shop.example").
CSP_SOURCE = re.compile(r"https?://(\*\.)?[a-z0-9.-]+(:\d+)?")


def page_policy(settings: WebformSettings) -> str:
    """The hosted form's policy: it posts to Hilo, which sends the visitor back to an allowed site only.

    With no allowed origins the form sends nobody back and any site may embed it."""
    if not settings.allowed_origins:
        return f"{PAGE_POLICY}; form-action 'self'; frame-ancestors *"
    sites = " ".join(o for o in settings.allowed_origins if CSP_SOURCE.fullmatch(o))
    return f"{PAGE_POLICY}; form-action 'self' {sites}; frame-ancestors 'self' {sites}"


def _locale(request: Request, given: str | None = None) -> str:
    chosen = given or request.query_params.get("locale")
    return normalize_locale(chosen) if chosen else negotiate(request.headers.get("accept-language"))


def _account(request: Request, token: str) -> ChannelAccountView:
    directory: Directory = request.app.state.widget_directory
    return directory.get(token, "webform")


def _limit(request: Request, key: str, limit: int) -> None:
    """Count one request on `key` (for `def` endpoints, which run in a worker thread)."""
    if not request.app.state.limiter.hit(key, limit):
        raise ActionError("rate_limited", N_("Too many requests; wait a moment and try again."), 429)


async def _limit_async(request: Request, key: str, limit: int) -> None:
    """Count one request on `key` from the event loop."""
    if not await request.app.state.limiter.hit_async(key, limit):
        raise ActionError("rate_limited", N_("Too many requests; wait a moment and try again."), 429)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept or request.headers.get("content-type", "").startswith("application/json")


def _cors(request: Request, settings: WebformSettings) -> dict[str, str]:
    origin = request.headers.get("origin")
    if origin and origin_allowed(origin, settings.allowed_origins):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def _check_origin(request: Request, settings: WebformSettings) -> None:
    origin = request.headers.get("origin")
    if (
        origin
        and origin.rstrip("/").lower() != _own_origin(request)
        and not origin_allowed(origin, settings.allowed_origins)
    ):
        raise ActionError("origin_not_allowed", N_("This site is not allowed to use this form."), 403)


def _render(
    request: Request,
    account: ChannelAccountView,
    token: str,
    locale: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    sent: bool = False,
    status: int = 200,
) -> HTMLResponse:
    settings = WebformSettings.from_account(account)
    redirect = (values or {}).get("redirect") or request.query_params.get("redirect") or ""

    def translate(msgid: str, **placeholders: Any) -> str:
        return gettext(msgid, locale, **placeholders)

    page = _templates.get_template("form.html").render(
        _=translate,
        locale=locale,
        title=settings.text("title", locale),
        intro=settings.text("intro", locale),
        thanks=settings.text("thanks", locale),
        color=settings.color,
        phone=str(settings.phone),
        required=FieldRule.REQUIRED.value,
        off=FieldRule.OFF.value,
        values=values or {},
        errors={name: translate(reason) for name, reason in (errors or {}).items()},
        sent=sent,
        action=f"/forms/{token}",
        redirect=redirect[:2048],
        submission_id=secrets.token_urlsafe(16),
        honeypot=HONEYPOT,
        accept=ACCEPT,
    )
    return HTMLResponse(
        page, status, headers={"Content-Security-Policy": page_policy(settings), "Cache-Control": "no-store"}
    )


def _error_page(exc: ActionError, locale: str) -> HTMLResponse:
    message = html.escape(gettext(exc.reason, locale, **exc.values))
    page = (
        f'<!doctype html><html lang="{locale}"><meta charset="utf-8">'
        f'<title>{message}</title><p role="alert">{message}</p>'
    )
    return HTMLResponse(page, exc.status, headers={"Content-Security-Policy": f"{PAGE_POLICY}; form-action 'none'"})


@router.get("/forms/{token}")
def form_page(token: str, request: Request) -> Response:
    """The hosted contact form (and its thank-you page after a submission)."""
    locale = _locale(request)
    try:
        _limit(request, f"webform:page:{client_ip(request)}", RATE_PAGE)
        account = _account(request, token)
    except ActionError as exc:
        return _error_page(exc, locale)
    return _render(request, account, token, locale, sent=request.query_params.get("sent") == "1")


@router.options("/forms/{token}")
def form_preflight(token: str, request: Request) -> Response:
    """Let a site's script post JSON to the form from its own origin."""
    try:
        settings = WebformSettings.from_account(_account(request, token))
    except ActionError as exc:
        return Response(status_code=exc.status)
    headers = {
        **_cors(request, settings),
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "content-type, accept",
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)


async def _fields(request: Request, body: bytes, limit: int) -> tuple[dict[str, str], list[InboundAttachment]]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ActionError("payload_malformed", N_("The body is not valid JSON."), 400) from exc
        if not isinstance(document, dict):
            raise ActionError("payload_malformed", N_("The body is not valid JSON."), 400)
        fields = {str(k): str(v) for k, v in document.items() if isinstance(v, str | int | float)}
        return fields, []
    form = await parse_form(request, body, max_files=MAX_FILES)
    fields = {}
    attachments = []
    for name, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(name, value)
        elif isinstance(value, UploadFile) and value.filename:
            data = await value.read()
            if not data:
                continue
            kind, content_type = check_file(value.filename, value.content_type, data, limit)
            attachments.append(
                InboundAttachment(
                    kind=kind, content_type=content_type, filename=value.filename[-200:], size=len(data), data=data
                )
            )
    return fields, attachments


@router.post("/forms/{token}")
async def form_submit(token: str, request: Request) -> Response:
    """A submission: stored on the submitter's thread like any other channel's message."""
    runtime: Runtime = request.app.state.runtime
    as_json = _wants_json(request)
    locale = _locale(request)
    headers = {"Vary": "Origin"}
    account: ChannelAccountView | None = None
    try:
        account = await asyncio.to_thread(_account, request, token)
        settings = WebformSettings.from_account(account)
        # Known before any refusal, so a site's script can read every answer, 429 included.
        headers = _cors(request, settings)
        _check_origin(request, settings)
        await _limit_async(request, f"webform:submit:{account.id}:{client_ip(request)}", RATE_SUBMIT)
        limit = runtime.settings.max_upload_bytes
        body = await read_limited(request, limit)
        fields, attachments = await _fields(request, body, limit)
        locale = _locale(request, fields.get("locale") or None)
        submission = parse_submission(
            account,
            fields,
            region=runtime.settings.default_region,
            day=runtime.clock.now().date(),
            attachments=attachments,
        )
        if submission.message is not None:
            await submit(request.app, account, submission.message)
    except ActionError as exc:
        return _refused(exc, locale, headers, as_json)
    except FormInvalid as exc:
        if as_json:
            details = [{"field": name, "problem": gettext(reason, locale)} for name, reason in exc.errors.items()]
            message = gettext(N_("Some fields are missing or not valid."), locale)
            return JSONResponse(
                {"error": {"code": "form_invalid", "message": message, "details": details}}, 422, headers=headers
            )
        assert account is not None
        return _render(request, account, token, locale, values=exc.values, errors=exc.errors, status=422)
    if as_json:
        return JSONResponse({"ok": True}, 201, headers=headers)
    if submission.redirect:
        return RedirectResponse(submission.redirect, 303)
    return RedirectResponse(f"/forms/{quote(token)}?sent=1&locale={locale}", 303)


def _refused(exc: ActionError, locale: str, headers: dict[str, str], as_json: bool) -> Response:
    if as_json:
        message = gettext(exc.reason, locale, **exc.values)
        return JSONResponse({"error": {"code": exc.code, "message": message}}, exc.status, headers=headers)
    return _error_page(exc, locale)
