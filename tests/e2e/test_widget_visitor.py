"""A visitor's first minute in real Chromium: the widget greets them, and agents see one name for them.

The agent side also checks that a time the server wrote and the same time rewritten by the
browser read alike (one form of date and time).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from hilo.settings import Settings
from hilo.web.rendering import datetime_text
from tests.e2e.steps import sign_in
from tests.e2e.widget_support import LiveHilo, Site, agent_online, served_hilo, widget_site

pytestmark = pytest.mark.e2e


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveHilo]:
    with served_hilo(settings) as running:
        yield running


@pytest.fixture
def site(live: LiveHilo) -> Iterator[Site]:
    with widget_site(live) as running:
        yield running


def test_the_widget_greets_and_agents_see_one_name_for_the_anonymous_visitor(
    browser: Browser, live: LiveHilo, site: Site
) -> None:
    # given: a Spanish-speaking visitor opens the chat of a widget that sets no greeting
    visitor = browser.new_context(locale="es-ES")
    agent = browser.new_context(locale="en-GB", timezone_id="UTC", viewport={"width": 1440, "height": 900})
    try:
        shop = visitor.new_page()
        with agent_online(live):
            shop.goto(f"{site.url}/shop")
            shop.locator("button.launcher").click()
            # then: the widget does not open blank
            expect(shop.locator("li.note.greeting")).to_have_text("¡Hola! ¿En qué podemos ayudarte hoy?")
            # when: they write without giving a name
            box = shop.locator("#hilo-input")
            box.fill("¿Tenéis la chaqueta azul en talla M?")
            box.press("Enter")
            expect(shop.locator("li.msg.mine[data-id]")).to_have_count(1)
        [conversation] = live.conversations()
        name = f"Contact {conversation['contact_id']}"
        # when: an agent opens the conversation
        page = agent.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page, live.url, "ana@example.com")
        page.goto(f"{live.url}/inbox?view=all&c={conversation['id']}")
        # then: list, header, contact panel and timeline name them alike, with the same initial
        row = page.locator(f"#row-{conversation['id']}")
        expect(row.locator(".row-name")).to_have_text(name)
        expect(row.locator(".avatar")).to_have_text("C")
        expect(page.locator("#conv-header h1")).to_have_text(name)
        panel = page.locator("#context")
        expect(panel.locator(".ctx-contact .avatar")).to_have_text("C")
        expect(panel.locator("input[name=name]")).to_have_attribute("placeholder", name)
        inbound = page.locator("article.msg-inbound").first
        expect(inbound.locator(".msg-author")).to_have_text(name)
        expect(inbound.locator(".avatar")).to_have_text("C")
        # and the panel says where they are and with what
        expect(panel.locator(".ctx-visit a")).to_have_text(f"{site.url}/shop")
        expect(panel.locator(".ctx-visit")).to_contain_text(re.compile(r"Chrome \d+ · Linux"))
        # and a time the browser rewrote reads as the server writes it (the browser is on UTC)
        stamp = inbound.locator("time[data-fmt=datetime]")
        expect(stamp).to_have_text(datetime_text(stamp.get_attribute("datetime"), "en"))
        assert errors == []
    finally:
        visitor.close()
        agent.close()
