"""A fake Meta Graph API: WhatsApp Cloud API, Messenger and Instagram Send API, templates, media."""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import serve_asgi

# Error bodies as Meta sends them. The first two are copied from the shared fixtures
# (whatsapp_send_error_response_130429.json, messenger_send_error_response_metadocs.json);
# the others follow the same documented envelope with the documented codes.
RATE_LIMIT_ERROR: dict[str, Any] = {
    "error": {
        "message": "(#130429) Rate limit hit",
        "type": "OAuthException",
        "code": 130429,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": "Message failed to send because there were too many messages sent "
            "from this phone number in a short period of time",
        },
        "error_subcode": 2494055,
        "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
    }
}
INVALID_TOKEN_ERROR: dict[str, Any] = {
    "error": {
        "message": "Invalid OAuth access token.",
        "type": "OAuthException",
        "code": 190,
        "error_subcode": 1234567,
        "fbtrace_id": "BLBz/WZt8dN",
    }
}
RE_ENGAGEMENT_ERROR: dict[str, Any] = {
    "error": {
        "message": "(#131047) Re-engagement message",
        "type": "OAuthException",
        "code": 131047,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": "Message failed to send because more than 24 hours have passed "
            "since the customer last replied to this number.",
        },
        "fbtrace_id": "A1b2C3d4E5f6G7h8I9j0K1l",
    }
}
# courier's Messenger send tests mock 613 with exactly this body.
PAGE_RATE_LIMIT_ERROR: dict[str, Any] = {
    "error": {"message": "Calls to this api have exceeded the rate limit", "code": 613}
}
OUTSIDE_WINDOW_ERROR: dict[str, Any] = {
    "error": {
        "message": "(#10) This message is sent outside of allowed window.",
        "type": "OAuthException",
        "code": 10,
        "error_subcode": 2018278,
        "fbtrace_id": "H3Ll0wOrLd1",
    }
}
USER_UNAVAILABLE_ERROR: dict[str, Any] = {
    "error": {
        "message": "(#551) This person isn't available right now.",
        "type": "OAuthException",
        "code": 551,
        "error_subcode": 1545041,
        "fbtrace_id": "Xy9Zz8Ww7Vv",
    }
}

# Meta's transient "service temporarily unavailable" (code 2), in the documented envelope.
SERVICE_UNAVAILABLE_ERROR: dict[str, Any] = {
    "error": {
        "message": "(#2) Service temporarily unavailable",
        "type": "OAuthException",
        "is_transient": True,
        "code": 2,
        "fbtrace_id": "Bq2sUnAvAiL",
    }
}

# Dummy credential the fake accepts unless a test passes another.
DEFAULT_ACCESS_TOKEN = "test-access-token"  # noqa: S105

DEFAULT_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "hello_world",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
            {
                "type": "BODY",
                "text": "Welcome and congratulations!! This message demonstrates your "
                "ability to send a WhatsApp message notification from the Cloud API, "
                "hosted by Meta. Thank you for taking the time to test with us.",
            },
            {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
        ],
        "language": "en_US",
        "status": "APPROVED",
        "category": "UTILITY",
        "id": "1192339204654487",
    },
    {
        "name": "order_update",
        "components": [{"type": "BODY", "text": "Tu pedido {{1}} ya está en camino."}],
        "language": "es",
        "status": "APPROVED",
        "category": "UTILITY",
        "id": "1192339204654488",
    },
    {
        "name": "spring_sale",
        "components": [{"type": "BODY", "text": "Spring sale: {{1}} off."}],
        "language": "en_US",
        "status": "PENDING",
        "category": "MARKETING",
        "id": "1192339204654489",
    },
]


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    # Multipart files: field name -> (filename, content type, bytes).
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)


@dataclass(frozen=True)
class ScriptedFailure:
    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str]


