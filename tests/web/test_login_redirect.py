"""After sign-in Hilo only goes to a path of its own site, however the link spells the way out."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from tests.support import Api

WAYS_OUT = [
    "//evil.example/",
    "/\t/evil.example/",
    "/\n/evil.example/",
    "/\r/evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "/ /evil.example/",
    "https://evil.example/",
    "javascript:alert(1)",
    "evil.example",
]


def next_on_page(page: str) -> str:
    config = re.search(r'<script type="application/json" id="hilo-config">(.*?)</script>', page, re.S)
    assert config
    return str(json.loads(config.group(1))["next"])


def test_a_next_that_leaves_the_site_is_replaced_by_the_inbox(app_client: TestClient) -> None:
    # when
    pages = {next_: app_client.get("/login", params={"next": next_}) for next_ in [*WAYS_OUT, "/%09/x", "/admin/sla"]}
    # then: an encoded tab is a path of this site; the page never names a way out
    assert {next_: next_on_page(page.text) for next_, page in pages.items()} == {
        **dict.fromkeys(WAYS_OUT, "/inbox"),
        "/%09/x": "/%09/x",
        "/admin/sla": "/admin/sla",
    }


def test_a_signed_in_agent_is_sent_to_a_local_next_only(app_client: TestClient, api: Api) -> None:
    # given
    app_client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"})
    # when
    away = [app_client.get("/login", params={"next": n}, follow_redirects=False) for n in WAYS_OUT]
    local = app_client.get("/login", params={"next": "/inbox?view=all&c=3"}, follow_redirects=False)
    # then
    assert {(a.status_code, a.headers["location"]) for a in away} == {(303, "/inbox")}
    assert (local.status_code, local.headers["location"]) == (303, "/inbox?view=all&c=3")


def test_a_next_with_a_nul_is_refused_with_its_code(app_client: TestClient) -> None:
    # when
    answer = app_client.get("/login", params={"next": "/inbox\x00"})
    # then: refused like any text no column can hold, and never followed
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "text_has_nul"
