"""The audit log: security events recorded by the actions, read and filtered by admins."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import Api

PASSWORD = "correct horse battery"


def test_security_actions_are_recorded_and_filtered(api: Api, app_client: TestClient) -> None:
    # given: a sign-in, a failed one, a role change, a token, a secret change and a sign-out
    ana = api.as_new_agent("ana@example.com")
    browser = TestClient(app_client.app, client=("198.51.100.4", 50000))
    browser.post("/api/v1/auth/login", json={"email": "ana@example.com", "password": "wrong"})
    me = browser.post("/api/v1/auth/login", json={"email": "ana@example.com", "password": PASSWORD}).json()
    browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]})
    api.ok(api.patch(f"/api/v1/agents/{ana.agent_id}", {"role": "supervisor"}))
    token = api.ok(api.post("/api/v1/auth/tokens", {"name": "zapier"}), 201)
    api.client.delete(f"/api/v1/auth/tokens/{token['id']}", headers=api.headers)
    channel = api.api_channel()
    api.ok(api.patch(f"/api/v1/channels/{channel['id']}", {"settings": {"secret": "a new signing secret 123"}}))
    # when
    about_ana = api.ok(api.get("/api/v1/admin/audit", params={"agent_id": ana.agent_id}))["items"]
    everything = api.ok(api.get("/api/v1/admin/audit"))["items"]
    failed = api.ok(api.get("/api/v1/admin/audit", params={"kind": "auth.sign_in_failed"}))["items"]
    # then
    assert [e["kind"] for e in about_ana] == [
        "agent.role_changed",
        "auth.signed_out",
        "auth.signed_in",
        "auth.sign_in_failed",
        "token.created",
        "agent.created",
    ]
    kinds = {e["kind"] for e in everything}
    assert {"token.created", "token.revoked", "channel.secret_changed"} <= kinds
    assert "conversation.assigned" not in kinds
    assert failed[0]["data"]["ip"] == "198.51.100.4" and failed[0]["data"]["email"] == "ana@example.com"
    secret = next(e for e in everything if e["kind"] == "channel.secret_changed")
    assert "a new signing secret 123" not in str(secret)


def test_the_audit_log_pages_with_a_cursor_and_filters_by_date(api: Api, app_client: TestClient, clock) -> None:  # type: ignore[no-untyped-def]
    # given: five agents added, the last two a day later
    for n in range(5):
        if n == 3:
            clock.advance(days=1)
        api.as_new_agent(f"agent{n}@example.com")
    # when
    first = api.ok(api.get("/api/v1/admin/audit", params={"kind": "agent.created", "limit": 4}))
    rest = api.ok(
        api.get("/api/v1/admin/audit", params={"kind": "agent.created", "limit": 4, "cursor": first["next_cursor"]})
    )
    since = {"kind": "agent.created", "since": "2026-03-03T00:00:00+00:00"}
    recent = api.ok(api.get("/api/v1/admin/audit", params=since))["items"]
    # then: six agents in all (the admin too)
    assert len(first["items"]) == 4 and len(rest["items"]) == 2 and rest["next_cursor"] is None
    assert {e["id"] for e in first["items"]}.isdisjoint(e["id"] for e in rest["items"])
    assert len(recent) == 2


def test_only_admins_read_the_audit_log(api: Api) -> None:
    # given
    supervisor = api.as_new_agent("super@example.com", role="supervisor")
    # when
    answer = supervisor.get("/api/v1/admin/audit")
    unknown = api.get("/api/v1/admin/audit", params={"kind": "message.created"})
    # then
    assert answer.status_code == 403
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "kind_invalid"
