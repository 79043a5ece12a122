"""The account page: an agent changes their own password and language."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.test_sessions import browser, sign_in
from tests.support import Api


def test_the_account_page_is_in_the_user_menu_and_needs_sign_in(api: Api, app_client: TestClient) -> None:
    # given
    stranger = browser(app_client, "203.0.113.7")
    sign_in(app_client)
    # when
    page = app_client.get("/account")
    inbox = app_client.get("/inbox")
    refused = stranger.get("/account", follow_redirects=False)
    # then
    assert page.status_code == 200
    assert 'data-form="account-password"' in page.text and 'name="current_password"' in page.text
    assert 'href="/account"' in inbox.text
    assert refused.status_code == 303 and refused.headers["location"] == "/login?next=%2Faccount"


def test_a_language_saved_on_the_account_page_switches_the_pages(api: Api, app_client: TestClient) -> None:
    # given
    me = sign_in(app_client)
    # when
    saved = app_client.patch("/api/v1/auth/me", json={"locale": "es"}, headers={"X-CSRF-Token": me["csrf_token"]})
    page = app_client.get("/account")
    # then
    assert saved.status_code == 200 and saved.json()["locale"] == "es"
    assert '<html lang="es"' in page.text
    assert "Contraseña e idioma" in page.text
    assert '<option value="es" lang="es" selected>Español</option>' in page.text
