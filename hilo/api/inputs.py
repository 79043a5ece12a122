"""Refuse request input no column can hold: integers beyond 64 bits, text with NUL characters.

Every route checks its input here (one app-wide dependency) before its own code runs,
so an endpoint never has to remember it: ids and numbers in the path, the query string
and the JSON body must fit a signed 64-bit integer (PostgreSQL's BIGINT, SQLite's
INTEGER), and no text may hold a NUL character (PostgreSQL refuses it in text). The
database's own refusal of a number its column cannot hold (a 32-bit column) is answered
the same way by `install`, as a last resort.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.utils import get_flat_dependant
from fastapi.params import Form
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, APIWebSocketRoute
from sqlalchemy.exc import DataError
from starlette.requests import HTTPConnection

from hilo.api.errors import error_response
from hilo.cursors import fits_int64
from hilo.errors import ActionError
from hilo.i18n import N_

NUL = "\x00"
# Provider webhooks answer in their own shape on the fast path (hilo.api.webhooks);
# their FastAPI twin must answer the same, so the adapters judge their bodies.
UNCHECKED_PREFIXES = ("/webhooks/",)


def number_out_of_range(field: str) -> ActionError:
    return ActionError(
        "number_out_of_range",
        N_("{field} is too large: use a number between -9223372036854775808 and 9223372036854775807."),
        422,
        field=field,
    )


def text_has_nul(field: str) -> ActionError:
    return ActionError(
        "text_has_nul", N_("{field} contains a NUL character, which cannot be stored: remove it."), 422, field=field
    )


def _is_int_annotation(annotation: Any) -> bool:
    """True for int, int | None, list[int] and the like (bool is not a number here)."""
    if annotation is int:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_int_annotation(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, set, tuple, frozenset):
        return any(_is_int_annotation(arg) for arg in typing.get_args(annotation))
    return False


Shape = tuple[frozenset[str], frozenset[str], str | None]


def _route_shape(route: APIRoute | APIWebSocketRoute) -> Shape:
    """The route's integer path and query parameters, and how its body is sent (json, form, none)."""
    known: Shape | None = route.__dict__.get("hilo_input_shape")
    if known is None:
        known = route.__dict__["hilo_input_shape"] = _shape_of(route)
    return known


def _shape_of(route: APIRoute | APIWebSocketRoute) -> Shape:
    flat = get_flat_dependant(route.dependant, skip_repeats=True)
    ints_in_path = frozenset(f.alias for f in flat.path_params if _is_int_annotation(f.field_info.annotation))
    ints_in_query = frozenset(f.alias for f in flat.query_params if _is_int_annotation(f.field_info.annotation))
    body: str | None = None
    body_field = getattr(route, "body_field", None)
    if body_field is not None:
        body = "form" if isinstance(body_field.field_info, Form) else "json"
    return ints_in_path, ints_in_query, body


def _check_text(field: str, value: str) -> None:
    if NUL in value:
        raise text_has_nul(field)


def _check_int_text(field: str, value: str) -> None:
    """An integer parameter still in text: refuse it only when it is a number out of range."""
    stripped = value.strip().lstrip("+-")
    if stripped.isdigit() and not fits_int64(int(value.strip())):
        raise number_out_of_range(field)


def _check_json(value: Any, path: str) -> None:
    """Walk a parsed JSON body: every integer fits 64 bits, no key or text holds NUL."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not fits_int64(value):
            raise number_out_of_range(path or "body")
    elif isinstance(value, str):
        _check_text(path or "body", value)
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            _check_text(name, str(key))
            _check_json(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}.{index}" if path else str(index))


def _check_pairs(pairs: Iterable[tuple[str, Any]], ints: frozenset[str]) -> None:
    for name, value in pairs:
        _check_text(name, name)
        if isinstance(value, str):
            _check_text(name, value)
            if name in ints:
                _check_int_text(name, value)


async def check_request_input(connection: HTTPConnection) -> None:
    """Refuse a request whose path, query or body holds a value no column can store."""
    route = connection.scope.get("route")
    if not isinstance(route, APIRoute | APIWebSocketRoute) or connection.url.path.startswith(UNCHECKED_PREFIXES):
        return
    ints_in_path, ints_in_query, body = _route_shape(route)
    _check_pairs(connection.path_params.items(), ints_in_path)
    _check_pairs(connection.query_params.multi_items(), ints_in_query)
    if not isinstance(connection, Request) or body is None:
        return
    if body == "form":
        form = await connection.form()
        _check_pairs(form.multi_items(), frozenset())
    elif await connection.body() and "json" in connection.headers.get("content-type", "json"):
        # FastAPI has parsed (and cached) the body before the dependencies run; a body it
        # could not parse never gets here.
        _check_json(await connection.json(), "")


def install(app: FastAPI) -> None:
    """Answer the database's refusal of an out-of-range number as the caller's mistake."""

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        if getattr(exc.orig, "sqlstate", None) != "22003":  # numeric_value_out_of_range
            raise exc
        error = number_out_of_range("body")
        return error_response(request, error.status, error.code, error.reason, **error.values)
