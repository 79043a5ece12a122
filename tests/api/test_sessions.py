"""Sign-in sessions kept on the server: listed, revoked, ended by sign-out and password changes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.support import Api

PASSWORD = "correct horse battery"


def browser(app_client: TestClient, ip: str = "198.51.100.1") -> TestClient:
    """Another browser on the same server, from its own address."""
    return TestClient(app_client.app, client=(ip, 50000))


def sign_in(client: TestClient, email: str = "admin@example.com", password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_copied_cookie_stops_working_after_sign_out(api: Api, app_client: TestClient) -> None:
    # given: a signed-in browser, and a copy of its cookie elsewhere
    me = sign_in(app_client)
    thief = browser(app_client, "203.0.113.9")
    thief.cookies.set("hilo_session", app_client.cookies["hilo_session"])
    assert thief.get("/api/v1/auth/me").status_code == 200
    # when
    app_client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]})
    # then
    refused = thief.get("/api/v1/auth/me")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_authenticated"


def test_sessions_are_listed_with_the_current_one_marked_and_can_be_revoked(api: Api, app_client: TestClient) -> None:
    # given: two browsers signed in
    me = sign_in(app_client)
    laptop = browser(app_client)
    sign_in(laptop)
    # when
    listed = app_client.get("/api/v1/auth/sessions").json()
    other = next(s for s in listed if not s["current"])
    revoked = app_client.delete(f"/api/v1/auth/sessions/{other['id']}", headers={"X-CSRF-Token": me["csrf_token"]})
    # then
    assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
    assert other["ip"] == "198.51.100.1"
    assert revoked.status_code == 204
    assert laptop.get("/api/v1/auth/me").status_code == 401
    assert app_client.get("/api/v1/auth/me").status_code == 200
    assert [s["current"] for s in app_client.get("/api/v1/auth/sessions").json()] == [True]


def test_a_session_of_someone_else_cannot_be_revoked(api: Api, app_client: TestClient) -> None:
    # given
    sign_in(app_client)
    mine = app_client.get("/api/v1/auth/sessions").json()[0]["id"]
    other = api.as_new_agent("other@example.com")
    # when
    answer = other.client.delete(f"/api/v1/auth/sessions/{mine}", headers=other.headers)
    # then
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "session_not_found"
    assert app_client.get("/api/v1/auth/me").status_code == 200


def test_password_change_needs_the_current_one_and_ends_the_other_sessions(api: Api, app_client: TestClient) -> None:
    # given: the agent is signed in on two browsers
    me = sign_in(app_client)
    laptop = browser(app_client)
    sign_in(laptop)
    csrf = {"X-CSRF-Token": me["csrf_token"]}
    # when
    without = app_client.patch("/api/v1/auth/me", json={"password": "a brand new password"}, headers=csrf)
    wrong = app_client.patch(
        "/api/v1/auth/me", json={"password": "a brand new password", "current_password": "nope"}, headers=csrf
    )
    right = app_client.patch(
        "/api/v1/auth/me", json={"password": "a brand new password", "current_password": PASSWORD}, headers=csrf
    )
    # then
    assert without.status_code == 403 and without.json()["error"]["code"] == "password_wrong"
    assert wrong.status_code == 403
    assert right.status_code == 200, right.text
    assert app_client.get("/api/v1/auth/me").status_code == 200
    assert laptop.get("/api/v1/auth/me").status_code == 401
    sign_in(browser(app_client, "192.0.2.50"), password="a brand new password")


def test_password_cannot_be_changed_with_an_api_token(api: Api) -> None:
    # when
    answer = api.patch("/api/v1/auth/me", {"password": "a brand new password", "current_password": PASSWORD})
    # then
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "password_needs_session"
    assert api.patch("/api/v1/auth/me", {"name": "Still Works"}).status_code == 200


def test_an_admin_revokes_all_sessions_of_an_agent(api: Api, app_client: TestClient) -> None:
    # given
    api.as_new_agent("ana@example.com")
    ana = browser(app_client)
    sign_in(ana, "ana@example.com")
    ana_id = ana.get("/api/v1/auth/me").json()["id"]
    # when
    answer = api.client.delete(f"/api/v1/agents/{ana_id}/sessions", headers=api.headers)
    # then
    assert answer.status_code == 200 and answer.json() == {"revoked": 1}
    assert ana.get("/api/v1/auth/me").status_code == 401


def test_only_admins_revoke_the_sessions_of_others(api: Api) -> None:
    # given
    agent = api.as_new_agent("agent@example.com")
    # when
    answer = agent.client.delete(f"/api/v1/agents/{api.agent_id}/sessions", headers=agent.headers)
    # then
    assert answer.status_code == 403


def test_the_websocket_refuses_a_revoked_session_and_closes_a_live_one(api: Api, app_client: TestClient) -> None:
    # given: a live socket opened with the session cookie
    me = sign_in(app_client)
    copy = browser(app_client, "203.0.113.9")
    copy.cookies.set("hilo_session", app_client.cookies["hilo_session"])
    with copy.websocket_connect("/api/v1/ws") as socket:
        assert socket.receive_json()["type"] == "hello"
        # when: the agent signs out
        app_client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]})
        # then: the live socket is closed (after the frames already on their way) and a new one is refused
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(10):
                socket.receive_json()
        assert closed.value.code == 4401
    with pytest.raises(WebSocketDisconnect) as refused, copy.websocket_connect("/api/v1/ws") as again:
        again.receive_json()
    assert refused.value.code == 4401


def test_last_seen_is_written_at_most_once_a_minute(api: Api, app_client: TestClient, clock: Any) -> None:
    # given: a session signed in at 09:00
    sign_in(app_client)
    runtime = app_client.app.state.runtime  # type: ignore[attr-defined]

    def last_seen() -> str:
        runtime.forget_principals()  # as if the few seconds a sign-in is remembered had passed
        sessions: list[dict[str, Any]] = app_client.get("/api/v1/auth/sessions").json()
        return str(sessions[0]["last_seen_at"])

    # when / then
    first = last_seen()
    clock.advance(seconds=30)
    assert last_seen() == first
    clock.advance(seconds=60)
    assert last_seen() > first
