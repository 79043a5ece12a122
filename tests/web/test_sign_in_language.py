"""Before anyone signs in, the sign-in page speaks the browser's language (Accept-Language)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.support import Api


def language(page: str) -> str:
    found = re.search(r'<html lang="(\w+)">', page)
    assert found
    return found.group(1)


@pytest.mark.parametrize(
    ("accept_language", "expected", "heading"),
    [
        ("es-ES,es;q=0.9", "es", "Entra en tu bandeja"),
        ("es-MX", "es", "Entra en tu bandeja"),
        ("fr-FR,fr;q=0.9,es;q=0.8,en;q=0.5", "es", "Entra en tu bandeja"),
        ("en-GB,en;q=0.9,es;q=0.8", "en", "Sign in to your inbox"),
        ("de-DE", "en", "Sign in to your inbox"),
        (None, "en", "Sign in to your inbox"),
    ],
)
def test_the_sign_in_page_follows_the_browsers_language(
    app_client: TestClient, accept_language: str | None, expected: str, heading: str
) -> None:
    # when: a browser that nobody has signed in on opens Hilo
    headers = {"accept-language": accept_language} if accept_language else {}
    page = app_client.get("/", headers=headers, follow_redirects=True)
    # then
    assert page.url.path == "/login"
    assert language(page.text) == expected
    assert f"<h1>{heading}</h1>" in page.text
    # a page in the visitor's language is never cached for another language
    assert "Accept-Language" in page.headers["vary"] and page.headers["cache-control"] == "no-store"


def test_a_language_chosen_on_the_page_wins_for_that_browser_only(app_client: TestClient) -> None:
    # given: a Spanish browser that chose English on the sign-in page
    spanish = {"accept-language": "es-ES,es;q=0.9"}
    app_client.get("/login?lang=en", headers=spanish)
    # when
    same_browser = app_client.get("/login", headers=spanish)
    app_client.cookies.clear()
    another_browser = app_client.get("/login", headers=spanish)
    # then
    assert language(same_browser.text) == "en"
    assert language(another_browser.text) == "es"


def test_after_signing_out_the_page_speaks_the_browsers_language_again(app_client: TestClient, api: Api) -> None:
    # given: an English-speaking agent signed in on a Spanish browser
    spanish = {"accept-language": "es-ES,es;q=0.9"}
    signed_in = app_client.post(
        "/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"}
    )
    csrf = signed_in.json()["csrf_token"]
    # when
    app_client.post("/api/v1/auth/logout", headers={"x-csrf-token": csrf})
    page = app_client.get("/login", headers=spanish)
    # then
    assert language(page.text) == "es"


def test_a_failed_sign_in_answers_in_the_pages_language(app_client: TestClient, api: Api) -> None:
    # when: the Spanish page posts a wrong password (its script sends its language)
    answer = app_client.post(
        "/api/v1/auth/login",
        json={"email": "admin@example.com", "password": "wrong password"},
        headers={"accept-language": "es"},
    )
    # then
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == "Correo o contraseña incorrectos."
