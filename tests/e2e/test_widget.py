"""The chat widget and web forms in real headless Chromium, embedded in a site on another origin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from hilo.channels.widget import user_hash
from hilo.settings import Settings
from tests.e2e.widget_support import LiveHilo, Site, agent_online, customer_site, served_hilo

pytestmark = pytest.mark.e2e

SECRET = "e2e-identity-secret"


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveHilo]:
    with served_hilo(settings, run_worker=True) as running:
        yield running


@pytest.fixture
def site(live: LiveHilo) -> Iterator[Site]:
    with customer_site(live.url) as running:
        widget = live.channel(
            "widget", allowed_origins=[running.url], identity_secret=SECRET, max_upload_mb=0.5, title="Shop help"
        )
        form = live.channel("webform", allowed_origins=running.url)
        running.widget_token = widget["config"]["public_token"]
        running.form_token = form["config"]["public_token"]
        yield running


def _open_chat(page: Page, site: Site, query: str = "") -> None:
    page.goto(f"{site.url}/shop{query}")
    launcher = page.locator("button.launcher")
    expect(launcher).to_be_visible()
    launcher.click()
    expect(page.locator("section.panel")).to_be_visible()


def _say(page: Page, text: str) -> None:
    box = page.locator("#hilo-input")
    expect(box).to_be_visible()
    box.fill(text)
    box.press("Enter")


def _mine(page: Page, text: str) -> Any:
    return page.locator("li.msg.mine[data-id]", has_text=text)


def _theirs(page: Page, text: str) -> Any:
    return page.locator("li.msg.theirs[data-id]", has_text=text)


def test_visitor_chats_and_the_agents_reply_appears_without_reload(
    browser: Browser, live: LiveHilo, site: Site
) -> None:
    # given: an agent is online and a visitor opens the chat on the shop's page
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    with agent_online(live):
        _open_chat(page, site)
        page_id = page.evaluate("window.pageId")
        # when
        _say(page, "Hello, is the blue jacket in stock?")
        expect(_mine(page, "blue jacket")).to_have_count(1)
        [conversation] = live.conversations()
        live.reply(conversation["id"], "Yes, in every size.")
        # then
        expect(_theirs(page, "every size")).to_have_count(1)
        expect(page.locator("li.msg.theirs .author")).to_have_text("Ana")
    assert page.evaluate("window.pageId") == page_id
    launcher = page.locator("button.launcher")
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.locator("section.panel")).to_have_attribute("role", "dialog")
    expect(page.locator("ol.log")).to_have_attribute("role", "log")
    # the page's own CSS (red buttons) does not reach into the widget
    assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 0, 0)"
    page.keyboard.press("Escape")
    expect(page.locator("section.panel")).to_be_hidden()
    expect(launcher).to_be_focused()
    context.close()


def test_the_network_drops_and_returns_nothing_lost_nothing_doubled(
    browser: Browser, live: LiveHilo, site: Site
) -> None:
    # given: a visitor in a conversation
    context = browser.new_context()
    page = context.new_page()
    with agent_online(live):
        _open_chat(page, site)
        _say(page, "First question")
        expect(_mine(page, "First question")).to_have_count(1)
        [conversation] = live.conversations()
        # when: the connection drops; the visitor writes and the agent answers meanwhile
        context.set_offline(True)
        assert live.drop_visitor_sockets() == 1
        expect(page.locator(".status")).to_have_text(re.compile("Reconnecting"))
        _say(page, "Second question, written offline")
        expect(page.locator("li.pending", has_text="written offline")).to_contain_text("Not sent yet")
        live.reply(conversation["id"], "Answer sent while you were away")
        context.set_offline(False)
        # then: both arrive once the connection is back, each exactly once
        expect(_theirs(page, "while you were away")).to_have_count(1)
        expect(_mine(page, "written offline")).to_have_count(1)
        expect(page.locator("li.pending")).to_have_count(0)
        expect(page.locator(".status")).to_be_hidden()
    bodies = [m["body"] for m in live.timeline(conversation["id"])]
    assert bodies == ["First question", "Answer sent while you were away", "Second question, written offline"]
    assert page.locator("li.msg[data-id]").count() == 3
    context.close()


def test_a_verified_visitor_sees_the_same_history_in_another_browser(
    browser: Browser, live: LiveHilo, site: Site
) -> None:
    # given: a signed-in user of the shop chats on one device
    query = f"?user_id=u-77&user_hash={user_hash(SECRET, 'u-77')}&user_name=Lola&locale=es"
    laptop = browser.new_context()
    page = laptop.new_page()
    with agent_online(live):
        _open_chat(page, site, query)
        _say(page, "¿Puedo cambiar la talla?")
        expect(_mine(page, "cambiar la talla")).to_have_count(1)
        [conversation] = live.conversations()
        live.reply(conversation["id"], "Claro que sí.")
        expect(_theirs(page, "Claro que sí")).to_have_count(1)
        # when: the same user opens the shop in another browser (no shared storage)
        phone = browser.new_context(viewport={"width": 390, "height": 800}, is_mobile=True)
        other = phone.new_page()
        _open_chat(other, site, query)
        # then: the whole history is there, in Spanish, full screen on the phone
        expect(_mine(other, "cambiar la talla")).to_have_count(1)
        expect(_theirs(other, "Claro que sí")).to_have_count(1)
        expect(other.locator("#hilo-input")).to_have_attribute("placeholder", "Escribe un mensaje…")
        width = other.locator("section.panel").evaluate("p => p.getBoundingClientRect().width")
        assert width == 390
    [contact] = live.contacts()
    assert len(live.conversations()) == 1 and contact["name"] == "Lola"
    laptop.close()
    phone.close()


def test_the_offline_form_and_the_web_forms_create_conversations(browser: Browser, live: LiveHilo, site: Site) -> None:
    context = browser.new_context()
    page = context.new_page()
    # given: no agent online; when: a visitor leaves a message in the offline form
    _open_chat(page, site)
    expect(page.locator("form.intro .lead")).to_have_text("We are away right now")
    page.locator("#hilo-f-email").fill("marta@example.com")
    page.locator("#hilo-f-message").fill("Do you ship to the Canary Islands?")
    page.locator("form.intro button[type=submit]").click()
    expect(page.locator("li.note.thanks")).to_be_visible()
    expect(_mine(page, "Canary Islands")).to_have_count(1)
    # and: someone uses the hosted contact form
    page.goto(f"{live.url}/forms/{site.form_token}?locale=es")
    page.locator("#f-email").fill("jon@example.com")
    page.locator("#f-message").fill("Quiero devolver un pedido")
    page.get_by_role("button", name="Enviar mensaje").click()
    expect(page.get_by_role("status")).to_contain_text("Gracias")
    # and: someone uses the shop's own HTML form, which returns them to the shop
    page.goto(f"{site.url}/contact")
    page.locator("#email").fill("ines@example.com")
    page.locator("#message").fill("Sent from your own form")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(f"{site.url}/thanks")
    # then: three conversations, each on its sender's e-mail identity
    bodies = sorted(live.timeline(c["id"])[0]["body"] for c in live.conversations())
    assert bodies == ["Do you ship to the Canary Islands?", "Quiero devolver un pedido", "Sent from your own form"]
    details = [live.api.get(f"/api/v1/contacts/{c['id']}").json() for c in live.contacts()]
    emails = {i["value"] for contact in details for i in contact["identities"] if i["kind"] == "email"}
    assert emails == {"marta@example.com", "jon@example.com", "ines@example.com"}
    context.close()


def test_bad_input_is_refused_clearly_and_nothing_is_stored(browser: Browser, live: LiveHilo, site: Site) -> None:
    context = browser.new_context()
    page = context.new_page()
    # when: a page passes a forged identity hash
    _open_chat(page, site, "?user_id=u-1&user_hash=" + "0" * 64)
    # then
    expect(page.locator(".status")).to_contain_text("could not be verified")
    assert live.contacts() == []
    # given: a visitor in a conversation
    with agent_online(live):
        _open_chat(page, site)
        _say(page, "Here is a photo")
        expect(_mine(page, "a photo")).to_have_count(1)
        # when: a file over the limit, through the widget and straight at the server
        big = b"\x89PNG\r\n\x1a\n" + b"0" * 600_000
        page.locator("input.file").set_input_files(files=[{"name": "big.png", "mimeType": "image/png", "buffer": big}])
        expect(page.locator("li.note.error")).to_contain_text("too large")
        status = page.evaluate(
            """async ([url, key]) => {
                const form = new FormData();
                form.append("visitor", localStorage.getItem(key));
                form.append("client_id", crypto.randomUUID());
                form.append("file", new Blob([new Uint8Array(600000)], {type: "image/png"}), "big.png");
                const r = await fetch(url, {method: "POST", body: form});
                return [r.status, (await r.json()).error.code];
            }""",
            [f"{live.url}/widget/{site.widget_token}/upload", f"hilo:{site.widget_token}:visitor"],
        )
        # then
        assert status == [413, "upload_too_large"]
    [conversation] = live.conversations()
    assert [m["attachments"] for m in live.timeline(conversation["id"])] == [[]]
    # when: one address floods the web form
    statuses = page.evaluate(
        """async (url) => {
            const out = [];
            for (let i = 0; i < 11; i++) {
                const body = new URLSearchParams({email: `p${i}@example.com`, message: `flood ${i}`});
                const r = await fetch(url, {method: "POST", body, headers: {accept: "application/json"}});
                out.push(r.status);
            }
            return out;
        }""",
        f"{live.url}/forms/{site.form_token}",
    )
    # then: refused with 429, and only what was accepted is stored
    assert 429 in statuses and set(statuses) <= {201, 429}
    assert len(live.conversations()) == 1 + statuses.count(201)
    context.close()


def test_proactive_rules_open_the_chat_with_their_message(browser: Browser, live: LiveHilo, site: Site) -> None:
    # given: a rule for cart pages and one for returning visitors
    [widget] = [c for c in live.api.get("/api/v1/channels").json() if c["kind"] == "widget"]
    rules = [
        {"message": {"en": "Need help with your cart?", "es": "¿Te ayudamos?"}, "url": "*/nowhere*"},
        {"message": "Welcome back!", "returning": True, "after_seconds": 0},
    ]
    answer = live.api.patch(f"/api/v1/channels/{widget['id']}", json={"settings": {"proactive": rules}})
    assert answer.status_code == 200, answer.text
    context = browser.new_context()
    # when: a first visit, then a visit in a new browser session (a new tab) of the same browser
    first = context.new_page()
    first.goto(f"{site.url}/shop")
    first.wait_for_function("window.Hilo !== undefined")
    # Timers run in order: once this one fired, a rule's zero-second timer would have too.
    first.evaluate("() => new Promise(done => setTimeout(done, 0))")
    first_opened = first.locator("section.panel").is_visible()
    first.close()
    later = context.new_page()
    later.goto(f"{site.url}/shop")
    # then: only the returning-visitor rule fires, and only on the later visit
    assert first_opened is False
    expect(later.locator("section.panel")).to_be_visible()
    expect(later.locator("li.note.proactive")).to_have_text("Welcome back!")
    expect(later.locator("li.note", has_text="cart")).to_have_count(0)
    assert live.contacts() == []
    context.close()


def _configure_widget(live: LiveHilo, **settings: Any) -> None:
    [widget] = [c for c in live.api.get("/api/v1/channels").json() if c["kind"] == "widget"]
    answer = live.api.patch(f"/api/v1/channels/{widget['id']}", json={"settings": settings})
    assert answer.status_code == 200, answer.text


def test_greeting_position_and_colours_are_the_channels(browser: Browser, live: LiveHilo, site: Site) -> None:
    # given
    _configure_widget(
        live,
        greeting={"en": "Hi! How can we help?", "es": "¡Hola!"},
        position="left",
        color="#112233",
        text_color="#fafafa",
    )
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    # when
    _open_chat(page, site)
    # then: the greeting opens the log; launcher and panel sit in the bottom-left corner, in the brand colours
    expect(page.locator("li.note.greeting")).to_have_text("Hi! How can we help?")
    launcher = page.locator("button.launcher")
    launcher_box = launcher.bounding_box()
    panel_box = page.locator("section.panel").bounding_box()
    assert launcher_box is not None and launcher_box["x"] < 100
    assert panel_box is not None and panel_box["x"] < 100
    assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(17, 34, 51)"
    assert launcher.evaluate("b => getComputedStyle(b).color") == "rgb(250, 250, 250)"
    assert page.locator("section.panel header").evaluate("h => getComputedStyle(h).color") == "rgb(250, 250, 250)"
    context.close()


def test_a_url_rule_fires_at_once_and_a_timed_rule_after_its_seconds(
    browser: Browser, live: LiveHilo, site: Site
) -> None:
    # given: a rule for cart pages, and one for slow pages after two seconds
    _configure_widget(
        live,
        proactive=[
            {"message": "Questions about your cart?", "url": "*/shop?cart=*"},
            {"message": "Still looking?", "url": "*/shop?slow=*", "after_seconds": 2},
        ],
    )
    context = browser.new_context()
    # when: a visitor lands on the cart page
    cart = context.new_page()
    cart.goto(f"{site.url}/shop?cart=1")
    # then: the chat opens with the cart rule's message only
    expect(cart.locator("section.panel")).to_be_visible()
    expect(cart.locator("li.note.proactive")).to_have_text("Questions about your cart?")
    cart.close()
    # when: another visitor (a fresh browser session) stays on the slow page
    slow = browser.new_context().new_page()
    slow.goto(f"{site.url}/shop?slow=1")
    slow.wait_for_function("window.Hilo !== undefined")
    started = slow.evaluate("performance.now()")
    # then: nothing at first, the timed message once its seconds are up
    assert slow.locator("section.panel").is_visible() is False
    expect(slow.locator("li.note.proactive")).to_have_text("Still looking?", timeout=10_000)
    assert slow.evaluate("performance.now()") - started >= 1_500
    slow.context.close()
    context.close()


def test_an_unknown_widget_token_leaves_the_host_page_alone(browser: Browser, live: LiveHilo, site: Site) -> None:
    # given: the shop's page as laid out with a working widget
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    layout = "() => [document.querySelector('h1').getBoundingClientRect().toJSON(), document.body.scrollWidth]"
    page.goto(f"{site.url}/shop")
    expect(page.locator("button.launcher")).to_be_visible()
    expected = page.evaluate(layout)
    # when: the page embeds the snippet with a token Hilo does not know
    site.widget_token = "no-such-token"
    page.goto(f"{site.url}/shop")
    page.wait_for_load_state("networkidle")
    # then: no error reaches the page, its own script ran, there is no widget, the layout is the same
    assert errors == []
    assert page.evaluate("typeof window.pageId") == "number"
    assert page.evaluate("typeof window.Hilo") == "undefined"
    assert page.locator("[data-hilo-widget]").count() == 0
    assert page.evaluate(layout) == expected
    assert expected[1] <= 1280
    context.close()


def test_outside_business_hours_the_offline_form_says_when_the_team_is_back(
    browser: Browser, live: LiveHilo, site: Site
) -> None:
    # given: the widget follows Madrid office hours; it is Saturday noon in Madrid, and an agent is online
    weekdays = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    hours = live.api.post(
        "/api/v1/business-hours",
        json={"name": "Madrid office", "timezone": "Europe/Madrid", "periods": weekdays, "holiday_country": "ES"},
    )
    assert hours.status_code == 201, hours.text
    _configure_widget(live, business_hours_id=hours.json()["id"], reply_time="minutes")
    live.clock.set(datetime(2026, 3, 7, 11, 0, tzinfo=UTC))
    context = browser.new_context(locale="es-ES")
    page = context.new_page()
    with agent_online(live):
        # when: a visitor opens the chat in Spanish
        _open_chat(page, site, "?locale=es")
        # then: the offline form, with the next opening in Madrid's time
        expect(page.locator("form.intro .lead")).to_have_text("Ahora mismo no estamos disponibles")
        expect(page.locator("form.intro .hint")).to_contain_text("Volvemos el lunes a las 09:00")
        expect(page.locator("header .sub")).to_have_text(
            "Ahora mismo no estamos disponibles · Volvemos el lunes a las 09:00"
        )
        expect(page.locator("#hilo-f-email")).to_be_visible()
        expect(page.locator("form.composer")).to_be_hidden()
    context.close()


def _agent_page(browser: Browser, live: LiveHilo) -> Page:
    """Ana, the administrator, signed in to the agent workspace in a browser context of her own."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(f"{live.url}/login")
    page.fill("input[name=email]", "ana@example.com")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/inbox.*"))
    expect(page.locator("#conn")).to_be_hidden()
    return page


