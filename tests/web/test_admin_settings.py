"""The admin settings page explains HILO_DEFAULT_REGION: what it does, its value, how to change it."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from hilo.app import create_app
from hilo.clock import FrozenClock
from hilo.settings import Settings
from tests.support import Api


def region_card(page: str) -> str:
    found = re.search(r'<article class="card setting-card" id="setting-default-region">(.*?)</article>', page, re.S)
    assert found, "the page has no card for the default region"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))


def admin_page(settings: Settings, clock: FrozenClock, locale: str = "en") -> str:
    with TestClient(create_app(settings, clock=clock)) as client:
        api = Api.bootstrap(client)
        api.ok(api.patch("/api/v1/auth/me", {"locale": locale}))
        client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"})
        response = client.get("/admin/settings")
        assert response.status_code == 200
        return response.text


@pytest.mark.parametrize(
    ("region", "locale", "shown"),
    [
        ("ES", "en", "Current value: ES (Spain) For example, 612 34 56 78 is read as +34612345678."),
        ("ES", "es", "Valor actual: ES (España) Por ejemplo, 612 34 56 78 se lee como +34612345678."),
        ("MX", "en", "Current value: MX (Mexico) For example, 222 123 4567 is read as +522221234567."),
    ],
)
def test_the_region_is_explained_with_its_current_value(
    settings: Settings, clock: FrozenClock, region: str, locale: str, shown: str
) -> None:
    # when
    card = region_card(admin_page(replace(settings, default_region=region), clock, locale))
    # then: what it is for, its value with an example, and how to change it
    assert "HILO_DEFAULT_REGION" in card
    assert shown in card
    if locale == "en":
        assert "read as numbers of this country" in card
        assert "then restart them" in card


def test_a_region_hilo_does_not_know_is_pointed_out(settings: Settings, clock: FrozenClock) -> None:
    # when
    card = region_card(admin_page(replace(settings, default_region="XX"), clock))
    # then
    assert "Current value: XX not a country code Hilo knows" in card


def test_the_settings_page_is_for_administrators(app_client: TestClient, api: Api) -> None:
    # given
    api.as_new_agent("agent@example.com")
    app_client.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "correct horse battery"})
    # when
    page = app_client.get("/admin/settings")
    # then
    assert page.status_code == 403
    assert "HILO_DEFAULT_REGION" not in page.text