class FakeGraphAPI:
    """Records every request; answers like graph.facebook.com / graph.instagram.com."""

    def __init__(self, access_token: str = DEFAULT_ACCESS_TOKEN) -> None:
        self.access_tokens = {access_token}
        self.requests: list[RecordedRequest] = []
        self.templates: list[dict[str, Any]] = [dict(t) for t in DEFAULT_TEMPLATES]
        self.media: dict[str, tuple[bytes, str]] = {}
        # Graph nodes a GET may read (a WhatsApp phone number, a Page), and who each token is (/me).
        self.nodes: dict[str, dict[str, Any]] = {}
        self.me: dict[str, dict[str, Any]] = {}
        self.base_url = ""
        # None lets one request through: a failure scripted for a later request.
        self._failures: deque[ScriptedFailure | None] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/media-download/{media_id}", self._download, methods=["GET"]),
                Route("/{version}/{node}/messages", self._messages, methods=["POST"]),
                Route("/{version}/{node}/media", self._upload, methods=["POST"]),
                Route(
                    "/{version}/{node}/message_templates",
                    self._templates,
                    methods=["GET"],
                ),
                Route("/{version}/{node}", self._media_info, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._failures.clear()
            self.media.clear()
            self.nodes.clear()
            self.me.clear()
            self.templates = [dict(t) for t in DEFAULT_TEMPLATES]
            self._ids = itertools.count(1)

    def fail_next(
        self,
        status: int,
        body: Mapping[str, Any],
        *,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
        after: int = 0,
    ) -> None:
        """Answer the next `times` authorised requests with this error, once `after`
        requests have been answered normally."""
        with self._lock:
            self._failures.extend([None] * after)
            for _ in range(times):
                self._failures.append(ScriptedFailure(status, body, dict(headers or {})))

    def requests_to(self, suffix: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(suffix)]

    # Plumbing ---------------------------------------------------------------------

    async def _record(self, request: Request) -> RecordedRequest:
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params),
        )
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            recorded.json = json.loads(await request.body())
        elif content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            async with request.form() as form:
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        recorded.files[key] = (
                            value.filename or "",
                            value.content_type or "",
                            await value.read(),
                        )
                    else:
                        recorded.form[key] = value
        with self._lock:
            self.requests.append(recorded)
        return recorded

    def _refusal(self, request: Request) -> Response | None:
        """Graph checks the token before anything else, then our scripted failures."""
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() or request.query_params.get("access_token", "")
        if token not in self.access_tokens:
            return JSONResponse(INVALID_TOKEN_ERROR, status_code=401)
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is None:
            return None
        return JSONResponse(dict(failure.body), status_code=failure.status, headers=dict(failure.headers))

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    # Endpoints --------------------------------------------------------------------

    async def _messages(self, request: Request) -> Response:
        recorded = await self._record(request)
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        number = self._next_id()
        body = recorded.json if recorded.json is not None else {}
        if body.get("messaging_product") == "whatsapp":
            to = str(body.get("to", ""))
            if not to or "type" not in body:
                return JSONResponse(_invalid_parameter("to/type"), status_code=400)
            return JSONResponse(
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": to.removeprefix("+")}],
                    "messages": [{"id": f"wamid.FAKE{number:06d}"}],
                }
            )
        # Messenger / Instagram: JSON body or multipart upload with JSON-encoded fields.
        recipient = body.get("recipient") or json.loads(recorded.form.get("recipient", "{}"))
        if not recipient.get("id"):
            return JSONResponse(_invalid_parameter("recipient"), status_code=400)
        return JSONResponse({"recipient_id": recipient["id"], "message_id": f"m_FAKE{number:06d}"})

    async def _upload(self, request: Request) -> Response:
        recorded = await self._record(request)
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        upload = recorded.files.get("file")
        if recorded.form.get("messaging_product") != "whatsapp" or upload is None:
            return JSONResponse(_invalid_parameter("file"), status_code=400)
        media_id = f"{900000 + self._next_id()}"
        with self._lock:
            self.media[media_id] = (upload[2], upload[1])
        return JSONResponse({"id": media_id})

    async def _templates(self, request: Request) -> Response:
        await self._record(request)
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        limit = int(request.query_params.get("limit", "25"))
        start = int(request.query_params.get("after", "0"))
        with self._lock:
            page = self.templates[start : start + limit]
            more = start + limit < len(self.templates)
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + limit)}}
        if more:
            paging["next"] = f"https://graph.facebook.com{request.url.path}?limit={limit}&after={start + limit}"
        return JSONResponse({"data": page, "paging": paging})

    async def _media_info(self, request: Request) -> Response:
        await self._record(request)
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        media_id = request.path_params["node"]
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        node = self.me.get(token) if media_id == "me" else self.nodes.get(media_id)
        if node is not None:
            # Graph answers the fields asked for, and always the id.
            asked = set(request.query_params.get("fields", "").split(",")) | {"id"}
            return JSONResponse({key: value for key, value in node.items() if key in asked})
        with self._lock:
            stored = self.media.get(media_id)
        if stored is None:
            return JSONResponse(_unknown_object(media_id), status_code=400)
        data, mime_type = stored
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.base_url}/media-download/{media_id}",
                "mime_type": mime_type,
                "sha256": "fake",
                "file_size": len(data),
                "id": media_id,
            }
        )

    async def _download(self, request: Request) -> Response:
        await self._record(request)
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        with self._lock:
            stored = self.media.get(request.path_params["media_id"])
        if stored is None:
            return Response(status_code=404)
        return Response(stored[0], media_type=stored[1])


def _unknown_object(node: str) -> dict[str, Any]:
    """Graph's answer for an id it does not know (or the token cannot see): code 100, subcode 33."""
    return {
        "error": {
            "message": f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded due to "
            "missing permissions, or does not support this operation. Please read the Graph API documentation at "
            "https://developers.facebook.com/docs/graph-api",
            "type": "GraphMethodException",
            "code": 100,
            "error_subcode": 33,
            "fbtrace_id": "AbCdEfGh123",
        }
    }


def _invalid_parameter(name: str) -> dict[str, Any]:
    return {
        "error": {
            "message": f"(#100) Invalid parameter: {name}",
            "type": "OAuthException",
            "code": 100,
            "fbtrace_id": "AfakeTraceId",
        }
    }


@contextmanager
def running_fake_graph(access_token: str = DEFAULT_ACCESS_TOKEN) -> Iterator[FakeGraphAPI]:
    """Serve a `FakeGraphAPI` on loopback; its `base_url` is set while running."""
    fake = FakeGraphAPI(access_token)
    with serve_asgi(fake.app) as base_url:
        fake.base_url = base_url
        yield fake
