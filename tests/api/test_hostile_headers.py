"""Secrets compared against what a stranger sends: non-ASCII values get the usual refusal, not a 500."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.support import Api
from tests.widget.test_widget_api import PNG
from tests.widget.widget_support import ORIGIN, SECRET, open_widget, token_of, widget_channel


def test_non_ascii_csrf_token_on_a_session_is_refused(api: Api, app_client: TestClient) -> None:
    # given: a browser session
    login = app_client.post(
        "/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"}
    )
    assert login.status_code == 200, login.text
    # when
    response = app_client.post(
        "/api/v1/channels", json={"kind": "api", "name": "x"}, headers={"X-CSRF-Token": "é".encode() * 8}
    )
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"


def test_non_ascii_widget_file_signature_is_not_found(api: Api, app_client: TestClient) -> None:
    # given
    token = token_of(widget_channel(api))
    # when
    response = app_client.get(f"/widget/{token}/files/1/%C3%A9")
    # then
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "attachment_not_found"


def test_non_ascii_user_hash_is_an_invalid_identity(api: Api, app_client: TestClient) -> None:
    # given: a site that signs its users, and a visitor with a session
    token = token_of(widget_channel(api, identity_secret=SECRET))
    with open_widget(app_client, token) as widget:
        visitor = widget.next_of("welcome")["visitor"]
    form = {"visitor": visitor, "client_id": str(uuid.uuid4()), "user_id": "u-1", "user_hash": "é" * 64}
    # when
    response = app_client.post(
        f"/widget/{token}/upload", data=form, files={"file": ("a.png", PNG, "image/png")}, headers={"origin": ORIGIN}
    )
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "identity_invalid"
