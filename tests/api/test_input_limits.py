"""Input no column can hold is refused with a stable code, never a server error."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.support import Api

TOO_BIG = 427549089724386770944  # beyond a signed 64-bit integer


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/conversations/{TOO_BIG}/messages",
        f"/api/v1/contacts/{TOO_BIG}",
        f"/api/v1/business-hours/{TOO_BIG}",
        f"/api/v1/conversations/1/messages?before={TOO_BIG}",
    ],
)
def test_ids_beyond_64_bits_in_path_or_query_are_refused(api: Api, path: str) -> None:
    # when
    response = api.get(path)
    # then
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "number_out_of_range"


def test_numbers_beyond_64_bits_in_a_body_are_refused(api: Api) -> None:
    # given
    policy = {"name": "Gold", "first_response_seconds": 1800}
    # when: beyond 64 bits, and beyond the 32-bit column that keeps the position
    too_big = api.post("/api/v1/sla-policies", {**policy, "position": TOO_BIG})
    too_big_for_column = api.post("/api/v1/sla-policies", {**policy, "position": 2**40})
    # then
    assert too_big.status_code == 422, too_big.text
    assert too_big.json()["error"]["code"] == "number_out_of_range"
    assert too_big_for_column.status_code == 422, too_big_for_column.text
    assert api.ok(api.get("/api/v1/sla-policies")) == []


@pytest.mark.parametrize("cursor", ["null", "-1", str(TOO_BIG), "é"])
def test_bad_contact_cursor_is_refused(api: Api, cursor: str) -> None:
    # when
    response = api.get("/api/v1/contacts", params={"cursor": cursor})
    # then
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_bad_conversation_cursor_is_refused(api: Api) -> None:
    # when
    response = api.get("/api/v1/conversations", params={"cursor": "null"})
    # then
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_text_with_nul_is_refused_everywhere(api: Api) -> None:
    # given
    channel = api.api_channel()
    api.inbound(channel, "ana", "hello", email="ana@example.com")
    [conversation] = api.conversations()
    contact_path = f"/api/v1/contacts/{conversation['contact_id']}"
    # when
    responses = [
        api.patch(contact_path, {"name": "Ana\x00"}),
        api.patch(contact_path, {"custom_attributes": {"plan": "gold\x00"}}),
        api.patch(contact_path, {"custom_attributes": {"pl\x00an": "gold"}}),
        api.get("/api/v1/contacts", params={"q": "an\x00a"}),
        api.post(
            "/api/v1/agents",
            {"email": "bea@example.com", "name": "Bea\x00", "password": "a long enough password", "role": "agent"},
        ),
    ]
    # then
    for response in responses:
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "text_has_nul"
    assert api.ok(api.get(contact_path))["name"] != "Ana\x00"


def test_failing_statement_never_shows_its_values(
    api: Api, app_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    # given: a statement the database refuses, bound to a secret value
    runtime = app_client.app.state.runtime  # type: ignore[attr-defined]
    statement = text("INSERT INTO no_such_table (hash) VALUES (:hash)")
    # when
    with caplog.at_level(logging.DEBUG), pytest.raises(DBAPIError) as failure, runtime.db.session() as session:
        session.execute(statement, {"hash": "$argon2id$v=19$secret"})
    # then
    assert "argon2id" not in str(failure.value)
    assert "argon2id" not in caplog.text


def test_mention_of_an_impossible_agent_id_does_not_drop_the_other_notifications(
    api: Api, app_client: TestClient
) -> None:
    # given: a conversation, and a second agent
    channel = api.api_channel()
    api.inbound(channel, "ana", "hello", email="ana@example.com")
    [conversation] = api.conversations()
    bea = api.as_new_agent("bea@example.com", role="admin")
    notes = f"/api/v1/conversations/{conversation['id']}/notes"
    # when: a note names an id beyond 64 bits, another an unknown agent and Bea
    refused = api.post(notes, {"body": "look", "mentions": [TOO_BIG, bea.agent_id]})
    stored = api.ok(api.post(notes, {"body": "look @Bea", "mentions": [987654321, bea.agent_id]}), 201)
    # and: an event naming an id no row can have reaches the notifier in the same batch
    notifier = app_client.app.state.notifier  # type: ignore[attr-defined]
    event = {
        "type": "message.created",
        "direction": "note",
        "conversation_id": conversation["id"],
        "message_id": stored["id"],
        "actor_agent_id": api.agent_id,
        "preview": "look @Bea",
    }
    notifier.handle([{**event, "mentions": [TOO_BIG]}, {**event, "mentions": [bea.agent_id]}])
    app_client.app.state.notifier.drain()  # type: ignore[attr-defined]
    # then
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "number_out_of_range"
    kinds = [n["kind"] for n in api.ok(bea.get("/api/v1/notifications"))["items"]]
    assert kinds == ["mention", "mention"]
