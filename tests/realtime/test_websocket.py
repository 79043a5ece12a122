"""The agent websocket pushes committed changes to the agents allowed to see them."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.support import Api


def _next_of(ws: Any, kind: str) -> dict[str, Any]:
    for _ in range(20):
        event = ws.receive_json()
        if event["type"] == kind:
            return event
    raise AssertionError(f"no {kind} event")


def test_new_message_and_status_change_reach_the_agent(api: Api, app_client: TestClient) -> None:
    # given
    channel = api.api_channel()
    with app_client.websocket_connect(f"/api/v1/ws?token={api.token}") as ws:
        assert ws.receive_json()["type"] == "hello"
        # when
        api.inbound(channel, "w", "¿Hola?")
        created = _next_of(ws, "message.created")
        api.ok(api.patch(f"/api/v1/conversations/{created['conversation_id']}", {"status": "resolved"}))
        changed = _next_of(ws, "conversation.status_changed")
    # then
    assert created["direction"] == "inbound" and created["preview"] == "¿Hola?"
    assert changed["status"] == "resolved"


def test_agent_of_another_team_does_not_receive_the_event(api: Api, app_client: TestClient) -> None:
    # given: a conversation of team Billing; an agent only in Sales
    channel = api.api_channel()
    billing = api.ok(api.post("/api/v1/teams", {"name": "Billing"}), 201)
    api.ok(api.post("/api/v1/teams", {"name": "Sales"}), 201)
    agent = api.as_new_agent("sales@example.com")
    api.inbound(channel, "t", "first")
    [conversation] = api.conversations()
    api.ok(api.patch(f"/api/v1/conversations/{conversation['id']}", {"team_id": billing["id"]}))
    with app_client.websocket_connect(f"/api/v1/ws?token={agent.token}") as ws:
        ws.receive_json()
        # when: a message in the Billing conversation, then one in a new, unassigned conversation
        api.inbound(channel, "t", "billing only")
        api.inbound(channel, "u", "for everyone")
        event = _next_of(ws, "message.created")
    # then: the first event this agent sees is the unassigned one
    assert event["preview"] == "for everyone"


def test_websocket_refuses_bad_token_and_foreign_origin(app_client: TestClient) -> None:
    import pytest
    from starlette.websockets import WebSocketDisconnect

    bad_token = app_client.websocket_connect("/api/v1/ws?token=hilo_wrong")
    with pytest.raises(WebSocketDisconnect) as refused_token, bad_token as ws:
        ws.receive_json()
    foreign = app_client.websocket_connect("/api/v1/ws", headers={"origin": "https://evil.example"})
    with pytest.raises(WebSocketDisconnect) as refused_origin, foreign as ws:
        ws.receive_json()
    assert refused_token.value.code == 4401
    assert refused_origin.value.code == 4403
