"""Kinds of channel for capacity: one-to-one channels (a call) cost more than one-to-many ones."""

from __future__ import annotations

from collections.abc import Mapping

CHANNEL_CLASSES = ("call", "chat", "email")
# How many open conversations of each kind an agent takes unless told otherwise.
DEFAULT_CAPACITY: dict[str, int] = {"call": 1, "chat": 3, "email": 10}

# Database triggers count each agent's open conversations by this same mapping (migration
# 0016_agent_open_counts): a change here needs a migration that replaces them.
_CLASS_OF_KIND = {"voice": "call", "email": "email", "webform": "email"}


def channel_class(kind: str | None) -> str:
    """The capacity class of a channel kind; chat-like channels by default."""
    return _CLASS_OF_KIND.get(kind or "", "chat")


def capacity_for(configured: Mapping[str, int] | None, klass: str) -> int:
    if configured and klass in configured:
        return int(configured[klass])
    return DEFAULT_CAPACITY[klass]
