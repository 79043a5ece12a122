"""The contacts directory pages: what they show, who may import, and constant query counts."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from hilo.clock import FrozenClock
from tests.channels.provider_support import create_channel, whatsapp_channel
from tests.fakes.meta import FakeGraphAPI
from tests.support import Api
from tests.web.test_query_counts import BASELINES, measure

PASSWORD = "correct horse battery"


def sign_in(client: TestClient, email: str = "admin@example.com") -> None:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text


def fill(api: Api, clock: FrozenClock, start: int, count: int) -> None:
    """`count` contacts: half wrote in (with a labelled conversation), half added by hand."""
    channel = api.api_channel(f"Shop {start}")
    for index in range(start, start + count):
        clock.advance(minutes=1)
        if index % 2:
            api.inbound(channel, f"c{index}", "hello", name=f"Customer {index}", email=f"c{index}@example.com")
        else:
            body = {"name": f"Customer {index}", "identities": [{"kind": "phone", "value": f"+34600{index:06d}"}]}
            api.ok(api.post("/api/v1/contacts", {**body, "custom_attributes": {"plan": "gold"}}), 201)
    for conversation in api.conversations(limit=100):
        api.ok(api.patch(f"/api/v1/conversations/{conversation['id']}", {"labels": ["vip"]}))


def test_directory_queries_do_not_grow_with_contacts(
    app_client: TestClient, api: Api, clock: FrozenClock, database_url: str
) -> None:
    # given: a few contacts
    fill(api, clock, 0, 4)
    sign_in(app_client)
    pages = ("/contacts", "/ui/contacts/rows?q=customer&label=vip", "/contacts?attribute=plan&value=gold")
    few = {path: measure(app_client, path) for path in pages}
    # when: a full page of them, on more channels
    fill(api, clock, 100, 40)
    many = {path: measure(app_client, path) for path in pages}
    # then
    assert many == few
    assert few == {
        "/contacts": BASELINES["contacts_page"],
        # PostgreSQL's search first reads the words' statistics, then collects the matches (search.py).
        "/ui/contacts/rows?q=customer&label=vip": BASELINES[
            "contacts_search_fragment_postgresql"
            if database_url.startswith("postgresql")
            else "contacts_search_fragment"
        ],
        "/contacts?attribute=plan&value=gold": BASELINES["contacts_page"],
    }


def test_directory_lists_filters_and_escapes(app_client: TestClient, api: Api) -> None:
    # given: a contact whose name is markup
    api.ok(
        api.post(
            "/api/v1/contacts",
            {"name": "<img src=x onerror=alert(1)>", "identities": [{"kind": "email", "value": "x@example.com"}]},
        ),
        201,
    )
    api.ok(
        api.post("/api/v1/contacts", {"name": "Ana", "identities": [{"kind": "email", "value": "ana@example.com"}]}),
        201,
    )
    sign_in(app_client)
    # when
    page = app_client.get("/contacts")
    rows = app_client.get("/ui/contacts/rows", params={"q": "ana@example.com"})
    bad = app_client.get("/ui/contacts/rows", params={"attribute": "no spaces allowed"})
    # then
    assert page.status_code == 200
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text and "<img src=x" not in page.text
    assert 'href="/contacts/import"' in page.text  # an administrator may import
    assert rows.text.count('data-contact="') == 1 and "Ana" in rows.text
    assert rows.headers["HX-Push-Url"] == "/contacts?q=ana%40example.com"
    assert bad.status_code == 200 and "An attribute name is 1 to 64 letters" in bad.text


def test_directory_shows_the_kind_of_each_address(app_client: TestClient, api: Api) -> None:
    # given: a customer of the shop's API channel who also gave a Telegram id
    channel = api.api_channel("Shop")
    api.inbound(channel, "customer-48", "hello", name="Nora Kinds")
    [contact] = api.ok(api.get("/api/v1/contacts", params={"q": "Nora"}))["items"]
    api.ok(api.post(f"/api/v1/contacts/{contact['id']}/identities", {"kind": "telegram", "value": "500051"}), 201)
    sign_in(app_client)
    # when
    rows = app_client.get("/ui/contacts/rows", params={"q": "Nora"})
    # then: each value comes with its kind's icon and, for screen readers, its kind's name
    chips = re.findall(r'data-kind="(\w+)"[^>]*>(<svg.*?</svg><span class="sr">[^<]*</span>[^<]*)</span>', rows.text)
    shown = {kind: html for kind, html in chips}
    assert set(shown) == {"api", "telegram"}
    assert (
        '<use href="#i-telegram"/>' in shown["telegram"]
        and '<span class="sr">Telegram: </span>500051' in shown["telegram"]
    )
    assert '<use href="#i-api"/>' in shown["api"]
    assert f'<span class="sr">External id: </span>{channel["id"]}:customer-48' in shown["api"]


def test_profile_page_shows_identities_attributes_conversations_and_channels(app_client: TestClient, api: Api) -> None:
    # given
    channel = api.api_channel("Shop")
    api.inbound(channel, "s1", "hello", name="Shop Customer", email="shop@example.com")
    [conversation] = api.conversations()
    api.ok(api.patch(f"/api/v1/contacts/{conversation['contact_id']}", {"custom_attributes": {"city": "Madrid"}}))
    sign_in(app_client)
    # when
    page = app_client.get(f"/contacts/{conversation['contact_id']}")
    # then
    assert page.status_code == 200
    assert "shop@example.com" in page.text and "Madrid" in page.text
    assert f'data-conversation="{conversation["id"]}"' in page.text
    assert f'<option value="{channel["id"]}"' in page.text
    missing = app_client.get("/contacts/999999")
    assert missing.status_code == 404 and "Contact not found." in missing.text


def test_profile_preselects_the_first_channel_that_takes_free_text(
    app_client: TestClient, api: Api, fake_graph: FakeGraphAPI
) -> None:
    # given: a contact who never wrote, reachable on WhatsApp (templates only outside its window)
    # and, on a later channel, by e-mail
    whatsapp = whatsapp_channel(api, fake_graph)
    email = create_channel(api, "email", {"address": "help@example.com", "smtp_host": "smtp.example.com"}, name="Mail")
    contact = api.ok(
        api.post(
            "/api/v1/contacts",
            {
                "name": "Tess Two",
                "identities": [
                    {"kind": "phone", "value": "+1 650 555 1234"},
                    {"kind": "email", "value": "tess@example.com"},
                ],
            },
        ),
        201,
    )
    sign_in(app_client)
    # when
    page = app_client.get(f"/contacts/{contact['id']}")
    # then: e-mail is chosen; WhatsApp stays offered for a template
    options = dict(
        re.findall(r'<option value="(\d+)"([^>]*)>', page.text.split('id="start-channel"')[1].split("</select>")[0])
    )
    assert " selected " in options[str(email["id"])] + " "
    assert "selected" not in options[str(whatsapp["id"])]
    assert 'data-code="whatsapp_window_closed"' in options[str(whatsapp["id"])]


def test_profile_keeps_the_first_channel_when_none_takes_free_text(
    app_client: TestClient, api: Api, fake_graph: FakeGraphAPI
) -> None:
    # given: a contact reachable only on WhatsApp, outside its window
    whatsapp_channel(api, fake_graph)
    contact = api.ok(
        api.post(
            "/api/v1/contacts", {"name": "Uma One", "identities": [{"kind": "phone", "value": "+1 650 555 4321"}]}
        ),
        201,
    )
    sign_in(app_client)
    # when
    page = app_client.get(f"/contacts/{contact['id']}")
    # then: nothing is forced; the browser shows the WhatsApp channel, for a template
    select = page.text.split('id="start-channel"')[1].split("</select>")[0]
    assert select.count("<option ") == 1 and " selected" not in select


def test_import_page_is_for_administrators_and_supervisors(app_client: TestClient, api: Api) -> None:
    # given
    api.as_new_agent("agent@example.com", "agent")
    api.as_new_agent("sup@example.com", "supervisor")
    # when / then
    sign_in(app_client, "agent@example.com")
    assert app_client.get("/contacts/import").status_code == 403
    assert 'href="/contacts/import"' not in app_client.get("/contacts").text
    sign_in(app_client, "sup@example.com")
    assert app_client.get("/contacts/import").status_code == 200