def test_saving_a_widget_channel_in_the_admin_page_keeps_its_settings(browser: Browser, live: LiveHilo) -> None:
    # given: a widget channel with settings of every shape
    chat = live.channel(
        "widget",
        allowed_origins=["https://shop.example", "https://*.shop.example"],
        prechat_fields={"name": "optional", "email": "required"},
        proactive=[{"message": {"en": "Need help?", "es": "¿Te ayudamos?"}, "url": "*/cart*", "after_seconds": 20}],
        title={"en": "Shop help", "es": "Ayuda de la tienda"},
        greeting="Hello! <b>We're</b> here",
        max_upload_mb=2,
        identity_secret=SECRET,
    )
    before = live.api.get(f"/api/v1/channels/{chat['id']}").json()
    page = _agent_page(browser, live)
    page.goto(f"{live.url}/admin/channels")
    card = page.locator(f"#channel-{chat['id']}")
    # then: the card shows the embed snippet with the public token, not a webhook URL
    token = chat["config"]["public_token"]
    expect(card.locator("input[readonly]")).to_have_value(
        f'<script async src="{live.url}/widget/{token}/widget.js" data-token="{token}"></script>'
    )
    # when: the admin opens the settings and saves without changing anything
    card.locator("summary").click()
    expect(card.locator("input[name='settings.prechat_fields']")).to_have_value(
        '{"name":"optional","email":"required"}'
    )
    with page.expect_navigation():
        card.locator("button[type=submit]").click()
    # then: every setting (and the secret) is as it was
    after = live.api.get(f"/api/v1/channels/{chat['id']}").json()
    assert after["config"] == before["config"]
    assert after["secrets_set"] == ["identity_secret"]
    assert after["updated_at"] == before["updated_at"]
    # when: the admin breaks the proactive rules' JSON
    card = page.locator(f"#channel-{chat['id']}")
    card.locator("summary").click()
    card.locator("input[name='settings.proactive']").fill('[{"message": "Hi"')
    card.locator("button[type=submit]").click()
    # then: the page says which setting is wrong, and nothing is stored
    expect(card.locator(".form-error")).to_contain_text('The setting "proactive" is not valid JSON')
    expect(card.locator("input[name='settings.proactive']")).to_be_focused()
    assert live.api.get(f"/api/v1/channels/{chat['id']}").json()["config"] == before["config"]
    # when: the admin fixes it, changing the rules and the greeting
    card.locator("input[name='settings.proactive']").fill('[{"message": "Hi", "after_seconds": 5}]')
    card.locator("input[name='settings.greeting']").fill('{"en": "Hello", "es": "Hola"}')
    with page.expect_navigation():
        card.locator("button[type=submit]").click()
    # then: exactly those two settings changed, stored as JSON values
    config = live.api.get(f"/api/v1/channels/{chat['id']}").json()["config"]
    assert config == {
        **before["config"],
        "proactive": [{"message": "Hi", "after_seconds": 5}],
        "greeting": {"en": "Hello", "es": "Hola"},
    }
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_the_agent_sees_the_visitor_typing_in_the_open_conversation(
    browser: Browser, live: LiveHilo, site: Site
) -> None:
    # given: an agent in the workspace, and a signed-in shop user who started a chat
    agent = _agent_page(browser, live)
    visitor_context = browser.new_context(locale="en-US")
    visitor = visitor_context.new_page()
    _open_chat(visitor, site, f"?user_id=u-5&user_hash={user_hash(SECRET, 'u-5')}&user_name=Lola")
    _say(visitor, "Hi, a question about sizes")
    expect(_mine(visitor, "question about sizes")).to_have_count(1)
    [conversation] = live.conversations()
    agent.goto(f"{live.url}/inbox?view=all&c={conversation['id']}")
    expect(agent.locator("#conversation")).to_have_attribute("data-id", str(conversation["id"]))
    presence = agent.locator("#presence")
    expect(presence).not_to_contain_text("typing")
    # when: the visitor types (the widget reports typing at most every 2.5 s, the first report
    # went out with their first message)
    visitor.wait_for_timeout(2_600)
    visitor.locator("#hilo-input").press_sequentially("Do you have")
    # then: the agent sees it in the open conversation
    expect(presence).to_have_text("Lola is typing…")
    # when: the visitor sends the message
    visitor.locator("#hilo-input").press_sequentially(" it in XL?")
    visitor.locator("#hilo-input").press("Enter")
    # then: the message replaces the indicator at once (not when its few seconds are up)
    expect(agent.locator(".msg", has_text="Do you have it in XL?")).to_be_visible()
    expect(presence).to_have_text("", timeout=1_000)
    # when: the visitor types again, then stops
    visitor.wait_for_timeout(2_600)
    visitor.locator("#hilo-input").press_sequentially("And")
    expect(presence).to_have_text("Lola is typing…")
    # then: the indicator goes away a few seconds later
    expect(presence).not_to_contain_text("typing", timeout=9_000)
    assert agent.errors == []  # type: ignore[attr-defined]
    agent.context.close()
    visitor_context.close()
