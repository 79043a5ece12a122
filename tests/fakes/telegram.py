"""A fake Telegram Bot API: token in the path, real error bodies, recorded calls, file downloads."""

from __future__ import annotations

import hmac
import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import serve_asgi

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures"
BOT_USER = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "Hilo Test",
    "username": "hilo_test_bot",
}


@dataclass
class Upload:
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RecordedCall:
    """One Bot API call: the method as called and its parameters, whatever the encoding."""

    method: str
    http_method: str
    path: str
    content_type: str
    params: dict[str, Any]
    files: dict[str, Upload]


@dataclass
class FakeTelegram:
    """One bot. Use `running()` to serve it and get its base URL."""

    token: str = "123456789:AAtest-token_for-hilo"  # noqa: S105 - a test value
    calls: list[RecordedCall] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    # None lets one call through: an error scripted for a later call.
    _errors: list[bytes | None] = field(default_factory=list)
    _message_ids: dict[str, Iterator[int]] = field(default_factory=dict)

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/bot{token}/{method}", self._method, methods=["GET", "POST"]),
                Route("/file/bot{token}/{file_path:path}", self._download, methods=["GET"]),
            ]
        )

    @contextmanager
    def running(self) -> Iterator[str]:
        with serve_asgi(self.app) as base_url:
            yield base_url

    def fail_next(self, count: int, error: str | dict[str, Any], *, after: int = 0) -> None:
        """Answer the next `count` calls with an error (a fixture file name or a body),
        once `after` calls have been answered normally."""
        body = (FIXTURES / error).read_bytes() if isinstance(error, str) else json.dumps(error).encode()
        self._errors.extend([None] * after + [body] * count)

    def block(self, chat_id: int | str) -> None:
        """Make sends to `chat_id` fail as after the user blocked the bot."""
        self.blocked.add(str(chat_id))

    def add_file(self, file_id: str, file_path: str, data: bytes) -> None:
        self.files[file_id] = (file_path, data)

    @staticmethod
    def _error(code: int, description: str) -> Response:
        return JSONResponse({"ok": False, "error_code": code, "description": description}, status_code=code)

    @staticmethod
    def _ok(result: Any) -> Response:
        return JSONResponse({"ok": True, "result": result})

    async def _read_params(self, request: Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        params: dict[str, Any] = dict(request.query_params)
        files: dict[str, Upload] = {}
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            params.update(json.loads(await request.body()))
        elif content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form()
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[key] = Upload(value.filename, value.content_type, await value.read())
                else:
                    params[key] = value
        return params, files

    async def _method(self, request: Request) -> Response:
        params, files = await self._read_params(request)
        method = request.path_params["method"]
        self.calls.append(
            RecordedCall(
                method,
                request.method,
                request.url.path,
                request.headers.get("content-type", ""),
                params,
                files,
            )
        )
        if not hmac.compare_digest(request.path_params["token"], self.token):
            return self._error(401, "Unauthorized")
        body = self._errors.pop(0) if self._errors else None
        if body is not None:
            return Response(body, json.loads(body)["error_code"], media_type="application/json")
        # Bot API method names are case-insensitive.
        handler = {
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "getfile": self._get_file,
            "getme": self._get_me,
        }.get(method.lower())
        if handler is None:
            return self._error(404, "Not Found")
        return handler(params, files)

    def _new_message(self, params: dict[str, Any]) -> dict[str, Any] | Response:
        chat_id = str(params.get("chat_id", ""))
        if not chat_id:
            return self._error(400, "Bad Request: chat_id is empty")
        if chat_id in self.blocked:
            body = (FIXTURES / "telegram_error_403_blocked_courier.json").read_bytes()
            return Response(body, 403, media_type="application/json")
        ids = self._message_ids.setdefault(chat_id, itertools.count(1400))
        message: dict[str, Any] = {
            "message_id": next(ids),
            "from": BOT_USER,
            "chat": {"id": int(chat_id), "type": "private"},
            "date": int(time.time()),
        }
        reply = params.get("reply_parameters")
        if isinstance(reply, str):
            reply = json.loads(reply)
        if reply:
            message["reply_to_message"] = {
                "message_id": reply["message_id"],
                "chat": message["chat"],
                "date": message["date"],
            }
        return message

    def _send_message(self, params: dict[str, Any], files: dict[str, Upload]) -> Response:
        text = str(params.get("text", ""))
        if not text:
            return self._error(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            return self._error(400, "Bad Request: message is too long")
        message = self._new_message(params)
        if isinstance(message, Response):
            return message
        return self._ok({**message, "text": text})

    def _media_message(
        self, params: dict[str, Any], files: dict[str, Upload], field_name: str
    ) -> dict[str, Any] | Response:
        upload = files.get(field_name)
        if upload is None and not params.get(field_name):
            return self._error(400, f"Bad Request: there is no {field_name} in the request")
        message = self._new_message(params)
        if isinstance(message, Response):
            return message
        if params.get("caption"):
            message["caption"] = params["caption"]
        return message

    def _send_photo(self, params: dict[str, Any], files: dict[str, Upload]) -> Response:
        message = self._media_message(params, files, "photo")
        if isinstance(message, Response):
            return message
        file_id = f"AgAD{message['message_id']}"
        message["photo"] = [{"file_id": file_id, "file_unique_id": file_id[-8:], "width": 90, "height": 90}]
        return self._ok(message)

    def _send_document(self, params: dict[str, Any], files: dict[str, Upload]) -> Response:
        message = self._media_message(params, files, "document")
        if isinstance(message, Response):
            return message
        upload = files.get("document")
        file_id = f"BQAD{message['message_id']}"
        message["document"] = {
            "file_id": file_id,
            "file_unique_id": file_id[-8:],
            "file_name": upload.filename if upload else None,
            "mime_type": upload.content_type if upload else None,
            "file_size": len(upload.data) if upload else None,
        }
        return self._ok(message)

    def _get_me(self, params: dict[str, Any], files: dict[str, Upload]) -> Response:
        return self._ok(BOT_USER)

    def _get_file(self, params: dict[str, Any], files: dict[str, Upload]) -> Response:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            return self._error(400, "Bad Request: invalid file_id")
        file_path, data = self.files[file_id]
        return self._ok(
            {
                "file_id": file_id,
                "file_unique_id": file_id[-8:],
                "file_size": len(data),
                "file_path": file_path,
            }
        )

    async def _download(self, request: Request) -> Response:
        if not hmac.compare_digest(request.path_params["token"], self.token):
            return self._error(401, "Unauthorized")
        wanted = request.path_params["file_path"]
        for file_path, data in self.files.values():
            if file_path == wanted:
                return Response(data, media_type="application/octet-stream")
        return self._error(404, "Not Found")
