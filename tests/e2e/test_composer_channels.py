"""The composer's channel rules in real headless Chromium, against a real server and the fake
providers: WhatsApp templates outside the 24-hour window, the SMS segment count, e-mail
"reply all" with To and CC, and quoted messages in the timeline (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from hilo.agents.actions import create_agent, create_team, create_token
from hilo.app import create_app
from hilo.clock import FrozenClock
from tests.channels.email_flow import MAILGUN_KEY, mailgun_post
from tests.channels.email_servers import RecordingHandler, run_smtp
from tests.channels.provider_support import (
    SMS_NUMBER,
    create_channel,
    fixture,
    fixture_json,
    post_meta,
    whatsapp_channel,
)
from tests.e2e.test_agent_ui import (
    PASSWORD,
    Agent,
    Live,
    _serve_app,
    no_page_errors,
    open_conversation,
    page_for,
    served_settings,
)
from tests.fakes.meta import FakeGraphAPI, running_fake_graph
from tests.fakes.twilio import twilio_signature
from tests.support import Api, eventually, live_client

pytestmark = pytest.mark.e2e

TWILIO_SID = "AC00000000000000000000000000000001"
TWILIO_TOKEN = "e2e-twilio-auth-token"


@dataclass
class Stage:
    """The running server and the fake providers it talks to."""

    live: Live
    graph: FakeGraphAPI
    smtp: RecordingHandler
    smtp_port: int


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Stage]:
    settings, port = served_settings(request, tmp_path_factory, sqlite_template, "composer")
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    app = create_app(settings, clock=clock)
    with app.state.runtime.transaction() as tx:
        admin = create_agent(tx, email="ana@example.com", name="Ana Admin", password=PASSWORD, role="admin")
        team = create_team(tx, "Support", "Front line", [admin.id])
        _row, token = create_token(tx, admin, "e2e")
        agents = {"ana": Agent(admin.email, admin.name, admin.id)}
        team_id = team.id
    server, thread = _serve_app(app, port)
    try:
        with (
            running_fake_graph() as graph,
            run_smtp() as (smtp_port, smtp),
            live_client(settings.base_url) as http,
        ):
            api = Api(http, token, admin.id)  # type: ignore[arg-type]
            live = Live(settings.base_url, clock, api, agents, team_id, [], "http://127.0.0.1:9/hook")
            yield Stage(live, graph, smtp, smtp_port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def conversation_of(api: Api, name: str) -> int:
    return int(next(c["id"] for c in api.conversations(status="open") if c["contact_name"] == name))


def whatsapp_text(message_id: str, text: str) -> dict[str, Any]:
    """The captured WhatsApp text webhook, with another message id and text."""
    payload = fixture_json("whatsapp_text.json")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"] = message_id
    message["text"]["body"] = text
    return dict(payload)


def test_whatsapp_outside_the_window_offers_templates_with_variables(
    browser: Browser, contexts: list[BrowserContext], stage: Stage
) -> None:
    # given: a WhatsApp customer whose last message is 25 hours old, and the synced templates
    live, graph = stage.live, stage.graph
    graph.reset()
    channel = whatsapp_channel(live.api, graph)
    synced = live.api.ok(live.api.post(f"/api/v1/channels/{channel['id']}/templates/sync"))
    assert [t["name"] for t in synced["items"]] == ["hello_world", "order_update"]
    assert post_meta(live.api, channel, fixture("whatsapp_text.json")).status_code == 200
    conversation = conversation_of(live.api, "Sheena Nelson")
    live.clock.advance(hours=25)
    page = page_for(browser, contexts, live, "ana")
    # when
    open_conversation(page, live, conversation)
    # then: the composer explains the window and shows the template picker instead of free text
    expect(page.locator("#channel-picker")).to_have_value(str(channel["id"]))
    expect(page.locator("#channel-picker option:checked")).to_contain_text("templates only")
    expect(page.locator("#channel-hint")).to_contain_text("More than 24 hours have passed")
    expect(page.locator("#template-panel")).to_be_visible()
    expect(page.locator("#composer-body")).to_be_hidden()
    expect(page.locator("#template-toggle")).to_be_hidden()
    # when: the agent sends without choosing, then picks the order update and fills its variable
    page.click("#send")
    expect(page.locator("#template-error")).to_have_text("Choose a template first.")
    page.select_option("#template-picker", label="order_update · es")
    variable = page.locator("#template-vars input")
    expect(variable).to_have_count(1)
    page.click("#send")
    expect(page.locator("#template-error")).to_have_text("Fill in every variable of the template.")
    variable.fill("A-1001")
    expect(page.locator("#template-preview")).to_have_text("Tu pedido A-1001 ya está en camino.")
    page.click("#send")
    # then: the reply shows the filled text, the worker sends it and Meta gets a template message
    reply = page.locator(".msg-outbound", has_text="Tu pedido A-1001 ya está en camino.")
    expect(reply).to_be_visible()
    expect(reply.locator(".ticks")).to_have_attribute("data-status", "sent")
    [call] = graph.requests_to("/messages")
    assert call.json["type"] == "template"
    assert call.json["template"] == {
        "name": "order_update",
        "language": {"code": "es"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "A-1001"}]}],
    }
    # when: the customer writes again, which reopens the window
    wamid = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzRUIwQjY3RkE1RjU3MkE5RDNBQwA="
    assert post_meta(live.api, channel, whatsapp_text(wamid, "Thanks! And the invoice?")).status_code == 200
    expect(page.locator(".msg-inbound", has_text="Thanks! And the invoice?")).to_be_visible()
    # then: free text is back, and a template is still one click away
    expect(page.locator("#channel-hint")).to_be_hidden()
    expect(page.locator("#composer-body")).to_be_visible()
    expect(page.locator("#template-panel")).to_be_hidden()
    page.click("#template-toggle")
    expect(page.locator("#template-panel")).to_be_visible()
    expect(page.locator("#template-toggle")).to_have_attribute("aria-pressed", "true")
    no_page_errors(page)


def test_sms_composer_counts_characters_and_segments(
    browser: Browser, contexts: list[BrowserContext], stage: Stage
) -> None:
    # given: a customer who texted the SMS number
    live = stage.live
    channel = create_channel(
        live.api,
        "sms",
        {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from_number": SMS_NUMBER},
        name="Texts",
    )
    pairs = [
        (name, {"AccountSid": TWILIO_SID, "From": "+14133881112"}.get(name, value))
        for name, value in parse_qsl(fixture("twilio_sms_inbound_text_courier.form").decode(), keep_blank_values=True)
    ]
    url = f"{live.url}/webhooks/sms/{channel['id']}"
    answer = live.api.client.post(
        f"/webhooks/sms/{channel['id']}",
        data=dict(pairs),
        headers={"x-twilio-signature": twilio_signature(TWILIO_TOKEN, url, pairs)},
    )
    assert answer.status_code == 200, answer.text
    [conversation] = [
        c["id"] for c in live.api.conversations(status="open") if c["last_channel_account_id"] == channel["id"]
    ]
    page = page_for(browser, contexts, live, "ana")
    open_conversation(page, live, conversation)
    expect(page.locator("#channel-picker")).to_have_value(str(channel["id"]))
    count = page.locator("#sms-count")
    # when: 160 GSM characters, then one more
    page.fill("#composer-body", "a" * 160)
    # then
    expect(count).to_have_text("160 characters · 1 segment · GSM-7")
    expect(page.locator("#sms-warning")).to_be_hidden()
    page.locator("#composer-body").press("End")
    page.keyboard.type("b")
    expect(count).to_have_text("161 characters · 2 segments · GSM-7")
    expect(count).to_have_class(re.compile(r"\bwarn\b"))
    expect(page.locator("#sms-warning")).to_have_text(
        "Longer than one SMS: it goes out in 2 parts, and each part is charged."
    )
    # when: an emoji makes it UCS-2, where it counts as two of the 70 units of a segment
    page.fill("#composer-body", "a" * 68 + "😀")
    # then
    expect(count).to_have_text("69 characters · 1 segment · UCS-2")
    page.fill("#composer-body", "a" * 69 + "😀")
    expect(count).to_have_text("70 characters · 2 segments · UCS-2")
    # when: the agent writes a private note instead
    page.click(".tabs [data-mode=note]")
    # then: no SMS count
    expect(count).to_be_hidden()
    no_page_errors(page)


def test_email_reply_all_sends_to_the_copied_addresses(
    browser: Browser, contexts: list[BrowserContext], stage: Stage
) -> None:
    # given: a mail to support that copies a colleague, on a channel that sends by SMTP
    live = stage.live
    settings = {
        "address": "support@example.com",
        "smtp_host": "127.0.0.1",
        "smtp_port": stage.smtp_port,
        "smtp_tls": "none",
        "mailgun_signing_key": MAILGUN_KEY,
    }
    channel = create_channel(live.api, "email", settings, name="Soporte")
    answer = mailgun_post(
        live.api,
        channel,
        {
            "sender": "rosa@example.com",
            "From": "Rosa Mail <rosa@example.com>",
            "To": "support@example.com",
            "Cc": "Luis <luis@example.com>",
            "Subject": "Factura de marzo",
            "Message-Id": "<rosa-1@example.com>",
            "body-plain": "¿Podéis mandarnos la factura a los dos?",
        },
    )
    assert answer.status_code == 200, answer.text
    conversation = conversation_of(live.api, "Rosa Mail")
    page = page_for(browser, contexts, live, "ana")
    # when
    open_conversation(page, live, conversation)
    # then: To is the sender and CC the people they copied
    expect(page.locator("#mail-fields")).to_be_visible()
    expect(page.locator("#reply-to")).to_have_value("rosa@example.com")
    expect(page.locator("#reply-cc")).to_have_value("luis@example.com")
    # when: the agent adds a malformed address
    page.fill("#reply-cc", "luis@example.com, marta@")
    page.fill("#composer-body", "Os la adjuntamos hoy.")
    page.click("#send")
    # then: nothing goes out until it is fixed
    expect(page.locator("#mail-error")).to_have_text("marta@ is not a valid e-mail address.")
    expect(page.locator("#reply-cc")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".msg-outbound")).to_have_count(0)
    # when
    page.fill("#reply-cc", "luis@example.com, marta@example.com")
    page.click("#send")
    # then: the SMTP server gets one mail for all three, with both copies in Cc
    expect(page.locator(".msg-outbound", has_text="Os la adjuntamos hoy.")).to_be_visible()
    [mail] = eventually(lambda: list(stage.smtp.messages))
    assert sorted(mail.rcpt_tos) == ["luis@example.com", "marta@example.com", "rosa@example.com"]
    parsed = message_from_bytes(mail.data, policy=policy.default)
    assert parsed["To"].addresses[0].addr_spec == "rosa@example.com"
    assert [a.addr_spec for a in parsed["Cc"].addresses] == ["luis@example.com", "marta@example.com"]
    no_page_errors(page)


def test_a_quoted_message_shows_its_excerpt_and_leads_to_it(
    browser: Browser, contexts: list[BrowserContext], stage: Stage
) -> None:
    # given: a customer who answers an earlier message of theirs by quoting it
    live = stage.live
    shop = live.api.api_channel("Quote shop", live.receiver_url)
    live.api.inbound(shop, "quoter", "Is the blue jacket in stock in size M?", msg_id="q-first", name="Quim Quote")
    for n in range(12):
        live.clock.advance(seconds=30)
        live.api.inbound(shop, "quoter", f"Another thing, number {n}\n" * 3, msg_id=f"q-more-{n}")
    live.clock.advance(seconds=30)
    payload = {"id": "q-reply", "contact": {"external_id": "quoter"}, "text": "Any news?", "reply_to": "q-first"}
    assert live.api.webhook(shop, payload).status_code == 200
    conversation = conversation_of(live.api, "Quim Quote")
    ids = {m["provider_message_id"]: m["id"] for m in live.api.timeline(conversation)}
    page = page_for(browser, contexts, live, "ana")
    # when
    open_conversation(page, live, conversation)
    # then: the reply shows who and what it quotes
    quote = page.locator(f"#m-{ids['q-reply']} .quote-ref")
    expect(quote).to_contain_text("Quim Quote")
    expect(quote).to_contain_text("Is the blue jacket in stock in size M?")
    first = page.locator(f"#m-{ids['q-first']}")
    expect(first).not_to_be_in_viewport()
    # (the highlight lasts under two seconds: note it when it happens, not when we look)
    page.evaluate(
        """(id) => {
            window.hiloFlashed = false;
            new MutationObserver(() => {
                const target = document.getElementById(id);
                if (target && target.classList.contains("flash")) { window.hiloFlashed = true; }
            }).observe(document.body, {attributes: true, attributeFilter: ["class"], subtree: true});
        }""",
        f"m-{ids['q-first']}",
    )
    # when
    quote.click()
    # then: the quoted message comes into view, highlighted
    expect(first).to_be_in_viewport()
    page.wait_for_function("window.hiloFlashed === true")
    no_page_errors(page)


@pytest.fixture(autouse=True)
def _clear_smtp(stage: Stage) -> None:
    stage.smtp.messages.clear()
