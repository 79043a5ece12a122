"""Public widget endpoints under /widget/<public-token>/: the script, its settings, the visitor
socket, uploads and files; plus `install(app)`, which also mounts the web forms."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from hilo import constant_time
from hilo.channels.base import ChannelAccountView, DeliveryStatus, InboundAttachment
from hilo.channels.widget import PrechatInvalid, WidgetSettings, localized, origin_allowed
from hilo.conversations.files import file_response
from hilo.conversations.models import Attachment, Message
from hilo.errors import ActionError, NotFound
from hilo.http.deps import client_ip
from hilo.i18n import N_, gettext, negotiate, normalize_locale
from hilo.runtime import Runtime
from hilo.widget import forms
from hilo.widget.actions import record_receipt
from hilo.widget.browsers import browser_summary
from hilo.widget.directory import Directory
from hilo.widget.history import conversation_scope, file_signature, identity_of
from hilo.widget.hours import config_fields
from hilo.widget.hub import VisitorSocket, WidgetHub
from hilo.widget.inbound import build_inbound, client_id_of, submit, text_of
from hilo.widget.strings import DEFAULT_GREETING, ui_strings
from hilo.widget.uploads import ACCEPT, check_file, parse_form, read_limited
from hilo.widget.visitors import Credentials, Visitor, authenticate

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).parent / "static"
# Requests per minute. Connections and messages count per visitor (many visitors may share
# an office's address); what costs a stranger nothing (new visitors, uploads) per address.
RATE_SCRIPT = 300
RATE_CONFIG = 120
RATE_NEW_VISITOR = 30
RATE_CONNECT = 30
RATE_MESSAGE = 30
RATE_UPLOAD = 10
RATE_UPLOAD_ADDRESS = 30
RATE_FILE = 300
HELLO_TIMEOUT = 15.0
MAX_FRAME = 20_000
TYPING_EVERY = 2.0


@dataclass(frozen=True)
class Bundle:
    body: bytes
    gzipped: bytes
    etag: str


@functools.cache
def bundle() -> Bundle:
    """The widget script with its style sheet inlined (one request, styles in the shadow root)."""
    script = (STATIC / "widget.js").read_text()
    css = (STATIC / "widget.css").read_text()
    body = script.replace('"__HILO_CSS__"', orjson.dumps(css).decode()).encode()
    return Bundle(body, gzip.compress(body, 9, mtime=0), '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def _locale(request: Request | WebSocket, given: str | None = None) -> str:
    chosen = given or request.query_params.get("locale")
    return normalize_locale(chosen) if chosen else negotiate(request.headers.get("accept-language"))


def cors(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    origin = request.headers.get("origin")
    if origin and origin_allowed(origin, allowed):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


def refusal(exc: ActionError, locale: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    message = gettext(exc.reason, locale, **exc.values)
    return JSONResponse({"error": {"code": exc.code, "message": message, **extra}}, exc.status, headers=headers)


def _limit(request: Request | WebSocket, key: str, limit: int) -> None:
    """Count one request on `key` (for `def` endpoints, which run in a worker thread)."""
    if not request.app.state.limiter.hit(key, limit):
        raise ActionError("rate_limited", N_("Too many requests; wait a moment and try again."), 429)


async def _limit_async(request: Request | WebSocket, key: str, limit: int) -> None:
    """Count one request on `key` from the event loop."""
    if not await request.app.state.limiter.hit_async(key, limit):
        raise ActionError("rate_limited", N_("Too many requests; wait a moment and try again."), 429)


def _check_origin(request: Request | WebSocket, settings: WidgetSettings) -> None:
    if not origin_allowed(request.headers.get("origin"), settings.allowed_origins):
        raise ActionError("origin_not_allowed", N_("This site is not allowed to use this chat."), 403)


def _account(request: Request | WebSocket, token: str) -> ChannelAccountView:
    directory: Directory = request.app.state.widget_directory
    return directory.get(token, "widget")


# -- the script and its settings ---------------------------------------------------------


@router.get("/widget/{token}/widget.js")
def widget_script(token: str, request: Request) -> Response:
    """The widget: one script tag, loaded asynchronously by the site."""
    try:
        _limit(request, f"widget:script:{client_ip(request)}", RATE_SCRIPT)
        _account(request, token)
    except ActionError as exc:
        return Response(f"/* {exc.code} */", exc.status, media_type="text/javascript")
    script = bundle()
    headers = {
        "Cache-Control": "public, max-age=300",
        "ETag": script.etag,
        "Vary": "Accept-Encoding",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == script.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(script.gzipped, media_type="text/javascript; charset=utf-8", headers=headers)
    return Response(script.body, media_type="text/javascript; charset=utf-8", headers=headers)


@router.get("/widget/{token}/config")
def widget_config(token: str, request: Request) -> Response:
    """Everything the widget shows, in the visitor's language; whether the team is open and agents available."""
    locale = _locale(request)
    runtime: Runtime = request.app.state.runtime
    try:
        _limit(request, f"widget:config:{client_ip(request)}", RATE_CONFIG)
        account = _account(request, token)
        settings = WidgetSettings.from_account(account)
        _check_origin(request, settings)
    except ActionError as exc:
        return refusal(exc, locale, {"Access-Control-Allow-Origin": "*"})
    with runtime.db.read() as session:
        availability = config_fields(session, settings, runtime.clock.now(), locale)
    body = {
        "locale": locale,
        "title": settings.text("title", locale),
        # A widget never opens blank: without a greeting of its own it says the default one.
        "greeting": settings.text("greeting", locale) or gettext(DEFAULT_GREETING, locale),
        "color": settings.color,
        "text_color": settings.text_color,
        "position": settings.position,
        "prechat": {name: str(rule) for name, rule in settings.prechat.items()},
        "proactive": [
            {
                "message": localized(rule.message, locale),
                "after_seconds": rule.after_seconds,
                "url": rule.url,
                "returning": rule.returning,
            }
            for rule in settings.proactive
        ],
        **availability,
        "max_upload_bytes": min(settings.max_upload_bytes, runtime.settings.max_upload_bytes),
        "accept": ACCEPT,
        "strings": ui_strings(locale),
    }
    headers = {**cors(request, settings.allowed_origins), "Cache-Control": "no-store"}
    return JSONResponse(body, headers=headers)


