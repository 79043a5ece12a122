"""Two-factor sign-in: set up with an authenticator app, a second step at sign-in, recovery codes."""

from __future__ import annotations

from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import text

from hilo.clock import FrozenClock
from tests.api.test_sessions import PASSWORD, browser, sign_in
from tests.support import Api


def csrf_of(client: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.get("/api/v1/auth/me").json()["csrf_token"]}


def turn_on(client: TestClient, clock: FrozenClock) -> tuple[str, list[str]]:
    """Set two-factor sign-in up from a signed-in browser; returns the secret and the recovery codes."""
    headers = csrf_of(client)
    secret = client.post("/api/v1/auth/two-factor/setup", headers=headers).json()["secret"]
    confirmed = client.post(
        "/api/v1/auth/two-factor/confirm", json={"code": pyotp.TOTP(secret).at(clock.now())}, headers=headers
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret, confirmed.json()["recovery_codes"]


def password_step(client: TestClient, email: str = "admin@example.com") -> dict[str, Any]:
    answer = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def code_step(client: TestClient, code: str) -> Any:
    return client.post("/api/v1/auth/login/two-factor", json={"code": code})


def test_set_up_with_the_app_then_signing_in_takes_a_code(api: Api, app_client: TestClient, clock: FrozenClock) -> None:
    # given: a signed-in admin starts setting it up
    sign_in(app_client)
    headers = csrf_of(app_client)
    setup = app_client.post("/api/v1/auth/two-factor/setup", headers=headers).json()
    secret = setup["secret"]
    # when
    wrong = app_client.post("/api/v1/auth/two-factor/confirm", json={"code": "000000"}, headers=headers)
    right = app_client.post(
        "/api/v1/auth/two-factor/confirm", json={"code": pyotp.TOTP(secret).at(clock.now())}, headers=headers
    )
    # then: a QR code to scan, ten different recovery codes, the secret encrypted at rest
    assert setup["otpauth_uri"].startswith("otpauth://totp/Hilo:admin%40example.com?secret=")
    assert setup["qr_svg"].startswith("<svg")
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "two_factor_code_wrong"
    assert right.status_code == 200 and len(set(right.json()["recovery_codes"])) == 10
    runtime = app_client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.read() as session:
        stored = str(session.execute(text("SELECT secret FROM agent_two_factor")).scalar())
    assert secret not in stored
    # when: another browser signs in
    laptop = browser(app_client)
    first = password_step(laptop)
    between = laptop.get("/api/v1/auth/me")
    replayed = code_step(laptop, pyotp.TOTP(secret).at(clock.now()))
    clock.advance(seconds=30)
    second = code_step(laptop, pyotp.TOTP(secret).at(clock.now()))
    # then: the password alone is no session, a code is accepted once
    assert first == {"two_factor_required": True}
    assert between.status_code == 401
    assert replayed.status_code == 401 and replayed.json()["error"]["code"] == "two_factor_code_wrong"
    assert second.status_code == 200 and second.json()["csrf_token"]
    assert laptop.get("/api/v1/auth/me").json()["email"] == "admin@example.com"
    kinds = [e["kind"] for e in api.ok(api.get("/api/v1/admin/audit"))["items"]]
    assert "auth.two_factor_enabled" in kinds


def test_a_recovery_code_signs_in_once(api: Api, app_client: TestClient, clock: FrozenClock) -> None:
    # given
    sign_in(app_client)
    _secret, codes = turn_on(app_client, clock)
    phone_lost = browser(app_client)
    again = browser(app_client, "198.51.100.77")
    # when
    password_step(phone_lost)
    used = code_step(phone_lost, f" {codes[3].upper()} ")
    password_step(again)
    reused = code_step(again, codes[3])
    # then
    assert used.status_code == 200, used.text
    assert reused.status_code == 401
    audit = api.ok(api.get("/api/v1/admin/audit", params={"kind": "auth.recovery_code_used"}))["items"]
    assert [e["data"]["left"] for e in audit] == [9]
    status = app_client.get("/api/v1/auth/two-factor").json()
    assert status == {"enabled": True, "recovery_codes_left": 9, "required": False}


def test_code_guesses_are_throttled_and_the_pending_step_expires(
    api: Api, app_client: TestClient, clock: FrozenClock
) -> None:
    # given
    sign_in(app_client)
    secret, _codes = turn_on(app_client, clock)
    guesser = browser(app_client)
    slow = browser(app_client, "198.51.100.78")
    # when
    password_step(guesser)
    guesses = [code_step(guesser, f"{n:06d}").status_code for n in range(6)]
    password_step(slow)
    clock.advance(minutes=6)
    late = code_step(slow, pyotp.TOTP(secret).at(clock.now()))
    # then
    assert guesses == [401] * 5 + [429]
    assert late.status_code == 401 and late.json()["error"]["code"] == "two_factor_expired"


def test_turning_it_off_needs_the_password(api: Api, app_client: TestClient, clock: FrozenClock) -> None:
    # given
    sign_in(app_client)
    turn_on(app_client, clock)
    headers = csrf_of(app_client)
    # when
    wrong = app_client.post("/api/v1/auth/two-factor/disable", json={"password": "not it"}, headers=headers)
    right = app_client.post("/api/v1/auth/two-factor/disable", json={"password": PASSWORD}, headers=headers)
    # then
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "password_wrong"
    assert right.status_code == 200
    assert password_step(browser(app_client))["csrf_token"]
    kinds = [e["kind"] for e in api.ok(api.get("/api/v1/admin/audit"))["items"]]
    assert "auth.two_factor_disabled" in kinds


def test_when_required_agents_without_it_are_sent_to_set_it_up(
    api: Api, app_client: TestClient, clock: FrozenClock
) -> None:
    # given: an agent, and an admin who requires two-factor sign-in
    agent = api.as_new_agent("agent@example.com")
    refused_setting = agent.client.put(
        "/api/v1/admin/account-settings", json={"require_two_factor": True}, headers=agent.headers
    )
    api.ok(api.client.put("/api/v1/admin/account-settings", json={"require_two_factor": True}, headers=api.headers))
    # when: the agent signs in
    signed = password_step(app_client, "agent@example.com")
    inbox = app_client.get("/inbox", follow_redirects=False)
    listing = app_client.get("/api/v1/conversations")
    page = app_client.get("/account/two-factor")
    turn_on(app_client, clock)
    # then: only setting it up works until it is on
    assert refused_setting.status_code == 403
    assert signed["two_factor_setup_required"] is True
    assert inbox.status_code == 303 and inbox.headers["location"] == "/account/two-factor"
    assert listing.status_code == 403 and listing.json()["error"]["code"] == "two_factor_setup_required"
    assert page.status_code == 200 and 'id="two-factor-required"' in page.text
    assert app_client.get("/inbox").status_code == 200
    assert app_client.get("/api/v1/conversations").status_code == 200


def test_setting_it_up_needs_a_browser_session(api: Api) -> None:
    # when
    answer = api.post("/api/v1/auth/two-factor/setup")
    # then
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "two_factor_needs_session"
