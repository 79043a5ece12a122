"""A custom source's receiving server for the generic API channel: records signed replies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hilo.channels import signing
from tests.fakes.server import serve_asgi


@dataclass
class Receiver:
    secret: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    # Responses to give to the next calls: (status, headers); then 200.
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        if self.secret:
            signing.verify(self.secret, body, request.headers.get("x-hilo-signature"))
        payload = orjson.loads(body)
        with self.lock:
            self.received.append({"headers": dict(request.headers), "body": payload})
            planned = self.script.pop(0) if self.script else (200, {})
        status, headers = planned
        if status != 200:
            return JSONResponse({"error": "scripted"}, status_code=status, headers=headers)
        return JSONResponse({"id": f"ext-{payload['message_id']}-{len(self.received)}"})


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    app = Starlette(routes=[Route("/hook", state.handle, methods=["POST"])])
    with serve_asgi(app) as base:
        state.url = f"{base}/hook"
        yield state
