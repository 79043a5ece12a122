"""Rule conditions, reply variables and language guessing: pure logic."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from hilo.automation.conditions import ConditionError, evaluate, validate
from hilo.automation.language import detect
from hilo.automation.models import RULE_EVENTS
from hilo.automation.schemas import RuleEvent
from hilo.automation.variables import mapping_lookup, render

FACTS: dict[str, Any] = {
    "conversation.priority": "high",
    "conversation.labels": ["billing", "vip"],
    "conversation.message_count": 3,
    "contact.locale": "es",
    "contact.verified": True,
    "contact.attributes": {"plan": "Gold", "seats": 40},
    "message.text": "I want a refund for order 123",
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "conversation.priority", "op": "eq", "value": "HIGH"}, True),
        ({"field": "conversation.priority", "op": "in", "value": ["urgent", "high"]}, True),
        ({"field": "conversation.priority", "op": "not_in", "value": ["urgent", "high"]}, False),
        ({"field": "conversation.labels", "op": "contains", "value": "VIP"}, True),
        ({"field": "conversation.labels", "op": "not_contains", "value": "spam"}, True),
        ({"field": "conversation.message_count", "op": "gte", "value": 3}, True),
        ({"field": "conversation.message_count", "op": "lt", "value": 3}, False),
        ({"field": "message.text", "op": "matches", "value": r"order \d+"}, True),
        ({"field": "message.text", "op": "starts_with", "value": "i want"}, True),
        ({"field": "message.text", "op": "contains", "value": "invoice"}, False),
        ({"field": "contact.attributes.plan", "op": "eq", "value": "gold"}, True),
        ({"field": "contact.attributes.seats", "op": "gt", "value": 10}, True),
        ({"field": "contact.attributes.missing", "op": "absent"}, True),
        ({"field": "contact.attributes.missing", "op": "eq", "value": "x"}, False),
        ({"field": "contact.email", "op": "present"}, False),
        ({"field": "contact.verified", "op": "eq", "value": True}, True),
    ],
)
def test_each_operator(condition: dict[str, Any], expected: bool) -> None:
    assert evaluate(validate({"all": [condition]}), FACTS) is expected


def test_all_and_any_groups() -> None:
    # given
    conditions = validate(
        {
            "all": [{"field": "contact.locale", "op": "eq", "value": "es"}],
            "any": [
                {"field": "conversation.priority", "op": "eq", "value": "urgent"},
                {"field": "conversation.labels", "op": "contains", "value": "vip"},
            ],
        }
    )
    # then
    assert evaluate(conditions, FACTS)
    assert not evaluate(conditions, {**FACTS, "conversation.labels": []})
    assert evaluate(validate({}), FACTS)


@pytest.mark.parametrize(
    ("conditions", "problem"),
    [
        ({"all": [{"field": "nope", "op": "eq", "value": 1}]}, "unknown field"),
        ({"all": [{"field": "contact.verified", "op": "contains", "value": True}]}, "cannot use"),
        ({"all": [{"field": "contact.verified", "op": "eq", "value": "yes"}]}, "true or false"),
        ({"all": [{"field": "message.text", "op": "in", "value": "a"}]}, "takes a list"),
        ({"all": [{"field": "message.text", "op": "matches", "value": "(("}]}, "not valid"),
        ({"none": []}, "unknown group"),
    ],
)
def test_unusable_conditions_are_refused(conditions: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConditionError, match=problem):
        validate(conditions)


def test_variables_fill_with_fallbacks_and_never_run_code() -> None:
    # given
    lookup = mapping_lookup({"contact.first_name": "Ana", "contact.attributes": {"plan": "gold"}, "agent.name": ""})
    # when
    text = render(
        "Hi {{ contact.first_name }} ({{contact.attributes.plan}}), I'm {{agent.name|your agent}}. "
        "{{ unknown }}{{ __import__('os') }}",
        lookup,
    )
    # then
    assert text == "Hi Ana (gold), I'm your agent. {{ __import__('os') }}"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hola, necesito ayuda con mi pedido", "es"),
        ("¿Dónde está mi factura?", "es"),
        ("Hello, I need help with my order", "en"),
        ("Where is the invoice for my account?", "en"),
        ("OK", None),
        ("", None),
    ],
)
def test_language_guess(text: str, language: str | None) -> None:
    assert detect(text) == language


def test_the_api_accepts_exactly_the_rule_events_the_engine_knows() -> None:
    assert set(get_args(RuleEvent)) == set(RULE_EVENTS)
