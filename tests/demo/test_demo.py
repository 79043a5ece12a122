"""The demo: a complete desk, channels whose replies the demo provider delivers, a page to chat from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hilo.agents.actions import create_token
from hilo.agents.models import Agent
from hilo.app import create_app
from hilo.channels.base import IdentityKind
from hilo.clock import FrozenClock
from hilo.demo import DEMO_PASSWORD, demo_sign_in, seed
from hilo.demo.seed import _identity_for
from hilo.settings import Settings
from tests.conftest import run_worker_once
from tests.support import Api


@pytest.fixture
def demo(settings: Settings) -> Iterator[Api]:
    """The demo seeded (a few customers), served, and its admin signed in by token."""
    seed(settings, contacts=6)
    app = create_app(settings, clock=FrozenClock(datetime.now(UTC)))
    with TestClient(app) as client:
        runtime = app.state.runtime
        with runtime.transaction() as tx:
            admin = tx.session.execute(select(Agent).where(Agent.email == "admin@example.com")).scalar_one()
            _row, token = create_token(tx, admin, "tests")
        yield Api(client, token, admin.id)


def test_the_demo_seeds_a_complete_desk(demo: Api) -> None:
    # when
    channels = demo.ok(demo.get("/api/v1/channels"))
    # then: every kind of the demo, all on the demo provider, and the shop's chat widget
    kinds = sorted(c["kind"] for c in channels)
    assert kinds == ["api", "email", "sms", "telegram", "whatsapp", "widget"]
    assert all(c["config"]["transport"] == "demo" for c in channels)
    # and the desk's settings, in the demo's Spanish-speaking context
    [hours] = demo.ok(demo.get("/api/v1/business-hours"))
    assert hours["timezone"] == "Europe/Madrid" and hours["holiday_country"] == "ES"
    policies = demo.ok(demo.get("/api/v1/sla-policies"))
    assert {p["name"] for p in policies} == {"Urgente", "Estándar"}
    assert all(p["business_hours_id"] == hours["id"] for p in policies)
    shortcuts = {c["shortcut"] for c in demo.ok(demo.get("/api/v1/canned-responses"))}
    assert {"saludo", "envio", "devolucion", "factura", "despedida"} <= shortcuts
    assert {m["name"] for m in demo.ok(demo.get("/api/v1/macros"))} == {
        "Cerrar con agradecimiento",
        "Pasar a facturación",
    }
    [rule] = demo.ok(demo.get("/api/v1/automation/rules"))
    assert rule["event"] == "message.received" and rule["active"]


def test_customers_who_just_wrote_wait_for_an_answer(demo: Api) -> None:
    # when
    waiting = {c["contact_name"] for c in demo.conversations(status="open") if c["waiting_since"]}
    # then
    assert {"Nerea Vidal", "Tomás Herrera", "Irene Pastor", "Kevin O'Brien"} <= waiting


def test_a_reply_on_a_demo_channel_is_delivered_by_the_demo_provider(demo: Api) -> None:
    # given: the customer who just wrote on WhatsApp
    [conversation] = [c for c in demo.conversations(status="open") if c["contact_name"] == "Nerea Vidal"]
    # when: the agent answers on the channel the customer used, and the outbox runs
    sent = demo.ok(
        demo.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "¡Sale hoy, Nerea!"}), 201
    )
    ran = run_worker_once(demo.client)
    # then: the demo provider took it and reported it delivered
    reply = demo.timeline(conversation["id"])[-1]
    assert ran == 1
    assert reply["id"] == sent["id"] and reply["status"] == "delivered"
    assert reply["provider_message_id"].startswith("demo:")
    assert reply["status_code"] is None


def test_the_connection_test_of_a_demo_channel_names_the_demo_provider(demo: Api) -> None:
    # given: the demo's channels whose kinds call a provider (their settings name none that answers:
    # the e-mail channel's smtp.example.com:587 cannot be reached)
    channels = [
        c for c in demo.ok(demo.get("/api/v1/channels")) if c["kind"] in ("whatsapp", "sms", "email", "telegram")
    ]
    # when
    results = {c["kind"]: demo.ok(demo.post(f"/api/v1/channels/{c['id']}/check")) for c in channels}
    # then: each succeeds at once, answered by the built-in demo provider, in the admin's Spanish
    assert sorted(results) == ["email", "sms", "telegram", "whatsapp"]
    for result in results.values():
        assert (result["ok"], result["code"], result["setting"]) == (True, "demo_provider", None)
        assert result["message"].startswith("Este es un canal de demostración")


def test_no_one_can_put_a_channel_on_the_demo_provider(demo: Api) -> None:
    # given: a real channel and a demo one
    channels = demo.ok(demo.get("/api/v1/channels"))
    whatsapp = next(c for c in channels if c["kind"] == "whatsapp")
    # when: an admin asks for the demo transport on a new channel, or takes it off a demo one
    created = demo.post(
        "/api/v1/channels",
        {"kind": "api", "name": "Shop", "settings": {"outbound_url": "https://x.test/h", "transport": "demo"}},
    )
    changed = demo.patch(f"/api/v1/channels/{whatsapp['id']}", {"settings": {"transport": "provider"}})
    # then: neither is a setting of any channel
    assert created.status_code == 422 and created.json()["error"]["code"] == "setting_unknown"
    assert changed.status_code == 422 and changed.json()["error"]["code"] == "setting_unknown"
    assert demo.ok(demo.get(f"/api/v1/channels/{whatsapp['id']}"))["config"]["transport"] == "demo"


def test_the_demo_page_embeds_the_demo_chat_in_the_visitors_language(demo: Api) -> None:
    # given
    [widget] = [c for c in demo.ok(demo.get("/api/v1/channels")) if c["kind"] == "widget"]
    token = widget["config"]["public_token"]
    # when
    spanish = demo.client.get("/demo/widget", headers={"accept-language": "es-ES,es;q=0.9"})
    english = demo.client.get("/demo/widget?lang=en")
    # then
    assert spanish.status_code == 200
    assert f'src="/widget/{token}/widget.js" data-token="{token}" data-locale="es"' in spanish.text
    assert "Escríbenos por el chat" in spanish.text
    assert 'data-locale="en"' in english.text and "Write to us in the chat" in english.text
    assert "script-src 'self';" in spanish.headers["content-security-policy"]


def test_the_admin_marks_demo_channels_and_links_the_demo_page(demo: Api) -> None:
    # given
    demo.client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": DEMO_PASSWORD})
    # when
    page = demo.client.get("/admin/channels").text
    # then: every demo channel says so (the admin's language is Spanish), the chat links its page
    assert page.count('<span class="pill pill-warn">Demo</span>') == 6
    assert page.count("proveedor de demostración integrado en Hilo") == 5
    assert page.count('href="/demo/widget"') == 1


def test_the_demo_sign_in_is_offered_only_while_it_works(demo: Api, settings: Settings) -> None:
    # given: the demo's admin can sign in with the demo password
    assert demo_sign_in(settings) == {"email": "admin@example.com", "password": DEMO_PASSWORD}
    # when: they choose their own password
    demo.client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": DEMO_PASSWORD})
    csrf = demo.client.get("/api/v1/auth/me").json().get("csrf_token", "")
    changed = demo.client.patch(
        "/api/v1/auth/me",
        json={"current_password": DEMO_PASSWORD, "password": "a brand new passphrase"},
        headers={"x-csrf-token": csrf},
    )
    # then
    assert changed.status_code == 200, changed.text
    assert demo_sign_in(settings) is None


def test_without_the_demo_there_is_no_demo_page_nor_demo_sign_in(
    app_client: TestClient, api: Api, settings: Settings
) -> None:
    # given: an installation with a chat channel of its own
    api.ok(api.post("/api/v1/channels", {"kind": "widget", "name": "Chat", "settings": {}}), 201)
    # when
    page = app_client.get("/demo/widget")
    # then
    assert page.status_code == 404
    assert demo_sign_in(settings) is None
    app_client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"})
    channels = app_client.get("/admin/channels")
    assert channels.status_code == 200 and "channel-card" in channels.text
    assert 'pill-warn">Demo<' not in channels.text and "/demo/widget" not in channels.text


def test_seeding_twice_keeps_the_first_demo(settings: Settings) -> None:
    # given
    first = seed(settings, contacts=2)
    # when: seeded again, even when told to seed a database that has contacts
    again = seed(replace(settings), contacts=2)
    forced = seed(replace(settings), contacts=2, force=True)
    # then
    assert first["contacts"] == 6
    assert again["skipped"] is True and forced == again


def test_reset_seeds_a_database_with_contacts_of_its_own(api: Api, settings: Settings) -> None:
    # given: an installation with a customer and a team named like the demo's
    api.inbound(api.api_channel(), "cust", "Hello")
    api.ok(api.post("/api/v1/teams", {"name": "Soporte"}), 201)
    # when
    skipped = seed(settings, contacts=2)
    seeded = seed(settings, contacts=2, force=True)
    # then: the demo joins what was there, reusing the team
    assert skipped["reason"] == "the database already has contacts"
    assert seeded["contacts"] == 6
    assert [t["name"] for t in api.ok(api.get("/api/v1/teams"))].count("Soporte") == 1


def test_after_whatsapps_window_the_demo_reaches_the_customer_with_an_approved_template(demo: Api) -> None:
    # given: a WhatsApp customer of the demo's history who last wrote more than a day ago
    whatsapp = next(c for c in demo.ok(demo.get("/api/v1/channels")) if c["kind"] == "whatsapp")
    now = datetime.now(UTC)
    old = [
        c
        for c in demo.conversations(status=["open", "pending", "resolved"])
        if c["last_channel_account_id"] == whatsapp["id"]
        and c["last_inbound_at"]
        and (now - datetime.fromisoformat(c["last_inbound_at"])).days >= 1
    ]
    assert old, "the demo has no WhatsApp customer outside the 24-hour window"
    url = f"/api/v1/conversations/{old[0]['id']}/messages"
    # when: the agent writes freely, then with one of the channel's templates
    free = demo.post(url, {"body": "Hola", "channel_account_id": whatsapp["id"]})
    templates = demo.ok(demo.get(f"/api/v1/channels/{whatsapp['id']}/templates"))["items"]
    spanish = next(t for t in templates if t["language"] == "es")
    template = {
        "name": spanish["name"],
        "language": "es",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
    }
    sent = demo.post(url, {"template": template, "channel_account_id": whatsapp["id"]})
    run_worker_once(demo.client)
    # then: WhatsApp's rule holds on the demo channel too, and the template goes out delivered
    assert free.status_code == 409 and free.json()["error"]["code"] == "whatsapp_window_closed"
    assert sent.status_code == 201, sent.text
    assert demo.timeline(old[0]["id"])[-1]["status"] == "delivered"


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("Lucía Serrano", "lucia.2@example.net"),
        ("Óscar Sanz", "oscar.2@example.net"),
        ("Diego Muñoz", "diego.2@example.net"),
        ("Kevin O'Brien", "kevin.2@example.net"),
        ("Σοφία Παπαδοπούλου", "cliente.2@example.net"),
    ],
)
def test_a_demo_customers_address_keeps_the_letters_of_their_name(name: str, address: str) -> None:
    # when
    ref = _identity_for("email", 2, name, account_id=1)
    # then: accented letters lose only their accent
    assert (ref.kind, ref.value) == (IdentityKind.EMAIL, address)
