"""The demo in real headless Chromium: the first run a support lead tries (SQLite and PostgreSQL).

The demo is seeded, Hilo serves it with its worker, and a Spanish-speaking browser signs in
as the demo's admin, answers customers on the demo's channels and chats as a visitor on the
demo page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from hilo.demo import DEMO_PASSWORD, seed
from hilo.settings import Settings
from tests.e2e.widget_support import LiveHilo, live_hilo
from tests.fakes.server import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveHilo]:
    port = free_port()
    served = replace(settings, base_url=f"http://127.0.0.1:{port}", run_worker=True)
    seed(served, contacts=6)
    with live_hilo(served, port) as running:
        yield running


def _watched(page: Page) -> list[str]:
    """Script errors, CSP violations and failed requests the page reports."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def _demo_admin(browser: Browser, contexts: list[BrowserContext], live: LiveHilo) -> tuple[Page, list[str]]:
    """The demo's admin, signed in from a Spanish browser, on the whole inbox (its live socket open)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="es-ES")
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors = _watched(page)
    hello: list[str] = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda frame: hello.append(str(frame))))
    page.goto(live.url)
    # The sign-in page speaks the browser's language before anyone signs in.
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("h1")).to_have_text("Entra en tu bandeja")
    page.fill("input[name=email]", "admin@example.com")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/inbox.*"))
    hello.clear()
    page.goto(f"{live.url}/inbox?view=all")
    # The server greets a socket once it delivers events to it.
    deadline = time.monotonic() + 15
    while not any('"hello"' in frame for frame in hello):
        assert time.monotonic() < deadline, "the inbox's live socket did not open"
        page.wait_for_timeout(50)
    return page, errors


def _conversation_of(live: LiveHilo, name: str) -> dict[str, Any]:
    [contact] = live.api.get("/api/v1/contacts", params={"q": name}).json()["items"]
    [conversation] = live.api.get("/api/v1/conversations", params={"contact_id": contact["id"]}).json()["items"]
    return conversation  # type: ignore[no-any-return]


def _open(page: Page, live: LiveHilo, conversation_id: int) -> None:
    page.goto(f"{live.url}/inbox?view=all&c={conversation_id}")
    expect(page.locator("#conversation")).to_have_attribute("data-id", str(conversation_id))
    expect(page.locator("#channel-picker option[data-kind]").first).to_be_attached()


def test_the_demo_admin_answers_on_whatsapp_and_the_reply_shows_delivered(
    browser: Browser, contexts: list[BrowserContext], live: LiveHilo
) -> None:
    # given: the demo's admin on the conversation of a customer who just wrote on WhatsApp
    page, errors = _demo_admin(browser, contexts, live)
    conversation = _conversation_of(live, "Nerea Vidal")
    _open(page, live, conversation["id"])
    expect(page.locator("#channel-picker option:checked")).to_have_attribute("data-kind", "whatsapp")
    # when: she answers with the demo's canned response about shipping
    page.locator("#composer-body").press_sequentially("/envio")
    expect(page.locator("#suggest")).to_contain_text("/envio")
    page.keyboard.press("Enter")
    expect(page.locator("#composer-body")).to_have_value(re.compile("ya ha salido del almacén"))
    page.keyboard.press("Control+Enter")
    # then: the demo provider takes it and the reply shows as delivered, live
    reply = page.locator(".msg-outbound", has_text="ya ha salido del almacén")
    expect(reply.locator(".ticks")).to_have_attribute("data-status", "delivered", timeout=15_000)
    expect(reply.locator(".failed-note, .retry-note")).to_have_count(0)
    [sent] = [m for m in live.timeline(conversation["id"]) if m["body"] and "almacén" in m["body"]]
    assert sent["status"] == "delivered" and sent["provider_message_id"].startswith("demo:")
    # and the channels page says these are demo channels, linking the demo chat page
    page.goto(f"{live.url}/admin/channels")
    expect(page.locator(".channel-card .pill", has_text="Demo")).to_have_count(6)
    expect(page.locator('.channel-card a[href="/demo/widget"]')).to_have_text("Abrir la página de chat de demostración")
    assert errors == []


def _wait_until_online(live: LiveHilo) -> None:
    deadline = time.monotonic() + 15
    while not any(p["presence"] == "online" for p in live.api.get("/api/v1/presence").json()):
        assert time.monotonic() < deadline, "the demo's admin did not come online"
        time.sleep(0.05)


def test_a_visitor_chats_on_the_demo_page_and_the_agent_answers_from_the_inbox(
    browser: Browser, contexts: list[BrowserContext], live: LiveHilo
) -> None:
    # given: the demo's admin has the inbox open (so the chat is offered), and a visitor
    # opens the demo page from the link on the channels page
    agent, agent_errors = _demo_admin(browser, contexts, live)
    _wait_until_online(live)
    admin = agent.context.new_page()
    admin.goto(f"{live.url}/admin/channels")
    with agent.context.expect_page() as opened:
        admin.locator('.channel-card a[href="/demo/widget"]').click()
    visitor = opened.value
    visitor_errors = _watched(visitor)
    visitor.reload()
    expect(visitor.locator("h1")).to_have_text("Tienda Hilo")
    # and the demo note sits at the very top, with no empty strip above it
    assert visitor.eval_on_selector(".demo-note", "note => note.getBoundingClientRect().top") == 0
    # when: the visitor writes in the chat
    visitor.locator("button.launcher").click()
    expect(visitor.locator("section.panel")).to_be_visible()
    box = visitor.locator("#hilo-input")
    box.fill("Hola, ¿tenéis la Trail Pro en la talla 44?")
    box.press("Enter")
    expect(visitor.locator("li.msg.mine[data-id]", has_text="Trail Pro")).to_have_count(1)
    # then: it reaches the inbox, live, on the demo's chat channel (the row may already preview the
    # demo's out-of-hours answer, depending on the time of day)
    conversation_id = live.api.get("/api/v1/conversations").json()["items"][0]["id"]
    expect(agent.locator(f'.row[data-id="{conversation_id}"]')).to_be_visible(timeout=15_000)
    [message] = [m for m in live.timeline(conversation_id) if m["direction"] == "inbound"]
    assert "Trail Pro" in message["body"]
    channels = {c["id"]: c for c in live.api.get("/api/v1/channels").json()}
    assert channels[message["channel_account_id"]]["kind"] == "widget"
    # when: the agent answers from the inbox
    _open(agent, live, conversation_id)
    agent.locator("#composer-body").fill("¡Sí! Quedan dos pares en la 44.")
    agent.keyboard.press("Control+Enter")
    # then: the visitor reads it on the demo page
    expect(visitor.locator("li.msg.theirs[data-id]", has_text="Quedan dos pares")).to_have_count(1, timeout=15_000)
    # the page's policy lets the widget draw itself: nothing was blocked or failed
    assert visitor_errors == [] and agent_errors == []
