"""Counts on pages take the form of their number, in English and Spanish (ngettext)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hilo.clock import FrozenClock
from hilo.web import admin_automation
from hilo.web.rendering import JS_PLURALS
from tests.support import Api

STATIC = Path(__file__).parents[2] / "hilo" / "web" / "static"
COUNTED = re.compile(r'\btn\(\s*"([^"]+)",\s*"([^"]+)"')


def sign_in(client: TestClient) -> None:
    credentials = {"email": "admin@example.com", "password": "correct horse battery"}
    assert client.post("/api/v1/auth/login", json=credentials).status_code == 200


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize(("locale", "one", "two"), [("en", "1 member", "2 members"), ("es", "1 miembro", "2 miembros")])
def test_teams_count_their_members_in_the_right_form(
    app_client: TestClient, api: Api, locale: str, one: str, two: str
) -> None:
    # given: a team of one and a team of two
    api.ok(api.patch("/api/v1/auth/me", {"locale": locale}))
    second = api.as_new_agent("eve@example.com")
    solo = api.ok(api.post("/api/v1/teams", {"name": "Solo"}), 201)
    pair = api.ok(api.post("/api/v1/teams", {"name": "Pair"}), 201)
    api.ok(api.put(f"/api/v1/teams/{solo['id']}/members", {"member_ids": [api.agent_id]}))
    api.ok(api.put(f"/api/v1/teams/{pair['id']}/members", {"member_ids": [api.agent_id, second.agent_id]}))
    sign_in(app_client)
    # when
    page = text_of(app_client.get("/admin/teams").text)
    # then
    assert f"Solo {one}" in page
    assert f"Pair {two}" in page


@pytest.mark.parametrize(
    ("locale", "singular", "plural"),
    [
        ("en", "1 touchpoint 1 channel 1 conversation", "2 touchpoints 1 channel 2 conversations"),
        ("es", "1 interacción 1 canal 1 conversación", "2 interacciones 1 canal 2 conversaciones"),
    ],
)
def test_the_contact_panel_counts_in_the_right_form(
    app_client: TestClient, api: Api, clock: FrozenClock, locale: str, singular: str, plural: str
) -> None:
    # given: a customer's first message
    api.ok(api.patch("/api/v1/auth/me", {"locale": locale}))
    channel = api.api_channel()
    api.inbound(channel, "c1", "Hello")
    [conversation] = api.conversations()
    sign_in(app_client)
    # when
    first = text_of(app_client.get(f"/ui/conversations/{conversation['id']}/context").text)
    # then
    assert singular in first
    # given: the conversation resolved, and a second one after the re-open window
    api.ok(api.patch(f"/api/v1/conversations/{conversation['id']}", {"status": "resolved"}))
    clock.advance(hours=100)
    api.inbound(channel, "c1", "Hello again")
    [latest, *_] = api.conversations(status="open")
    # when
    second = text_of(app_client.get(f"/ui/conversations/{latest['id']}/context").text)
    # then
    assert plural in second


def test_every_count_a_script_writes_is_sent_to_its_page() -> None:
    # given
    workspace = set(COUNTED.findall((STATIC / "app.js").read_text()))
    admin = set(COUNTED.findall((STATIC / "admin.js").read_text()))
    # then
    assert workspace and admin, "no counts found: the pattern is broken"
    assert workspace <= set(JS_PLURALS)
    assert admin <= set(admin_automation.JS_PLURALS)


@pytest.mark.parametrize(
    ("locale", "forms"),
    [
        ("en", ["{n} conversation updated.", "{n} conversations updated."]),
        ("es", ["{n} conversación actualizada.", "{n} conversaciones actualizadas."]),
    ],
)
def test_the_workspace_page_carries_the_forms_of_its_counts(
    app_client: TestClient, api: Api, locale: str, forms: list[str]
) -> None:
    # given
    api.ok(api.patch("/api/v1/auth/me", {"locale": locale}))
    sign_in(app_client)
    # when
    page = app_client.get("/inbox").text
    config = re.search(r'<script type="application/json" id="hilo-config">(.*?)</script>', page, re.S)
    # then
    assert config is not None
    assert json.loads(config.group(1))["plurals"]["{n} conversation updated."] == forms
