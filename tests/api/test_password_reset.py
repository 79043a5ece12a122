"""Password reset by e-mail: a single-use link that expires, mailed only after commit."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hilo.app import create_app
from hilo.clock import FrozenClock
from hilo.settings import Settings
from tests.api.mail_support import mails, run_jobs, token_in
from tests.api.test_sessions import PASSWORD, browser, sign_in
from tests.channels.email_servers import SmtpServer, smtp_server_fixture  # noqa: F401 - the "smtp_server" fixture
from tests.conftest import make_settings
from tests.support import Api

NEW_PASSWORD = "a fresh password 1"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_server: SmtpServer) -> Settings:
    return make_settings(
        database_url,
        tmp_path / "data",
        smtp_url=f"smtp://127.0.0.1:{smtp_server.port}",
        mail_from="Hilo <hilo@desk.example>",
    )


def ask(client: TestClient, email: str) -> object:
    return client.post("/api/v1/auth/password-reset", json={"email": email})


def confirm(client: TestClient, token: str, password: str = NEW_PASSWORD) -> object:
    return client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": password})


def test_a_mailed_link_sets_a_new_password_and_ends_every_session(
    api: Api, app_client: TestClient, smtp_server: SmtpServer
) -> None:
    # given: a Spanish-speaking agent signed in on a laptop
    api.ok(
        api.post(
            "/api/v1/agents",
            {"email": "bruno@example.com", "name": "Bruno", "password": PASSWORD, "locale": "es"},
        ),
        201,
    )
    laptop = browser(app_client)
    sign_in(laptop, "bruno@example.com")
    # when: he asks for a link
    asked = ask(browser(app_client, "192.0.2.20"), "Bruno@Example.com")
    # then: nothing is sent before the job runs; then one mail, in his language
    assert asked.status_code == 202, asked.text  # type: ignore[attr-defined]
    assert smtp_server.handler.messages == []
    assert run_jobs(app_client) == 1
    [mail] = mails(smtp_server)
    assert mail["To"] == "bruno@example.com" and mail["From"] == "Hilo <hilo@desk.example>"
    assert mail["Subject"] == "Elige una contraseña nueva para Hilo"
    # when: he follows it
    done = confirm(browser(app_client, "192.0.2.21"), token_in(mail))
    # then
    assert done.status_code == 200, done.text  # type: ignore[attr-defined]
    assert laptop.get("/api/v1/auth/me").status_code == 401
    old = browser(app_client, "192.0.2.22").post(
        "/api/v1/auth/login", json={"email": "bruno@example.com", "password": PASSWORD}
    )
    assert old.status_code == 401
    sign_in(browser(app_client, "192.0.2.23"), "bruno@example.com", NEW_PASSWORD)
    audit = api.ok(api.get("/api/v1/admin/audit"))["items"]
    kinds = [e["kind"] for e in audit if e["data"].get("agent_id") == laptop_agent_id(api)]
    assert "auth.password_reset" in kinds and "auth.password_reset_requested" in kinds


def laptop_agent_id(api: Api) -> int:
    return next(a["id"] for a in api.ok(api.get("/api/v1/agents")) if a["email"] == "bruno@example.com")


def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    api: Api, app_client: TestClient, smtp_server: SmtpServer
) -> None:
    # when
    known = ask(app_client, "admin@example.com")
    unknown = ask(app_client, "nobody@example.com")
    run_jobs(app_client)
    # then
    assert unknown.status_code == known.status_code == 202  # type: ignore[attr-defined]
    assert unknown.json() == known.json()  # type: ignore[attr-defined]
    assert [m["To"] for m in mails(smtp_server)] == ["admin@example.com"]


def test_a_link_works_once_expires_after_an_hour_and_a_newer_one_replaces_it(
    api: Api, app_client: TestClient, smtp_server: SmtpServer, clock: FrozenClock
) -> None:
    # given: two links asked one after the other, and a third one later
    ask(app_client, "admin@example.com")
    run_jobs(app_client)
    ask(app_client, "admin@example.com")
    run_jobs(app_client)
    older, newer = (token_in(m) for m in mails(smtp_server))
    # when
    replaced = confirm(app_client, older)
    used = confirm(app_client, newer)
    again = confirm(app_client, newer, "yet another password")
    unknown = confirm(app_client, "not-a-token")
    clock.advance(hours=2)
    ask(app_client, "admin@example.com")
    run_jobs(app_client)
    clock.advance(minutes=61)
    expired = confirm(app_client, token_in(mails(smtp_server)[-1]))
    # then
    codes = [
        r.json()["error"]["code"] if r.status_code != 200 else "ok" for r in (replaced, used, again, unknown, expired)
    ]  # type: ignore[attr-defined]
    assert codes == ["reset_token_used", "ok", "reset_token_used", "reset_token_invalid", "reset_token_expired"]
    assert all(r.status_code == 400 for r in (replaced, again, unknown, expired))  # type: ignore[attr-defined]


def test_a_too_short_password_keeps_the_link_usable(api: Api, app_client: TestClient, smtp_server: SmtpServer) -> None:
    # given
    ask(app_client, "admin@example.com")
    run_jobs(app_client)
    token = token_in(mails(smtp_server)[0])
    # when
    short = confirm(app_client, token, "short")
    right = confirm(app_client, token)
    # then
    assert short.status_code == 422 and short.json()["error"]["code"] == "password_too_short"  # type: ignore[attr-defined]
    assert right.status_code == 200  # type: ignore[attr-defined]


def test_requests_are_limited_per_email_address_and_per_client(
    api: Api, app_client: TestClient, smtp_server: SmtpServer
) -> None:
    # given: each from its own client address, three requests for one e-mail address
    answers = [ask(browser(app_client, f"198.51.100.{n}"), "admin@example.com").status_code for n in range(4)]  # type: ignore[attr-defined]
    # when: one client asks for many addresses (HILO_LOGIN_RATE_LIMIT is 5 in tests)
    client = browser(app_client, "203.0.113.50")
    spread = [ask(client, f"someone{n}@example.com") for n in range(6)]
    # then
    assert answers == [202, 202, 202, 429]
    assert [r.status_code for r in spread] == [202] * 5 + [429]  # type: ignore[attr-defined]
    assert "Retry-After" in spread[-1].headers  # type: ignore[attr-defined]
    run_jobs(app_client)
    assert len(mails(smtp_server)) == 3


def test_a_mail_the_server_refuses_for_now_is_sent_again(
    api: Api, app_client: TestClient, smtp_server: SmtpServer, clock: FrozenClock
) -> None:
    # given
    smtp_server.handler.refuse_next("451 4.3.0 Try again later")
    ask(app_client, "admin@example.com")
    # when
    run_jobs(app_client)
    first = list(smtp_server.handler.messages)
    clock.advance(seconds=30)
    run_jobs(app_client)
    # then
    assert first == []
    assert [m["To"] for m in mails(smtp_server)] == ["admin@example.com"]


def test_without_a_mail_server_the_form_says_so(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    # given
    app = create_app(make_settings(database_url, tmp_path / "nomail"), clock=clock)
    with TestClient(app) as client:
        # when
        answer = ask(client, "admin@example.com")
        page = client.get("/forgot-password")
        login = client.get("/login")
    # then
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "mail_not_configured"  # type: ignore[attr-defined]
    assert 'id="mail-not-configured"' in page.text and "HILO_SMTP_URL" in page.text
    assert 'id="forgot-form"' not in page.text
    assert 'href="/forgot-password"' in login.text
