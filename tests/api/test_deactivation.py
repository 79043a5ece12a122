"""Deactivating an agent ends their access and keeps or hands back their conversations."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support import Api


@pytest.mark.parametrize("choice", ["unassign", "keep"])
def test_deactivation_ends_sessions_and_tokens_and_applies_the_choice(
    api: Api, app_client: TestClient, choice: str
) -> None:
    # given: an agent with a browser session, a token, an open conversation and a reply in it
    channel = api.api_channel()
    ana = api.as_new_agent("ana@example.com")
    browser = TestClient(app_client.app, client=("198.51.100.4", 50000))
    credentials = {"email": "ana@example.com", "password": "correct horse battery"}
    signed_in = browser.post("/api/v1/auth/login", json=credentials)
    assert signed_in.status_code == 200
    api.inbound(channel, "c1", "hello")
    conversation = api.conversations()[0]["id"]
    api.ok(api.patch(f"/api/v1/conversations/{conversation}", {"assignee_id": ana.agent_id}))
    ana.ok(ana.post(f"/api/v1/conversations/{conversation}/notes", {"body": "looking into it"}), 201)
    # when
    answer = api.patch(f"/api/v1/agents/{ana.agent_id}", {"active": False, "conversations": choice})
    # then
    assert answer.status_code == 200 and answer.json()["active"] is False
    assert browser.get("/api/v1/auth/me").status_code == 401
    assert ana.get("/api/v1/auth/me").status_code == 401
    detail = api.ok(api.get(f"/api/v1/conversations/{conversation}"))
    assert detail["assignee_id"] == (None if choice == "unassign" else ana.agent_id)
    assert any(m["body"] == "looking into it" for m in api.timeline(conversation))
    audit = api.ok(api.get("/api/v1/admin/audit", params={"kind": "agent.deactivated"}))["items"]
    assert audit[0]["data"]["conversations"] == choice and audit[0]["actor_agent_id"] == api.agent_id
    # and reactivating does not bring the old sessions or tokens back
    api.ok(api.patch(f"/api/v1/agents/{ana.agent_id}", {"active": True}))
    assert browser.get("/api/v1/auth/me").status_code == 401
    assert ana.get("/api/v1/auth/me").status_code == 401


def test_an_unknown_choice_is_refused(api: Api) -> None:
    # given
    ana = api.as_new_agent("ana@example.com")
    # when
    answer = api.patch(f"/api/v1/agents/{ana.agent_id}", {"active": False, "conversations": "delete"})
    # then
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "payload_invalid"
