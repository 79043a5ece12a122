"""Fill `{{contact.first_name}}`-style variables in canned responses and automated replies.

Deliberately not a template engine: only `{{ name }}` and `{{ name | fallback }}`, so a
text written by an administrator can never run code. An unknown or empty variable gives
its fallback (or nothing).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

VARIABLE = re.compile(r"\{\{\s*([a-z][a-z0-9_.]*)\s*(?:\|\s*([^}]*?)\s*)?\}\}")
KNOWN = (
    "contact.name",
    "contact.first_name",
    "contact.email",
    "contact.phone",
    "contact.attributes.<key>",
    "agent.name",
    "agent.first_name",
    "agent.email",
    "conversation.id",
    "team.name",
)


def render(template: str, lookup: Callable[[str], Any]) -> str:
    def fill(match: re.Match[str]) -> str:
        value = lookup(match.group(1))
        if value is None or value == "":
            return match.group(2) or ""
        return str(value)

    return VARIABLE.sub(fill, template)


def mapping_lookup(values: Mapping[str, Any]) -> Callable[[str], Any]:
    """Look names up in a flat mapping; `contact.attributes.<key>` in its nested dict."""

    def lookup(name: str) -> Any:
        if name.startswith("contact.attributes."):
            return (values.get("contact.attributes") or {}).get(name[len("contact.attributes.") :])
        return values.get(name)

    return lookup


def first_name(name: str | None) -> str | None:
    return name.split()[0] if name and name.split() else None
