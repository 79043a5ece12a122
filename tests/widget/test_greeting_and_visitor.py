"""The widget greets every visitor, and agents see one name for an anonymous visitor everywhere."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hilo.widget.browsers import browser_summary
from tests.support import Api
from tests.widget.widget_support import ORIGIN, Widget, token_of, widget_channel

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


def test_a_widget_without_a_greeting_of_its_own_greets_in_the_visitors_language(
    api: Api, app_client: TestClient
) -> None:
    # given: a widget channel that sets no greeting, and one that does
    plain = widget_channel(api)
    own = widget_channel(api, greeting={"en": "Welcome to the shop", "es": "Bienvenido a la tienda"})
    # when
    english = app_client.get(f"/widget/{token_of(plain)}/config", headers={"origin": ORIGIN}).json()
    spanish = app_client.get(f"/widget/{token_of(plain)}/config", params={"locale": "es"}, headers={"origin": ORIGIN})
    custom = app_client.get(f"/widget/{token_of(own)}/config", params={"locale": "es"}, headers={"origin": ORIGIN})
    # then
    assert english["greeting"] == "Hi! How can we help you today?"
    assert spanish.json()["greeting"] == "¡Hola! ¿En qué podemos ayudarte hoy?"
    assert custom.json()["greeting"] == "Bienvenido a la tienda"


def visitor_writes(app_client: TestClient, channel: dict[str, Any], text: str, page: str) -> dict[str, Any]:
    """An anonymous visitor's first message from `page`, in Firefox on Windows."""
    headers = {"origin": ORIGIN, "user-agent": FIREFOX_WINDOWS}
    with app_client.websocket_connect(f"/widget/{token_of(channel)}/ws", headers=headers) as ws:
        ws.send_json({"type": "hello", "visitor": None, "user": None, "last_id": 0, "locale": "en"})
        return Widget(ws).say(text, page=page)


def sign_in(client: TestClient) -> None:
    credentials = {"email": "admin@example.com", "password": "correct horse battery"}
    assert client.post("/api/v1/auth/login", json=credentials).status_code == 200


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize(("locale", "word"), [("en", "Contact"), ("es", "Contacto")])
def test_an_anonymous_visitor_has_one_name_in_the_list_header_panel_and_timeline(
    api: Api, app_client: TestClient, locale: str, word: str
) -> None:
    # given: an anonymous visitor who wrote from a product page
    api.ok(api.patch("/api/v1/auth/me", {"locale": locale}))
    channel = widget_channel(api)
    visitor_writes(app_client, channel, "Is this in stock?", "https://shop.example/p/42?ref=ad")
    [conversation] = api.conversations()
    name = f"{word} {conversation['contact_id']}"
    path = f"/ui/conversations/{conversation['id']}"
    sign_in(app_client)
    # when
    pages = {
        "list": app_client.get("/ui/list", params={"view": "all"}).text,
        "header": app_client.get(f"{path}/header").text,
        "panel": app_client.get(f"{path}/context").text,
        "timeline": app_client.get(path).text,
    }
    # then: the same name everywhere, with the same initial in every avatar, and no other name for them
    for where, html in pages.items():
        assert name in (html if where == "panel" else text_of(html)), where
        avatars = re.findall(r'<span class="avatar hue-\d [^"]*" aria-hidden="true">([^<]*)</span>', html)
        assert set(avatars) <= {"C", "AR"} and (avatars or where == "header"), (where, avatars)
        for other in ("Unknown contact", "Contacto desconocido", "Customer", "Cliente", ">?<"):
            assert other not in html, (where, other)
    assert f'placeholder="{name}"' in pages["panel"]


def test_the_contact_panel_shows_the_visitors_page_and_browser(api: Api, app_client: TestClient) -> None:
    # given
    channel = widget_channel(api)
    visitor_writes(app_client, channel, "Hello", "https://shop.example/p/42?ref=ad&x=<b>")
    [conversation] = api.conversations()
    sign_in(app_client)
    # when
    panel = app_client.get(f"/ui/conversations/{conversation['id']}/context").text
    # then: the page is a link that leaves nothing unescaped, and the browser is summarised
    assert (
        '<a href="https://shop.example/p/42?ref=ad&amp;x=&lt;b&gt;" target="_blank" rel="noopener noreferrer' in panel
    )
    assert "Firefox 128 · Windows" in panel


def test_a_page_that_is_not_a_web_address_is_shown_as_text(api: Api, app_client: TestClient) -> None:
    # given: a client that sent something other than a web address as its page
    channel = widget_channel(api)
    visitor_writes(app_client, channel, "Hello", "javascript:alert(1)")
    [conversation] = api.conversations()
    sign_in(app_client)
    # when
    panel = app_client.get(f"/ui/conversations/{conversation['id']}/context").text
    # then
    assert "javascript:alert(1)" in panel
    assert 'href="javascript:' not in panel


def test_a_contact_from_another_channel_has_no_visit_section(api: Api, app_client: TestClient) -> None:
    # given
    channel = api.api_channel()
    api.inbound(channel, "c1", "Hello", name="Carla Gil")
    [conversation] = api.conversations()
    sign_in(app_client)
    # when
    panel = app_client.get(f"/ui/conversations/{conversation['id']}/context").text
    # then
    assert "ctx-visit" not in panel
    assert "Carla Gil" in panel


@pytest.mark.parametrize(
    ("user_agent", "summary"),
    [
        (FIREFOX_WINDOWS, "Firefox 128 · Windows"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.4.1 Safari/605.1.15",
            "Safari 17 · macOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.4 Mobile/15E148 Safari/604.1",
            "Safari 17 · iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Mobile Safari/537.36",
            "Chrome 124 · Android",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
            "Edge 124 · Windows",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
            "Safari/537.36 OPR/109.0.0.0",
            "Opera 109 · Linux",
        ),
        ("curl/8.5.0", None),
        ("", None),
        (None, None),
    ],
)
def test_browser_summary(user_agent: str | None, summary: str | None) -> None:
    assert browser_summary(user_agent) == summary
