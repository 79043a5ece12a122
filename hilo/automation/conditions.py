"""Rule conditions: validate them when saved, evaluate them against a conversation's facts.

A rule's conditions are `{"all": [...], "any": [...]}`: every condition in "all" must
hold and, when "any" is not empty, at least one of "any". A condition is
`{"field": "contact.locale", "op": "eq", "value": "es"}`. Text comparisons ignore case.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Field name -> kind of value: text, number, flag or list (of texts).
FIELDS: dict[str, str] = {
    "conversation.status": "text",
    "conversation.priority": "text",
    "conversation.team_id": "number",
    "conversation.assignee_id": "number",
    "conversation.labels": "list",
    "conversation.channel": "text",
    "conversation.channel_account_id": "number",
    "conversation.subject": "text",
    "conversation.message_count": "number",
    "conversation.idle_hours": "number",
    "contact.name": "text",
    "contact.locale": "text",
    "contact.email": "text",
    "contact.phone": "text",
    "contact.verified": "flag",
    "message.text": "text",
    "message.language": "text",
    "message.channel": "text",
    "message.channel_account_id": "number",
    "message.kind": "text",
    "message.auto_generated": "flag",
    "business_hours.open": "flag",
    "event.sla_kind": "text",
}
ATTRIBUTE_PREFIX = "contact.attributes."
OPERATORS: dict[str, tuple[str, ...]] = {
    "text": ("eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with", "matches", "present", "absent"),
    "number": ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "present", "absent"),
    "flag": ("eq", "ne"),
    "list": ("contains", "not_contains", "present", "absent"),
    "any": (
        "eq",
        "ne",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "starts_with",
        "matches",
        "gt",
        "gte",
        "lt",
        "lte",
        "present",
        "absent",
    ),
}
MAX_CONDITIONS = 50
MAX_PATTERN = 500
# Regular expressions look at the first characters only, so a costly pattern stays bounded.
MATCH_WINDOW = 10_000


class ConditionError(ValueError):
    """A condition that cannot be used; `str(error)` names the problem."""


def kind_of(field: str) -> str:
    if field.startswith(ATTRIBUTE_PREFIX) and len(field) > len(ATTRIBUTE_PREFIX):
        return "any"
    kind = FIELDS.get(field)
    if kind is None:
        raise ConditionError(f"unknown field {field!r}")
    return kind


def validate(conditions: Mapping[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """Return the conditions in their stored form, or raise ConditionError."""
    conditions = conditions or {}
    unknown = set(conditions) - {"all", "any"}
    if unknown:
        raise ConditionError(f"unknown group {sorted(unknown)[0]!r}; use 'all' and 'any'")
    result: dict[str, list[dict[str, Any]]] = {"all": [], "any": []}
    for group in ("all", "any"):
        items = conditions.get(group) or []
        if not isinstance(items, list):
            raise ConditionError(f"'{group}' is a list of conditions")
        for item in items:
            result[group].append(_validate_one(item))
    if len(result["all"]) + len(result["any"]) > MAX_CONDITIONS:
        raise ConditionError(f"at most {MAX_CONDITIONS} conditions")
    return result


def _validate_one(item: Any) -> dict[str, Any]:
    if not isinstance(item, Mapping) or set(item) - {"field", "op", "value"}:
        raise ConditionError("a condition is {field, op, value}")
    field = str(item.get("field", ""))
    op = str(item.get("op", ""))
    kind = kind_of(field)
    if op not in OPERATORS[kind]:
        raise ConditionError(f"{field!r} cannot use {op!r}")
    value = item.get("value")
    if op in ("present", "absent"):
        return {"field": field, "op": op, "value": None}
    if op in ("in", "not_in") and not isinstance(value, list):
        raise ConditionError(f"{field!r} {op!r} takes a list")
    if op in ("gt", "gte", "lt", "lte") and not isinstance(value, int | float):
        raise ConditionError(f"{field!r} {op!r} takes a number")
    if kind == "flag" and not isinstance(value, bool):
        raise ConditionError(f"{field!r} takes true or false")
    if op == "matches":
        if not isinstance(value, str) or len(value) > MAX_PATTERN:
            raise ConditionError(f"the pattern of {field!r} is text of at most {MAX_PATTERN} characters")
        try:
            re.compile(value)
        except re.error as exc:
            raise ConditionError(f"the pattern of {field!r} is not valid: {exc}") from exc
    if value is None:
        raise ConditionError(f"{field!r} {op!r} needs a value")
    return {"field": field, "op": op, "value": value}


def lookup(facts: Mapping[str, Any], field: str) -> Any:
    if field.startswith(ATTRIBUTE_PREFIX):
        attributes = facts.get("contact.attributes") or {}
        return attributes.get(field[len(ATTRIBUTE_PREFIX) :])
    return facts.get(field)


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def check(condition: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """Whether one condition holds for these facts (a missing fact never matches, except absent)."""
    op = condition["op"]
    actual = lookup(facts, condition["field"])
    wanted: Any = condition.get("value")
    empty = actual is None or actual == "" or actual == []
    if op == "present":
        return not empty
    if op == "absent":
        return empty
    if op in ("ne", "not_in", "not_contains"):
        positive = {"ne": "eq", "not_in": "in", "not_contains": "contains"}[op]
        return not check({**condition, "op": positive}, facts)
    if actual is None:
        return False
    if op == "eq":
        return bool(_fold(actual) == _fold(wanted))
    if op == "in":
        return _fold(actual) in {_fold(v) for v in wanted}
    if op == "contains":
        if isinstance(actual, list):
            return _fold(wanted) in {_fold(v) for v in actual}
        return isinstance(wanted, str) and wanted.casefold() in str(actual).casefold()
    if op == "starts_with":
        return str(actual).casefold().startswith(str(wanted).casefold())
    if op == "matches":
        return re.search(str(wanted), str(actual)[:MATCH_WINDOW], re.IGNORECASE) is not None
    if not isinstance(actual, int | float) or isinstance(actual, bool):
        return False
    if op == "gt":
        return bool(actual > wanted)
    if op == "gte":
        return bool(actual >= wanted)
    if op == "lt":
        return bool(actual < wanted)
    return bool(actual <= wanted)


def evaluate(conditions: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """Whether a rule's conditions hold: all of "all", and one of "any" when it has any."""
    if not all(check(c, facts) for c in conditions.get("all") or []):
        return False
    options = conditions.get("any") or []
    return not options or any(check(c, facts) for c in options)


def fields_used(conditions: Mapping[str, Any]) -> set[str]:
    return {c["field"] for group in ("all", "any") for c in conditions.get(group) or []}
