"""The contacts directory in real headless Chromium against a real server (SQLite and PostgreSQL):
an agent searches, opens a profile and starts a conversation; WhatsApp to a contact who never
wrote takes a template (fake Meta Graph API); an admin imports a CSV file with a column mapping
and a dry run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.channels.provider_support import whatsapp_channel
from tests.e2e import test_agent_ui, test_composer_channels
from tests.e2e.test_agent_ui import Live, customer, no_page_errors, page_for
from tests.e2e.test_composer_channels import Stage
from tests.support import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Live]:
    """The agent UI tests' served app, agents and fake receiver, for this module (one per database)."""
    yield from test_agent_ui.live.__wrapped__(request, tmp_path_factory, sqlite_template)  # type: ignore[attr-defined]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def meta_desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Stage]:
    """The composer tests' served app with the fake Meta Graph API, for this module (one per database)."""
    yield from test_composer_channels.stage.__wrapped__(request, tmp_path_factory, sqlite_template)  # type: ignore[attr-defined]


def test_an_agent_searches_opens_a_profile_and_starts_a_conversation(
    browser: Browser, contexts: list[BrowserContext], desk: Live
) -> None:
    # given: a customer who wrote on the shop's channel, whose conversation is resolved, and others
    shop = desk.api.api_channel("Directory shop", desk.receiver_url)
    old = customer(
        desk, shop, "Thanks, all good", external_id="dora-1", name="Dora Directory", email="dora@example.com"
    )
    desk.api.ok(desk.api.patch(f"/api/v1/conversations/{old}", {"status": "resolved"}))
    customer(desk, shop, "Hello", name="Otto Other", email="otto@example.com")
    page = page_for(browser, contexts, desk, "bruno")
    # when: Bruno opens the directory from the top bar and searches by e-mail address
    page.click(".topnav a[href='/contacts']")
    page.wait_for_url(re.compile(r".*/contacts$"))
    expect(page.locator("#contacts-table tbody tr[data-contact]")).to_have_count(2)
    # and a filter applies as soon as it is chosen
    with page.expect_response(lambda response: f"channel={shop['id']}" in response.url):
        page.select_option("#contact-channel", str(shop["id"]))
    expect(page.locator("#contacts-table tbody tr[data-contact]")).to_have_count(2)
    with page.expect_response(lambda response: "channel=&" in response.url):
        page.select_option("#contact-channel", "")
    page.fill("#contact-q", "dora@example.com")
    # then: only Dora is left, and the address bar keeps the search
    expect(page.locator("#contacts-table tbody tr[data-contact]")).to_have_count(1)
    expect(page.locator("#contacts-table")).to_contain_text("Dora Directory")
    page.wait_for_url(re.compile(r".*/contacts\?q=dora%40example\.com$"))
    # and her row's cells are table cells that line up under the headers
    cells = page.eval_on_selector_all(
        "#contacts-table tr[data-contact] td",
        "cells => cells.map(c => [getComputedStyle(c).display, Math.round(c.getBoundingClientRect().top)])",
    )
    headers = page.eval_on_selector_all(
        "#contacts-table thead th", "cells => cells.map(c => c.getBoundingClientRect().left)"
    )
    lefts = page.eval_on_selector_all(
        "#contacts-table tr[data-contact] td", "cells => cells.map(c => c.getBoundingClientRect().left)"
    )
    assert [display for display, _top in cells] == ["table-cell"] * 4
    assert len({top for _display, top in cells}) == 1
    assert lefts == headers
    # when: he opens her profile (leaving the search box searches nothing again, which would
    # replace the row under his click)
    searches: list[str] = []
    page.on("request", lambda request: searches.append(request.url) if "/ui/contacts/rows" in request.url else None)
    page.click("#contacts-table a.contact-link")
    page.wait_for_url(re.compile(r".*/contacts/\d+$"))
    assert searches == []
    # then: her identities and earlier conversation, and the channel that reaches her
    expect(page.locator("#contact-name")).to_have_text("Dora Directory")
    expect(page.locator("#contact-identities")).to_contain_text("dora@example.com")
    expect(page.locator(f"#contact-conversations tr[data-conversation='{old}']")).to_be_visible()
    expect(page.locator("#start-channel")).to_have_value(str(shop["id"]))
    # when: he writes to her first
    page.fill("#start-body", "Your replacement ships today.")
    page.click("#start-send")
    # then: a new conversation opens in the inbox with his message, and it reaches the customer's system
    page.wait_for_url(re.compile(r".*/inbox\?view=all&c=\d+$"))
    new = int(page.url.rsplit("=", 1)[1])
    assert new != old
    expect(page.locator("#conversation")).to_have_attribute("data-id", str(new))
    expect(page.locator(".timeline")).to_contain_text("Your replacement ships today.")
    sent = eventually(lambda: [r for r in desk.received if r.get("text") == "Your replacement ships today."])
    assert sent[0]["to"]["external_id"] == "dora-1"
    no_page_errors(page)


def test_an_agent_creates_a_contact_by_hand(browser: Browser, contexts: list[BrowserContext], desk: Live) -> None:
    # given
    page = page_for(browser, contexts, desk, "bruno")
    page.goto(f"{desk.url}/contacts")
    # when: a new contact with an e-mail address already taken, then a free one
    desk.api.ok(
        desk.api.post(
            "/api/v1/contacts", {"name": "Taken", "identities": [{"kind": "email", "value": "t@example.com"}]}
        ),
        201,
    )
    page.click("#contact-new-button")
    page.fill("#contact-new input[name=name]", "Hand Made")
    page.fill("#contact-new input[name=email]", "t@example.com")
    page.click("#contact-new button[type=submit]")
    # then: refused with the reason, in Bruno's language
    expect(page.locator("#contact-new .form-error")).to_contain_text("pertenece a otro contacto")
    # when
    page.fill("#contact-new input[name=email]", "hand@example.com")
    page.fill("#contact-new input[name=phone]", "611 222 333")
    page.click("#contact-new button[type=submit]")
    # then: the new contact's profile
    expect(page.locator("#contact-name")).to_have_text("Hand Made")
    expect(page.locator("#contact-identities")).to_contain_text("+34611222333")
    no_page_errors(page)