# -- the visitor's socket ----------------------------------------------------------------


async def _refuse(websocket: WebSocket, exc: ActionError, locale: str) -> None:
    # The browser cannot read a refused handshake's status: accept, say why, then close
    # with 4000 + the HTTP status (4403: do not retry; 4429 / 4503: retry later).
    with contextlib.suppress(Exception):
        message = gettext(exc.reason, locale, **exc.values)
        await websocket.send_text(orjson.dumps({"type": "error", "code": exc.code, "message": message}).decode())
        await websocket.close(code=4000 + exc.status)


def _credentials(hello: dict[str, Any]) -> Credentials:
    user = hello.get("user") if isinstance(hello.get("user"), dict) else {}
    assert isinstance(user, dict)

    def text(value: Any) -> str | None:
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None

    return Credentials(
        visitor=text(hello.get("visitor")),
        user_id=text(user.get("id")),
        user_hash=text(user.get("hash")),
        user_name=text(user.get("name")),
        user_email=text(user.get("email")),
        user_phone=text(user.get("phone")),
    )


async def _receive(websocket: WebSocket) -> str:
    """The next frame's text; a binary frame is read as UTF-8 (some clients send JSON so)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    if message.get("text") is not None:
        return str(message["text"])
    return bytes(message.get("bytes") or b"").decode("utf-8", "replace")


async def _hello(websocket: WebSocket) -> dict[str, Any]:
    try:
        raw = await asyncio.wait_for(_receive(websocket), HELLO_TIMEOUT)
        hello = orjson.loads(raw[:MAX_FRAME])
    except (TimeoutError, orjson.JSONDecodeError) as exc:
        raise ActionError("hello_expected", N_("The widget must introduce itself first."), 400) from exc
    if not isinstance(hello, dict) or hello.get("type") != "hello":
        raise ActionError("hello_expected", N_("The widget must introduce itself first."), 400)
    return hello


@router.websocket("/widget/{token}/ws")
async def visitor_socket(websocket: WebSocket, token: str) -> None:
    """One open widget: history and replay, live replies, typing, receipts, messages."""
    app = websocket.app
    runtime: Runtime = app.state.runtime
    hub: WidgetHub = app.state.widget_hub
    locale = _locale(websocket)
    await websocket.accept()
    try:
        account = await asyncio.to_thread(_account, websocket, token)
        settings = WidgetSettings.from_account(account)
        _check_origin(websocket, settings)
        hello = await _hello(websocket)
        locale = _locale(websocket, hello.get("locale") if isinstance(hello.get("locale"), str) else None)
        address = websocket.client.host if websocket.client else "unknown"
        try:
            visitor = authenticate(account, runtime.settings.secret_key, _credentials(hello), allow_new=True)
        except ActionError:
            await _limit_async(websocket, f"widget:refused:{address}", RATE_NEW_VISITOR)
            raise
        if visitor.new:
            await _limit_async(websocket, f"widget:new:{address}", RATE_NEW_VISITOR)
        await _limit_async(websocket, f"widget:connect:{account.id}:{visitor.key}", RATE_CONNECT)
        known = await asyncio.to_thread(_identity, runtime, visitor.identity)
    except ActionError as exc:
        await _refuse(websocket, exc, locale)
        return
    except WebSocketDisconnect:
        return
    last_seen = hello.get("last_id")
    last_seen = last_seen if isinstance(last_seen, int) and last_seen > 0 else 0
    socket = VisitorSocket(
        websocket=websocket,
        account=account,
        visitor=visitor,
        token=token,
        locale=locale,
        contact_id=known[1] if known else None,
        settled=last_seen,
        initial=last_seen == 0,
    )
    hub.add(socket)
    sender = asyncio.create_task(hub.serve(socket))
    hub.push(
        socket,
        {
            "type": "welcome",
            "visitor": visitor.token,
            "verified": visitor.verified,
            "known": known is not None,
            "agents_online": hub.board.online(),
        },
    )
    if known is not None:
        # A visitor who never wrote has nothing to replay: no query until they do.
        hub.poke(socket)
    try:
        while True:
            raw = await _receive(websocket)
            try:
                frame = orjson.loads(raw[:MAX_FRAME]) if len(raw) <= MAX_FRAME else None
            except orjson.JSONDecodeError:
                frame = None
            if isinstance(frame, dict):
                await _on_frame(app, hub, socket, settings, frame)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.remove(socket)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


def _identity(runtime: Runtime, identity_value: str) -> tuple[int, int] | None:
    with runtime.db.read() as session:
        return identity_of(session, identity_value)


async def _on_frame(
    app: FastAPI, hub: WidgetHub, socket: VisitorSocket, settings: WidgetSettings, frame: dict[str, Any]
) -> None:
    kind = frame.get("type")
    if kind == "message":
        await _on_message(app, hub, socket, settings, frame)
    elif kind == "typing":
        await _on_typing(app.state.runtime, hub, socket)
    elif kind == "receipt":
        await _on_receipt(app.state.runtime, socket, frame)
    elif kind == "ping":
        hub.push(socket, {"type": "pong"})


async def _on_message(
    app: FastAPI, hub: WidgetHub, socket: VisitorSocket, settings: WidgetSettings, frame: dict[str, Any]
) -> None:
    runtime: Runtime = app.state.runtime
    visitor = socket.visitor
    client_id = frame.get("client_id") if isinstance(frame.get("client_id"), str) else None
    values = frame.get("prechat") if isinstance(frame.get("prechat"), dict) else {}
    assert isinstance(values, dict)
    first = socket.contact_id is None
    try:
        client_id = client_id_of(client_id)
        text = text_of(frame.get("text"), required=True)
        await _limit_async(socket.websocket, f"widget:message:{socket.account.id}:{visitor.key}", RATE_MESSAGE)
        inbound = build_inbound(
            settings,
            visitor,
            client_id=client_id,
            text=text,
            values=values,
            offline=bool(frame.get("offline")),
            first=first,
            page=frame.get("page"),
            locale=socket.locale,
            region=runtime.settings.default_region,
            browser=browser_summary(socket.websocket.headers.get("user-agent")),
        )
        result = await submit(app, socket.account, inbound)
    except ActionError as exc:
        message = gettext(exc.reason, socket.locale, **exc.values)
        hub.push(socket, {"type": "error", "client_id": client_id, "code": exc.code, "message": message})
        return
    except PrechatInvalid as exc:
        hub.push(socket, _form_error(client_id, exc, socket.locale))
        return
    assert result.message_id is not None and result.contact_id is not None and result.conversation_id is not None
    hub.set_contact(socket, result.contact_id)
    hub.set_conversation(socket, result.conversation_id)
    socket.mark_sent([result.message_id], time.monotonic())
    hub.push(
        socket,
        {
            "type": "ack",
            "client_id": client_id,
            "message": {
                "id": result.message_id,
                "conversation_id": result.conversation_id,
                "dir": "in",
                "text": text,
                "at": runtime.clock.now().isoformat(),
                "cid": client_id,
                "files": [],
            },
        },
    )
    if first:
        _announce_identity(hub, visitor, result.contact_id)


def _form_error(client_id: str | None, exc: PrechatInvalid, locale: str) -> dict[str, Any]:
    return {
        "type": "error",
        "client_id": client_id,
        "code": "prechat_invalid",
        "message": gettext(N_("Some fields are missing or not valid."), locale),
        "fields": {name: gettext(reason, locale) for name, reason in exc.errors.items()},
    }


def _announce_identity(hub: WidgetHub, visitor: Visitor, contact_id: int) -> None:
    # The visitor's other tabs (on any API process) were opened before this contact existed.
    event = {"type": "widget.identity", "identity": visitor.identity, "contact_id": contact_id, "only_agent_ids": []}
    hub.publish(event)


async def _on_typing(runtime: Runtime, hub: WidgetHub, socket: VisitorSocket) -> None:
    now = time.monotonic()
    if socket.conversation_id is None or now - socket.last_typing < TYPING_EVERY:
        return
    socket.last_typing = now
    conversation_id = socket.conversation_id

    def scope() -> dict[str, Any] | None:
        with runtime.db.read() as session:
            return conversation_scope(session, conversation_id)

    found = await asyncio.to_thread(scope)
    if found is None:
        return
    hub.publish(
        {
            "type": "contact.typing",
            "conversation_id": conversation_id,
            "contact_id": found["contact_id"],
            "team_id": found["team_id"],
            "assignee_id": found["assignee_id"],
            "channel_account_id": socket.account.id,
        }
    )


async def _on_receipt(runtime: Runtime, socket: VisitorSocket, frame: dict[str, Any]) -> None:
    status = frame.get("status")
    up_to = frame.get("up_to")
    if status not in ("delivered", "read") or not isinstance(up_to, int) or isinstance(up_to, bool):
        return
    if up_to <= socket.receipts.get(status, 0):
        return
    socket.receipts[status] = up_to
    if status == "read":
        socket.receipts["delivered"] = max(up_to, socket.receipts.get("delivered", 0))

    def store() -> None:
        with runtime.transaction() as tx:
            record_receipt(tx, socket.account.id, socket.visitor.identity, up_to, DeliveryStatus(status))

    await asyncio.to_thread(store)


# -- uploads and files -------------------------------------------------------------------


@router.post("/widget/{token}/upload")
async def upload(token: str, request: Request) -> Response:
    """A file from the visitor's widget: checked, then stored as a message by the ingest path."""
    app = request.app
    runtime: Runtime = app.state.runtime
    hub: WidgetHub = app.state.widget_hub
    locale = _locale(request)
    headers = {"Vary": "Origin"}
    try:
        account = await asyncio.to_thread(_account, request, token)
        settings = WidgetSettings.from_account(account)
        # Known before any refusal, so the widget can read every answer, 429 included.
        headers = cors(request, settings.allowed_origins)
        _check_origin(request, settings)
        await _limit_async(request, f"widget:upload-ip:{client_ip(request)}", RATE_UPLOAD_ADDRESS)
        limit = min(settings.max_upload_bytes, runtime.settings.max_upload_bytes)
        body = await read_limited(request, limit)
        form = await parse_form(request, body, max_files=1)
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        credentials = Credentials(
            visitor=fields.get("visitor"),
            user_id=fields.get("user_id"),
            user_hash=fields.get("user_hash"),
            user_name=fields.get("user_name"),
            user_email=fields.get("user_email"),
            user_phone=fields.get("user_phone"),
        )
        visitor = authenticate(account, runtime.settings.secret_key, credentials, allow_new=False)
        await _limit_async(request, f"widget:upload:{account.id}:{visitor.key}", RATE_UPLOAD)
        client_id = client_id_of(fields.get("client_id"))
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise ActionError("upload_missing", N_("Choose a file to send."), 422)
        data = await file.read()
        kind, content_type = check_file(file.filename, file.content_type, data, limit)
        known = await asyncio.to_thread(_identity, runtime, visitor.identity)
        inbound = build_inbound(
            settings,
            visitor,
            client_id=client_id,
            text=text_of(fields.get("text"), required=False),
            values={k: fields[k] for k in ("name", "email", "phone") if k in fields},
            offline=False,
            first=known is None,
            page=fields.get("page"),
            locale=locale,
            region=runtime.settings.default_region,
            browser=browser_summary(request.headers.get("user-agent")),
            attachment=InboundAttachment(
                kind=kind,
                content_type=content_type,
                filename=(file.filename or "file")[-200:],
                size=len(data),
                data=data,
            ),
        )
        result = await submit(app, account, inbound)
    except ActionError as exc:
        return refusal(exc, locale, headers)
    except PrechatInvalid as exc:
        form_error = _form_error(None, exc, locale)
        return JSONResponse(
            {"error": {"code": "prechat_invalid", "message": form_error["message"], "fields": form_error["fields"]}},
            422,
            headers=headers,
        )
    if known is None and result.contact_id is not None:
        _announce_identity(hub, visitor, result.contact_id)
    return JSONResponse({"id": result.message_id, "duplicate": result.duplicate}, 201, headers=headers)


