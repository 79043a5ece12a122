"""Kinds of channel for capacity: one-to-one channels (a call) cost more than one-to-many ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, literal_column, or_, select

from hilo.channels.models import ChannelAccount

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


def in_class(account_id: Any, klass: str) -> ColumnElement[bool]:
    """SQL: the channel account `account_id` refers to is of capacity class `klass`.

    A subquery over channel accounts by kind (PostgreSQL hashes it once per query), so a
    count over conversations needs no join per row. No account at all counts as chat.
    """
    # The kinds are written into the SQL (they are constants here): a statement built once
    # then needs no re-rendering per execution, as a list parameter would.
    if klass == "chat":
        others = select(ChannelAccount.id).where(ChannelAccount.kind.in_(_sql_strings(sorted(_CLASS_OF_KIND))))
        return or_(account_id.is_(None), account_id.not_in(others))
    kinds = sorted(kind for kind, of in _CLASS_OF_KIND.items() if of == klass)
    return account_id.in_(select(ChannelAccount.id).where(ChannelAccount.kind.in_(_sql_strings(kinds))))


def _sql_strings(values: list[str]) -> list[ColumnElement[str]]:
    assert all(value.isidentifier() for value in values)
    return [literal_column(f"'{value}'") for value in values]
