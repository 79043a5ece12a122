"""Files visitors may send from the widget or a web form: size and type limits, checked on the bytes."""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request

from hilo.channels.base import MessageKind
from hilo.errors import ActionError
from hilo.i18n import N_

# Content type -> (message kind, leading bytes a real file of that type starts with).
# No SVG or HTML: a file an agent opens must not run script.
ALLOWED: dict[str, tuple[MessageKind, tuple[bytes, ...]]] = {
    "image/png": (MessageKind.IMAGE, (b"\x89PNG\r\n\x1a\n",)),
    "image/jpeg": (MessageKind.IMAGE, (b"\xff\xd8\xff",)),
    "image/gif": (MessageKind.IMAGE, (b"GIF87a", b"GIF89a")),
    "image/webp": (MessageKind.IMAGE, (b"RIFF",)),
    "application/pdf": (MessageKind.DOCUMENT, (b"%PDF-",)),
    "text/plain": (MessageKind.DOCUMENT, ()),
    "text/csv": (MessageKind.DOCUMENT, ()),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (MessageKind.DOCUMENT, (b"PK\x03\x04",)),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (MessageKind.DOCUMENT, (b"PK\x03\x04",)),
    "application/vnd.oasis.opendocument.text": (MessageKind.DOCUMENT, (b"PK\x03\x04",)),
}
ACCEPT = ",".join(ALLOWED)
# Room for the multipart envelope and the small fields around the file.
ENVELOPE = 64 * 1024
DRAIN = 16 * 1024 * 1024


def human_size(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{max(1, size // 1024)} KB"


def too_large(limit: int) -> ActionError:
    reason = N_("This file is too large: the limit is {size}.")
    return ActionError("upload_too_large", reason, 413, size=human_size(limit))


def check_file(filename: str | None, content_type: str | None, data: bytes, limit: int) -> tuple[MessageKind, str]:
    """The message kind and the content type of an acceptable file; ActionError otherwise."""
    if len(data) > limit:
        raise too_large(limit)
    if not data:
        raise ActionError("upload_empty", N_("The file is empty."), 422)
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in ALLOWED:
        declared = (mimetypes.guess_type(filename or "")[0] or "").lower()
    refused = ActionError("upload_type_not_allowed", N_("This kind of file cannot be sent."), 415)
    if declared not in ALLOWED:
        raise refused
    kind, signatures = ALLOWED[declared]
    if signatures and not any(data.startswith(signature) for signature in signatures):
        raise refused
    if declared == "image/webp" and data[8:12] != b"WEBP":
        raise refused
    if declared.startswith("text/") and b"\x00" in data[:4096]:
        raise refused
    return kind, declared


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 `upload_too_large` once it passes `limit`.

    A browser still sending when the answer comes sees only a broken connection, not the
    refusal: a body up to DRAIN bytes too large is read to the end (and dropped) first.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + ENVELOPE + DRAIN:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + ENVELOPE:
            chunks.clear()
            if size > limit + ENVELOPE + DRAIN:
                break
            continue
        chunks.append(chunk)
    if size > limit + ENVELOPE:
        raise too_large(limit)
    return b"".join(chunks)


async def parse_form(request: Request, body: bytes, max_files: int) -> FormData:
    """Parse an urlencoded or multipart body already read (and size-checked) into form data."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    replay: Callable[[], Awaitable[dict[str, Any]]] = receive
    try:
        return await Request(request.scope, replay).form(max_files=max_files, max_fields=100)
    except Exception as exc:  # python-multipart raises several types for a malformed body
        raise ActionError("payload_malformed", N_("The form could not be read."), 400) from exc
