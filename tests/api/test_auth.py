"""Sign-in, sessions with CSRF protection, tokens, roles and rate limits."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import Api


def _login(client: TestClient, email: str = "admin@example.com", password: str = "correct horse battery") -> dict:  # type: ignore[type-arg]
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def test_session_login_requires_csrf_for_writes(api: Api, app_client: TestClient) -> None:
    # given: a browser session
    me = _login(app_client)
    # when
    without = app_client.post("/api/v1/channels", json={"kind": "api", "name": "x"})
    wrong = app_client.post("/api/v1/channels", json={"kind": "api", "name": "x"}, headers={"X-CSRF-Token": "nope"})
    right = app_client.post(
        "/api/v1/channels", json={"kind": "api", "name": "x"}, headers={"X-CSRF-Token": me["csrf_token"]}
    )
    read = app_client.get("/api/v1/channels")
    # then
    assert without.status_code == 403 and without.json()["error"]["code"] == "csrf_failed"
    assert wrong.status_code == 403
    assert right.status_code == 201
    assert read.status_code == 200 and len(read.json()) == 1
    assert "HttpOnly" in app_client.cookies.jar.__repr__() or app_client.cookies.get("hilo_session")


def test_logout_ends_the_session(api: Api, app_client: TestClient) -> None:
    # given
    me = _login(app_client)
    # when
    app_client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]})
    # then
    response = app_client.get("/api/v1/auth/me")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


def test_wrong_password_and_rate_limit(api: Api, app_client: TestClient) -> None:
    # given: the tests' limit is 5 attempts a minute per address
    statuses = []
    # when
    for _ in range(6):
        response = app_client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "wrong"})
        statuses.append(response.status_code)
    # then
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    blocked = app_client.post(
        "/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"}
    )
    assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "rate_limited"


def test_unknown_token_and_no_credentials_are_refused(app_client: TestClient) -> None:
    # when
    anonymous = app_client.get("/api/v1/conversations")
    bad = app_client.get("/api/v1/conversations", headers={"Authorization": "Bearer hilo_nope"})
    # then
    assert anonymous.status_code == 401
    assert bad.status_code == 401


def test_tokens_are_stored_hashed_and_work(api: Api, app_client: TestClient) -> None:
    # given
    created = api.ok(api.post("/api/v1/auth/tokens", {"name": "zapier"}), 201)
    # when
    me = app_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {created['token']}"})
    listed = api.ok(api.get("/api/v1/auth/tokens"))
    # then
    assert me.status_code == 200 and me.json()["email"] == "admin@example.com"
    assert all("token" not in t for t in listed)
    runtime = app_client.app.state.runtime  # type: ignore[attr-defined]
    from sqlalchemy import select

    from hilo.agents.models import ApiToken

    with runtime.db.read() as session:
        hashes = session.execute(select(ApiToken.token_hash)).scalars().all()
    assert created["token"] not in hashes and len(hashes) == 2


def test_revoked_token_and_deactivated_agent_are_refused_at_once(api: Api, app_client: TestClient) -> None:
    # given: a second token in use, and an agent signed in with their own token
    created = api.ok(api.post("/api/v1/auth/tokens", {"name": "zapier"}), 201)
    zapier = {"Authorization": f"Bearer {created['token']}"}
    agent = api.as_new_agent("leaving@example.com")
    assert app_client.get("/api/v1/conversations", headers=zapier).status_code == 200
    assert agent.get("/api/v1/conversations").status_code == 200
    # when: the token is revoked and the agent deactivated (both answers were cached)
    revoked = api.client.delete(f"/api/v1/auth/tokens/{created['id']}", headers=api.headers)
    api.ok(api.patch(f"/api/v1/agents/{agent.agent_id}", {"active": False}))
    # then
    assert revoked.status_code == 204
    refused = app_client.get("/api/v1/conversations", headers=zapier)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_authenticated"
    assert agent.get("/api/v1/conversations").status_code == 401
    listed = {t["id"]: t for t in api.ok(api.get("/api/v1/auth/tokens"))}
    assert listed[created["id"]]["revoked"] is True
    assert api.get("/api/v1/conversations").status_code == 200


def test_a_token_is_revoked_only_by_its_owner(api: Api) -> None:
    # given
    created = api.ok(api.post("/api/v1/auth/tokens", {"name": "mine"}), 201)
    other = api.as_new_agent("other@example.com")
    # when
    answer = other.client.delete(f"/api/v1/auth/tokens/{created['id']}", headers=other.headers)
    # then
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    mine = {"Authorization": f"Bearer {created['token']}"}
    assert api.client.get("/api/v1/auth/me", headers=mine).status_code == 200


def test_only_admins_manage_agents_teams_and_channels(api: Api) -> None:
    # given
    agent = api.as_new_agent("agent@example.com", role="agent")
    supervisor = api.as_new_agent("super@example.com", role="supervisor")
    # when
    attempts = [
        agent.post("/api/v1/agents", {"email": "x@example.com", "name": "X", "password": "long enough pw"}),
        supervisor.post("/api/v1/teams", {"name": "Sales"}),
        agent.post("/api/v1/channels", {"kind": "api", "name": "x"}),
    ]
    created = api.post(
        "/api/v1/agents", {"email": "x@example.com", "name": "X", "password": "long enough pw", "locale": "es"}
    )
    # then
    assert [a.status_code for a in attempts] == [403, 403, 403]
    assert attempts[0].json()["error"]["code"] == "forbidden"
    assert created.status_code == 201
    assert (
        api.post("/api/v1/agents", {"email": "x@example.com", "name": "X", "password": "long enough pw"}).status_code
        == 409
    )
    assert (
        api.post("/api/v1/agents", {"email": "y@example.com", "name": "Y", "password": "short"}).json()["error"]["code"]
        == "password_too_short"
    )


def test_errors_are_translated_for_spanish_agents(api: Api) -> None:
    # given
    agent = api.as_new_agent("lucia@example.com", role="agent")
    api.ok(agent.patch("/api/v1/auth/me", {"locale": "es"}))
    # when
    response = agent.post("/api/v1/channels", {"kind": "api", "name": "x"})
    # then
    assert response.json()["error"] == {"code": "forbidden", "message": "Solo los administradores pueden hacer esto."}


def test_agent_sees_only_own_team_and_unassigned_in_list_and_detail(api: Api) -> None:
    # given: two teams; a conversation for each and one with no team
    channel = api.api_channel()
    sales = api.ok(api.post("/api/v1/teams", {"name": "Sales"}), 201)
    billing = api.ok(api.post("/api/v1/teams", {"name": "Billing"}), 201)
    agent = api.as_new_agent("ana@example.com")
    api.ok(api.put(f"/api/v1/teams/{sales['id']}/members", {"member_ids": [agent.agent_id]}))
    for ext in ("s", "b", "n"):
        api.inbound(channel, ext, f"hello {ext}")
    by_text = {api.timeline(c["id"])[0]["body"]: c["id"] for c in api.conversations()}
    api.ok(api.patch(f"/api/v1/conversations/{by_text['hello s']}", {"team_id": sales["id"]}))
    api.ok(api.patch(f"/api/v1/conversations/{by_text['hello b']}", {"team_id": billing["id"]}))
    # when
    visible = {c["id"] for c in agent.conversations()}
    detail = {cid: agent.get(f"/api/v1/conversations/{cid}").status_code for cid in by_text.values()}
    # then
    assert visible == {by_text["hello s"], by_text["hello n"]}
    assert detail == {by_text["hello s"]: 200, by_text["hello b"]: 404, by_text["hello n"]: 200}
    assert agent.get(f"/api/v1/conversations/{by_text['hello b']}/messages").status_code == 404
