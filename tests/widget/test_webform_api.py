"""Web forms over HTTP: the hosted page, a site's own form, the JSON variant and spam protection."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.support import Api
from tests.widget.widget_support import email_channel

SITE = "https://shop.example"


def webform_channel(api: Api, **settings: Any) -> dict[str, Any]:
    body = {"kind": "webform", "name": "Contacto", "settings": {"allowed_origins": SITE, **settings}}
    return api.ok(api.post("/api/v1/channels", body), 201)  # type: ignore[no-any-return]


def form_url(channel: dict[str, Any]) -> str:
    return f"/forms/{channel['config']['public_token']}"


def test_the_hosted_page_speaks_the_visitors_language(api: Api, app_client: TestClient) -> None:
    # given
    channel = webform_channel(api, title={"en": "Contact us", "es": "Contáctanos"}, phone="required")
    # when
    spanish = app_client.get(form_url(channel), headers={"accept-language": "es-ES,es;q=0.9"})
    english = app_client.get(form_url(channel), params={"locale": "en"})
    # then
    assert spanish.status_code == 200
    assert "Contáctanos" in spanish.text and "Enviar mensaje" in spanish.text and 'name="website"' in spanish.text
    assert 'id="f-phone"' in spanish.text and "Teléfono" in spanish.text
    assert "Contact us" in english.text and "Send message" in english.text
    assert app_client.get("/forms/unknown-token").status_code == 404


def test_a_hosted_submission_starts_a_thread_and_shows_thanks(api: Api, app_client: TestClient) -> None:
    # given
    channel = webform_channel(api)
    fields = {
        "name": "Iker Sanz",
        "email": "Iker@Example.com",
        "subject": "Factura",
        "message": "No me llegó la factura de marzo.",
        "order": "A-1001",
        "submission_id": "form-submission-0001",
    }
    # when
    answer = app_client.post(form_url(channel), data=fields, follow_redirects=False)
    thanks = app_client.get(answer.headers["location"])
    again = app_client.post(form_url(channel), data=fields, follow_redirects=False)
    # then: one conversation with the submitter's e-mail identity; the double click is not stored twice
    assert answer.status_code == 303 and "sent=1" in answer.headers["location"]
    assert again.status_code == 303
    assert "Thank you!" in thanks.text
    [conversation] = api.conversations()
    assert conversation["subject"] == "Factura" and conversation["contact_name"] == "Iker Sanz"
    [message] = api.timeline(conversation["id"])
    assert message["body"] == "No me llegó la factura de marzo.\n\norder: A-1001"
    assert message["data"]["form"]["fields"] == {"order": "A-1001"}
    contact = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))
    assert [(i["kind"], i["value"]) for i in contact["identities"]] == [("email", "iker@example.com")]


def test_a_second_submission_joins_the_contacts_thread(api: Api, app_client: TestClient) -> None:
    # given: the customer wrote before on the generic API channel with the same address
    source = api.api_channel()
    api.inbound(source, "c-1", "Hola desde la app", email="nora@example.com")
    channel = webform_channel(api)
    # when
    app_client.post(form_url(channel), data={"email": "nora@example.com", "message": "Y desde la web"})
    # then
    [conversation] = api.conversations()
    assert [m["body"] for m in api.timeline(conversation["id"])] == ["Hola desde la app", "Y desde la web"]
    assert conversation["last_channel_account_id"] == channel["id"]


def test_a_sites_own_form_is_sent_back_to_an_allowed_page_only(api: Api, app_client: TestClient) -> None:
    # given
    channel = webform_channel(api)
    fields = {"email": "ada@example.com", "message": "Hola"}
    # when
    back = app_client.post(
        form_url(channel),
        data={**fields, "redirect": f"{SITE}/gracias"},
        headers={"origin": SITE},
        follow_redirects=False,
    )
    elsewhere = app_client.post(
        form_url(channel),
        data={**fields, "message": "Otra", "redirect": "https://evil.example/phish"},
        headers={"origin": SITE, "accept": "application/json"},
    )
    foreign = app_client.post(
        form_url(channel), data=fields, headers={"origin": "https://evil.example", "accept": "application/json"}
    )
    # then
    assert back.status_code == 303 and back.headers["location"] == f"{SITE}/gracias"
    assert elsewhere.status_code == 422
    assert [d["field"] for d in elsewhere.json()["error"]["details"]] == ["redirect"]
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "origin_not_allowed"
    [conversation] = api.conversations()
    assert [m["body"] for m in api.timeline(conversation["id"])] == ["Hola"]


def test_the_json_variant_reports_each_field(api: Api, app_client: TestClient) -> None:
    # given
    channel = webform_channel(api)
    headers = {"origin": SITE, "accept": "application/json"}
    # when
    invalid = app_client.post(form_url(channel), json={"email": "not-an-address", "locale": "es"}, headers=headers)
    valid = app_client.post(form_url(channel), json={"email": "ana@example.com", "message": "Hola"}, headers=headers)
    preflight = app_client.options(form_url(channel), headers={"origin": SITE, "access-control-request-method": "POST"})
    # then
    assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "form_invalid"
    assert {d["field"]: d["problem"] for d in invalid.json()["error"]["details"]} == {
        "email": "Esta no es una dirección de correo válida.",
        "message": "Este campo es obligatorio.",
    }
    assert valid.status_code == 201 and valid.json() == {"ok": True}
    assert valid.headers["access-control-allow-origin"] == SITE
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == SITE
    assert len(api.conversations()) == 1


def test_spam_is_caught_by_the_honeypot_and_the_rate_limit(api: Api, app_client: TestClient) -> None:
    # given
    channel = webform_channel(api)
    headers = {"accept": "application/json"}
    # when: a bot fills the hidden field; then one address floods the form
    bot = app_client.post(
        form_url(channel), data={"email": "bot@spam.example", "message": "buy", "website": "x"}, headers=headers
    )
    answers = [
        app_client.post(form_url(channel), data={"email": f"p{i}@example.com", "message": f"m{i}"}, headers=headers)
        for i in range(11)
    ]
    # then: the bot is answered like anyone and stores nothing; the flood is refused, and only
    # what was accepted is stored (eleven within two rate windows always exceed the limit of five)
    assert bot.status_code == 201
    accepted = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code == 429]
    assert len(accepted) + len(refused) == 11 and refused
    assert refused[0].json()["error"]["code"] == "rate_limited"
    assert len(api.conversations()) == len(accepted)
    assert all(c["contact_name"] is None for c in api.conversations())


def test_a_form_can_carry_a_file(api: Api, app_client: TestClient) -> None:
    # given
    channel = webform_channel(api)
    # when
    answer = app_client.post(
        form_url(channel),
        data={"email": "luz@example.com", "message": "Adjunto el ticket"},
        files={"file": ("ticket.pdf", b"%PDF-1.4 test", "application/pdf")},
        headers={"accept": "application/json"},
    )
    refused = app_client.post(
        form_url(channel),
        data={"email": "luz@example.com", "message": "Y esto"},
        files={"file": ("page.html", b"<script>", "text/html")},
        headers={"accept": "application/json"},
    )
    # then
    assert answer.status_code == 201
    assert refused.status_code == 415
    [conversation] = api.conversations()
    [message] = api.timeline(conversation["id"])
    assert message["attachments"][0]["filename"] == "ticket.pdf"


def test_replies_to_a_form_go_by_email(api: Api, app_client: TestClient) -> None:
    # given: a submission, and an e-mail channel
    channel = webform_channel(api)
    email = email_channel(api)
    app_client.post(form_url(channel), data={"email": "teo@example.com", "message": "¿Hay stock?"})
    [conversation] = api.conversations()
    # when
    on_form = api.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Sí"})
    options = api.ok(api.get(f"/api/v1/conversations/{conversation['id']}/channels"))
    by_email = api.post(
        f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Sí", "channel_account_id": email["id"]}
    )
    # then
    assert on_form.status_code == 409 and on_form.json()["error"]["code"] == "reply_by_email"
    assert {o["kind"]: o["available"] for o in options} == {"webform": False, "email": True}
    assert by_email.status_code == 201


def test_the_hosted_page_runs_no_script_and_only_the_allowed_sites_frame_it(api: Api, app_client: TestClient) -> None:
    # given: one form for the shop's site, one for any site; an allowed origin that would add a directive
    shop = webform_channel(api)
    anywhere = webform_channel(api, allowed_origins="")
    sneaky = webform_channel(api, allowed_origins=f"{SITE}, https://x.example; script-src *")
    # when
    policies = [
        app_client.get(form_url(channel)).headers["content-security-policy"] for channel in (shop, anywhere, sneaky)
    ]
    # then
    for policy in policies:
        assert "default-src 'none'" in policy and "script-src" not in policy and "base-uri 'none'" in policy
    assert f"form-action 'self' {SITE}; frame-ancestors 'self' {SITE}" in policies[0]
    assert "form-action 'self'; frame-ancestors *" in policies[1]
    assert f"frame-ancestors 'self' {SITE}" in policies[2] and policies[2].endswith(SITE)