CSV = (
    "Nombre;Correo;Móvil;Plan\n"
    "Irene Import;irene@example.com;600 333 444;gold\n"
    "Ivan Import;ivan@example.com;;silver\n"
    "Nadie;;;bronze\n"
)


def test_an_admin_imports_a_csv_with_a_mapping_and_a_dry_run(
    browser: Browser, contexts: list[BrowserContext], desk: Live
) -> None:
    # given: Ana, an administrator, on the directory
    page = page_for(browser, contexts, desk, "ana")
    page.goto(f"{desk.url}/contacts")
    page.click("#contacts-import-link")
    page.wait_for_url(re.compile(r".*/contacts/import$"))
    # when: she chooses the file
    page.set_input_files("#import-file", {"name": "clientes.csv", "mimeType": "text/csv", "buffer": CSV.encode()})
    # then: the columns with the suggested mapping, and a first dry run
    rows = page.locator("#mapping-table tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator("#mapping-table tr[data-column='Correo'] select")).to_have_value("email")
    expect(page.locator("#mapping-table tr[data-column='Plan'] select")).to_have_value("ignore")
    expect(page.locator("#import-report-title")).to_have_text("Dry run: nothing was written")
    # when: she maps Plan to a custom attribute and checks again
    page.select_option("#mapping-table tr[data-column='Plan'] select", "attribute:")
    expect(page.locator("#mapping-table tr[data-column='Plan'] input")).to_have_value("plan")
    expect(page.locator("#import-run")).to_be_disabled()
    page.click("#import-check")
    # then: two new contacts, one row rejected with its line and code; nothing written yet
    expect(page.locator("#report-created")).to_have_text("2")
    expect(page.locator("#report-rejected")).to_have_text("1")
    expect(page.locator("#rejected-table tbody tr")).to_have_count(1)
    expect(page.locator("#rejected-table tbody tr[data-code='row_no_identity']")).to_contain_text("4")
    assert _names(desk, "Import") == []
    # when: she imports
    page.click("#import-run")
    # then
    expect(page.locator("#import-report-title")).to_have_text("Import finished")
    expect(page.locator("#report-created")).to_have_text("2")
    imported = _contacts(desk, "Import")
    assert sorted(c["name"] for c in imported) == ["Irene Import", "Ivan Import"]
    assert {c["name"]: c["custom_attributes"] for c in imported}["Irene Import"] == {"plan": "gold"}
    no_page_errors(page)


def _contacts(desk: Live, q: str) -> list[dict[str, Any]]:
    return list(desk.api.ok(desk.api.get("/api/v1/contacts", params={"q": q}))["items"])


def _names(desk: Live, q: str) -> list[str]:
    return [c["name"] for c in _contacts(desk, q)]


def test_whatsapp_to_a_contact_who_never_wrote_takes_a_template(
    browser: Browser, contexts: list[BrowserContext], meta_desk: Stage
) -> None:
    # given: a WhatsApp channel with synced templates, and a contact added by hand
    live, graph = meta_desk.live, meta_desk.graph
    graph.reset()
    channel = whatsapp_channel(live.api, graph)
    live.api.ok(live.api.post(f"/api/v1/channels/{channel['id']}/templates/sync"))
    contact = live.api.ok(
        live.api.post(
            "/api/v1/contacts", {"name": "Sheena New", "identities": [{"kind": "phone", "value": "+1 650 555 1234"}]}
        ),
        201,
    )
    page = page_for(browser, contexts, live, "ana")
    # when: Ana opens the profile
    page.goto(f"{live.url}/contacts/{contact['id']}")
    # then: WhatsApp is templates only, with the reason, and no free text
    expect(page.locator("#start-channel")).to_have_value(str(channel["id"]))
    expect(page.locator("#start-channel option:checked")).to_contain_text("templates only")
    expect(page.locator("#start-hint")).to_contain_text("24 hours")
    expect(page.locator("#start-template")).to_be_visible()
    expect(page.locator("#start-body")).to_be_hidden()
    # when: she sends without a template, then fills the order update's variable
    page.click("#start-send")
    expect(page.locator("#start-conversation .form-error")).to_have_text("Choose a template first.")
    page.select_option("#start-template-picker", label="order_update · es")
    variable = page.locator("#start-template-vars input")
    expect(variable).to_have_count(1)
    variable.fill("A-2002")
    expect(page.locator("#start-template-preview")).to_have_text("Tu pedido A-2002 ya está en camino.")
    page.click("#start-send")
    # then: the new conversation opens with the template's text, and Meta gets a template message
    page.wait_for_url(re.compile(r".*/inbox\?view=all&c=\d+$"))
    expect(page.locator(".msg-outbound", has_text="Tu pedido A-2002 ya está en camino.")).to_be_visible()
    call = eventually(lambda: graph.requests_to("/messages"))[-1]
    assert call.json["to"] == "16505551234"
    assert call.json["template"] == {
        "name": "order_update",
        "language": {"code": "es"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "A-2002"}]}],
    }
    no_page_errors(page)
