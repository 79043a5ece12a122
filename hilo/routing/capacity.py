"""Kinds of channel for capacity: one-to-one channels (a call) cost more than one-to-many ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, case

CHANNEL_CLASSES = ("call", "chat", "email")
# How many open conversations of each kind an agent takes unless told otherwise.
DEFAULT_CAPACITY: dict[str, int] = {"call": 1, "chat": 3, "email": 10}

_CLASS_OF_KIND = {"voice": "call", "email": "email", "webform": "email"}


def channel_class(kind: str | None) -> str:
    """The capacity class of a channel kind; chat-like channels by default."""
    return _CLASS_OF_KIND.get(kind or "", "chat")


def capacity_for(configured: Mapping[str, int] | None, klass: str) -> int:
    if configured and klass in configured:
        return int(configured[klass])
    return DEFAULT_CAPACITY[klass]


def class_expression(kind: Any) -> ColumnElement[str]:
    """`channel_class` as SQL over a channel-kind column."""
    classes = sorted(set(_CLASS_OF_KIND.values()))
    whens = [(kind.in_([k for k, c in _CLASS_OF_KIND.items() if c == klass]), klass) for klass in classes]
    return case(*whens, else_="chat")