@router.get("/widget/{token}/files/{attachment_id}/{signature}")
def widget_file(token: str, attachment_id: int, signature: str, request: Request) -> Response:
    """A file of the visitor's chat, by the signed link the widget got with the message."""
    runtime: Runtime = request.app.state.runtime
    try:
        _limit(request, f"widget:file:{client_ip(request)}", RATE_FILE)
        account = _account(request, token)
        expected = file_signature(runtime.settings.secret_key, account.id, attachment_id)
        if not constant_time.equal(expected, signature):
            raise NotFound("attachment_not_found", N_("Attachment not found."))
        with runtime.db.read() as session:
            attachment = session.get(Attachment, attachment_id)
            message = session.get(Message, attachment.message_id) if attachment else None
            if attachment is None or message is None or message.channel_account_id != account.id:
                raise NotFound("attachment_not_found", N_("Attachment not found."))
            if not attachment.storage_key:
                raise NotFound("attachment_not_found", N_("Attachment not found."))
            return file_response(
                runtime.storage.path(attachment.storage_key),
                attachment.content_type,
                attachment.filename or "file",
                {"Cross-Origin-Resource-Policy": "cross-origin", "Cache-Control": "private, max-age=86400"},
            )
    except ActionError as exc:
        return refusal(exc, _locale(request))


# -- wiring ------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Mount the widget and the web forms, and run the widget hub with the app."""
    runtime: Runtime = app.state.runtime
    hub = WidgetHub(runtime)
    directory = Directory(runtime)
    app.state.widget_hub = hub
    app.state.widget_directory = directory
    app.state.hub.taps.append(hub.tap)

    def forget_channels(event: dict[str, Any]) -> None:
        if event.get("type") == "channel.updated":
            directory.clear()

    app.state.hub.taps.append(forget_channels)
    app.include_router(router)
    app.include_router(forms.router)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(instance: Any) -> AsyncIterator[Any]:
        async with inner(instance) as state:
            tasks = [asyncio.create_task(hub.run())]
            try:
                yield state
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app.router.lifespan_context = lifespan
