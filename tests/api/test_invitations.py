"""Invitations: an admin invites by e-mail; the invitee chooses a password and is signed in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hilo.app import create_app
from hilo.clock import FrozenClock
from hilo.settings import Settings
from tests.api.mail_support import LINK, mails, run_jobs, token_in
from tests.api.test_sessions import browser
from tests.channels.email_servers import SmtpServer, smtp_server_fixture  # noqa: F401 - the "smtp_server" fixture
from tests.conftest import make_settings
from tests.support import Api

CHOSEN = "my very own password"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_server: SmtpServer) -> Settings:
    return make_settings(database_url, tmp_path / "data", smtp_url=f"smtp://127.0.0.1:{smtp_server.port}")


def invite(api: Api, email: str = "nora@example.com", **extra: Any) -> Any:
    return api.post("/api/v1/agents/invitations", {"email": email, "name": "Nora Nueva", **extra})


def accept(client: TestClient, token: str, password: str = CHOSEN, **extra: Any) -> Any:
    return client.post("/api/v1/auth/accept-invitation", json={"token": token, "password": password, **extra})


def code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def test_an_invitee_chooses_a_password_and_is_signed_in(
    api: Api, app_client: TestClient, smtp_server: SmtpServer
) -> None:
    # given: an admin invites a Spanish-speaking supervisor
    invited = api.ok(invite(api, "Nora@Example.com", role="supervisor", locale="es"), 201)
    assert invited["mailed"] is True and invited["link"] is None
    assert smtp_server.handler.messages == []
    run_jobs(app_client)
    [mail] = mails(smtp_server)
    token = token_in(mail)
    newcomer = browser(app_client, "192.0.2.30")
    # when
    page = newcomer.get(f"/accept-invitation?token={token}")
    joined = accept(newcomer, token, name="Nora N.")
    again = accept(browser(app_client, "192.0.2.31"), token)
    # then
    assert mail["To"] == "nora@example.com" and mail["Subject"] == "Admin te ha invitado a Hilo"
    assert page.status_code == 200 and "nora@example.com" in page.text and 'id="accept-form"' in page.text
    assert joined.status_code == 200, joined.text
    me = newcomer.get("/api/v1/auth/me").json()
    assert (me["email"], me["name"], me["role"], me["locale"]) == ("nora@example.com", "Nora N.", "supervisor", "es")
    assert code(again) == "invitation_used" and again.status_code == 400
    assert api.ok(api.get("/api/v1/agents/invitations")) == []
    kinds = {e["kind"] for e in api.ok(api.get("/api/v1/admin/audit"))["items"]}
    assert {"agent.invited", "agent.invitation_accepted", "agent.created"} <= kinds


def test_pending_invitations_are_listed_and_withdrawn(
    api: Api, app_client: TestClient, smtp_server: SmtpServer
) -> None:
    # given
    first = api.ok(invite(api, "one@example.com"), 201)
    second = api.ok(invite(api, "two@example.com"), 201)
    run_jobs(app_client)
    tokens = {m["To"]: token_in(m) for m in mails(smtp_server)}
    # when
    listed = api.ok(api.get("/api/v1/agents/invitations"))
    withdrawn = api.client.delete(f"/api/v1/agents/invitations/{first['id']}", headers=api.headers)
    twice = api.client.delete(f"/api/v1/agents/invitations/{first['id']}", headers=api.headers)
    refused = accept(app_client, tokens["one@example.com"])
    page = app_client.get(f"/accept-invitation?token={tokens['one@example.com']}")
    # then
    assert [i["id"] for i in listed] == [second["id"], first["id"]]
    assert withdrawn.status_code == 204 and twice.status_code == 404
    assert refused.status_code == 400 and code(refused) == "invitation_revoked"
    assert 'id="invitation-problem"' in page.text and 'id="accept-form"' not in page.text
    assert [i["email"] for i in api.ok(api.get("/api/v1/agents/invitations"))] == ["two@example.com"]


def test_a_new_invitation_replaces_the_earlier_one_and_links_expire_after_7_days(
    api: Api, app_client: TestClient, smtp_server: SmtpServer, clock: FrozenClock
) -> None:
    # given
    invite(api)
    run_jobs(app_client)
    invite(api)
    run_jobs(app_client)
    older, newer = (token_in(m) for m in mails(smtp_server))
    # when
    replaced = accept(app_client, older)
    clock.advance(days=7, minutes=1)
    expired = accept(app_client, newer)
    unknown = accept(app_client, "no-such-token")
    # then
    assert [code(r) for r in (replaced, expired, unknown)] == [
        "invitation_revoked",
        "invitation_expired",
        "invitation_invalid",
    ]
    assert api.ok(api.get("/api/v1/agents/invitations")) == []


def test_a_too_short_password_keeps_the_invitation(api: Api, app_client: TestClient, smtp_server: SmtpServer) -> None:
    # given
    invite(api)
    run_jobs(app_client)
    token = token_in(mails(smtp_server)[0])
    # when
    short = accept(app_client, token, "short")
    right = accept(app_client, token)
    # then
    assert short.status_code == 422 and code(short) == "password_too_short"
    assert right.status_code == 200


def test_only_admins_invite_and_existing_agents_are_not_invited(api: Api) -> None:
    # given
    agent = api.as_new_agent("agent@example.com")
    invitation = api.ok(invite(api), 201)
    # when
    answers = [
        agent.post("/api/v1/agents/invitations", {"email": "x@example.com", "name": "X"}),
        agent.get("/api/v1/agents/invitations"),
        agent.client.delete(f"/api/v1/agents/invitations/{invitation['id']}", headers=agent.headers),
    ]
    existing = invite(api, "agent@example.com")
    invalid = invite(api, "not an address")
    # then
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert existing.status_code == 409 and code(existing) == "agent_exists"
    assert invalid.status_code == 422


def test_without_a_mail_server_the_admin_gets_the_link_to_pass_on(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    # given
    app = create_app(make_settings(database_url, tmp_path / "nomail"), clock=clock)
    with TestClient(app) as client:
        api = Api.bootstrap(client)
        # when
        invited = api.ok(invite(api), 201)
        found = LINK.fullmatch(invited["link"])
        assert found
        newcomer = browser(client, "192.0.2.40")
        joined = accept(newcomer, found.group(1))
        admin = browser(client, "192.0.2.41")
        admin.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"})
        page = admin.get("/admin/agents")
        jobs = run_jobs(client)
    # then
    assert invited["mailed"] is False
    assert joined.status_code == 200 and newcomer.get("/api/v1/auth/me").json()["email"] == "nora@example.com"
    assert 'data-form="agent-invite"' in page.text and "This server cannot send e-mail" in page.text
    assert jobs == 0
