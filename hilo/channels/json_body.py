"""JSON webhook bodies decoded with a bound on their nesting, for every channel that takes JSON.

The parsers themselves stop somewhere (orjson at 1024 levels, the standard library at the
interpreter's recursion limit, with a RecursionError), but what walks or stores a document
afterwards recurses too: orjson will not encode past 255 levels, and the adapters' own
code is recursive. No provider nests anywhere near MAX_DEPTH.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from hilo.channels.base import WebhookError
from hilo.i18n import N_

MAX_DEPTH = 64
TOO_DEEP = N_("The body nests too deeply to be read.")


def decode(body: bytes | str, malformed_reason: str, *, exact: bool = False) -> Any:
    """The document in `body`; a WebhookError (400) when it is not JSON or nests past MAX_DEPTH.

    `exact` reads it as the standard library does (integers of any size, lone surrogates),
    for providers whose documents orjson refuses; otherwise orjson, which is faster.
    """
    try:
        document = json.loads(body) if exact else orjson.loads(body)
    except RecursionError as exc:
        raise WebhookError("payload_too_deep", TOO_DEEP, 400) from exc
    except ValueError as exc:  # orjson.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise WebhookError("payload_malformed", malformed_reason, 400) from exc
    check_depth(document)
    return document


def check_depth(document: Any) -> None:
    """Raise WebhookError("payload_too_deep") when `document` nests past MAX_DEPTH (no recursion here)."""
    if not isinstance(document, dict | list):
        return
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise WebhookError("payload_too_deep", TOO_DEEP, 400)
        children = value.values() if isinstance(value, dict) else value
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
