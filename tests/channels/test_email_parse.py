"""E-mail parsing: raw MIME fixtures, Mailgun forward() webhooks, quoting, HTML safety, bounces."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from hilo.channels.base import (
    ChannelAccountView,
    DeliveryStatus,
    IdentityKind,
    IdentityRef,
    MessageKind,
    SendContext,
    WebhookError,
    WebhookRequest,
)
from hilo.channels.email import EmailAdapter, mailgun_signature, result_from_mime
from hilo.channels.email_parse import (
    SanitizedHtml,
    build_outbound_mime,
    fold_quoted,
    parse_message,
    sanitize_html,
)
from hilo.i18n import catalog
from tests.channels.provider_support import fixture

SIGNING_KEY = "TEST_WEBHOOK_SIGNING_KEY"
ACCOUNT = ChannelAccountView(
    id=5,
    kind="email",
    name="Support",
    config={"address": "support@example.com", "smtp_host": "smtp.example.com"},
    secrets={"mailgun_signing_key": SIGNING_KEY},
)


def vector(name: str) -> dict[str, Any]:
    """The Mailgun signature vector of one fixture (skips without the fixtures folder)."""
    return dict(json.loads(fixture("signature_vectors.json"))[name])


def adapter_at(timestamp: str | int) -> EmailAdapter:
    return EmailAdapter(clock=lambda: float(timestamp) + 30)


def request(body: bytes, content_type: str) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://hilo.example/webhooks/email/5",
        headers={"content-type": content_type},
        query={},
        body=body,
    )


def signed_fields(fields: dict[str, str], timestamp: str = "1700000000") -> dict[str, str]:
    token = "f" * 50
    return {
        **fields,
        "timestamp": timestamp,
        "token": token,
        "signature": mailgun_signature(SIGNING_KEY, timestamp, token),
    }


def multipart(fields: dict[str, str], files: list[tuple[str, str, str, bytes]]) -> tuple[bytes, str]:
    boundary = "hiloBoundary7MA4YWxkTrZu0gW"
    chunks: list[bytes] = []
    for name, value in fields.items():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
        )
    for name, filename, content_type, data in files:
        chunks.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def simple(body: str, **headers: str) -> bytes:
    base = {
        "From": "Ana Pérez <Ana@Example.com>",
        "To": "support@example.com",
        "Subject": "Pedido",
        "Message-ID": "<m1@example.com>",
        "Content-Type": 'text/plain; charset="utf-8"',
    }
    base.update({name.replace("_", "-"): value for name, value in headers.items()})
    head = "".join(f"{name}: {value}\n" for name, value in base.items())
    return (head + "\n" + body).encode("utf-8")


# --- raw MIME fixtures -------------------------------------------------------------------


def test_gmail_reply_fixture_is_threaded_and_folded() -> None:
    # given
    raw = fixture("email_reply_with_quote_chatwoot.eml")

    # when
    message = parse_message(raw)

    # then
    assert message.provider_message_id == ("<CAFkiBVwJjO_k_e-LpiKi7MAQAKbHX5nkEPcf0y1R=bjcEHogMg@mail.gmail.com>")
    assert message.sender == IdentityRef(IdentityKind.EMAIL, "sony@chatwoot.com")
    assert message.sender_name == "Sony Mathew"
    assert message.subject == "Re: Checking mail forwarding to cw inbox"
    assert message.text == "Yes, I am providing you step how to reproduce this issue"
    assert message.reply_to_provider_ids == [
        "<0100017b5d8efc70-c7f18809-aa55-48f6-91fd-b626092ed8b3-000000@email.amazonses.com>",
        "<CAFkiBVxGoURoqdkY-O_25F-8b41kb-GWBc6hh4Djd5ynwOikXA@mail.gmail.com>",
    ]
    assert message.data["quoted"].startswith("On Thu, Aug 19, 2021 at 2:07 PM")
    assert "> Any update on this?" in message.data["quoted"]
    assert "Software developer" in message.data["quoted"]
    assert "> Any update on this?" in message.data["full_text"]
    assert message.data["to"] == ["reply+6bdc3f4d-0bec-4515-a284-5d916fdde489@example.com"]
    assert message.sent_at == datetime(2021, 8, 19, 8, 44, 31, tzinfo=UTC)
    assert message.html is not None and "Any update on this?" in message.html
    assert "style=" not in message.html
    assert message.auto_generated is False
    assert message.conversation_token is None


def test_apple_mail_fixture_keeps_in_reply_to_first_and_odd_reference() -> None:
    # given
    raw = fixture("email_reply_references_chatwoot.eml")

    # when
    message = parse_message(raw)

    # then
    assert message.provider_message_id == "<0CB459E0-0336-41DA-BC88-E6E28C697DDBF@chatwoot.com>"
    assert message.reply_to_provider_ids == [
        "<4e6e35f5a38b4_479f13bb90078178@small-app-01.mail>",
        "<test-reference-id>",
    ]
    assert message.text == "Email with references header"
    assert message.data["headers"]["X-Mailer"] == "Apple Mail (2.1244.3)"


# --- Mailgun webhooks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("email_mailgun_route_forward_anymail.form", "application/x-www-form-urlencoded"),
        ("email_mailgun_route_forward_anymail.json", "application/json"),
    ],
)
def test_mailgun_forward_fixture_form_and_json(name: str, content_type: str) -> None:
    # given
    body = fixture(name)
    adapter = adapter_at(vector(name.replace(".form", ".json"))["timestamp"])

    # when
    result = adapter.parse_webhook(ACCOUNT, request(body, content_type))

    # then
    [message] = result.messages
    assert message.provider_message_id == "<CAEPk3R+4Zr@mail.example.org>"
    assert message.sender == IdentityRef(IdentityKind.EMAIL, "from+test@example.org")
    assert message.sender_name == "Displayed From"
    assert message.subject == "Test subject"
    assert message.text == "stripped plaintext body"
    assert message.data["full_text"] == "Test body plain"
    assert message.html == "<div>Test body html</div>"
    assert message.data["to"] == ["test@inbound.example.com", "other@example.com"]
    assert message.data["cc"] == ["cc@example.com"]
    assert message.data["recipient"] == "test@inbound.example.com"
    assert message.sent_at == datetime(2017, 10, 12, 1, 31, 4, tzinfo=UTC)
    assert "signature" not in message.raw


def test_mailgun_constructed_reply_threads_like_the_raw_message() -> None:
    # given
    name = "email_mailgun_route_forward_reply_constructed.json"
    adapter = adapter_at(vector(name)["timestamp"])

    # when
    [message] = adapter.parse_webhook(ACCOUNT, request(fixture(name), "application/json")).messages

    # then
    from_mime = parse_message(fixture("email_reply_with_quote_chatwoot.eml"))
    assert message.provider_message_id == from_mime.provider_message_id
    assert message.reply_to_provider_ids == from_mime.reply_to_provider_ids
    assert message.text == "Yes, I am providing you step how to reproduce this issue"
    assert message.data["signature"] == "* Sony Mathew*\nSoftware developer\n*Mob:9999999999"
    assert "> Any update on this?" in message.data["quoted"]


@pytest.mark.parametrize(
    "name",
    ["email_mailgun_route_forward_anymail.json", "email_mailgun_route_forward_reply_constructed.json"],
)
def test_mailgun_signature_vectors(name: str) -> None:
    # given
    signed = vector(name)
    payload = json.loads(fixture(name))

    # when
    computed = mailgun_signature(signed["webhook_signing_key"], signed["timestamp"], signed["token"])

    # then
    assert computed == signed["signature"] == payload["signature"]


def test_mailgun_tampered_signature_is_refused() -> None:
    # given
    name = "email_mailgun_route_forward_anymail.json"
    payload = json.loads(fixture(name))
    payload["token"] = payload["token"][:-1] + "1"
    adapter = adapter_at(payload["timestamp"])

    # when
    with pytest.raises(WebhookError) as caught:
        adapter.parse_webhook(ACCOUNT, request(json.dumps(payload).encode(), "application/json"))

    # then
    assert (caught.value.code, caught.value.status) == ("signature_invalid", 401)


def test_mailgun_wrong_key_is_refused() -> None:
    # given
    name = "email_mailgun_route_forward_anymail.form"
    account = ChannelAccountView(5, "email", "Support", {}, {"mailgun_signing_key": "other-key"})
    adapter = adapter_at(vector("email_mailgun_route_forward_anymail.json")["timestamp"])

    # when
    with pytest.raises(WebhookError) as caught:
        adapter.parse_webhook(account, request(fixture(name), "application/x-www-form-urlencoded"))

    # then
    assert caught.value.code == "signature_invalid"


def test_mailgun_unsigned_post_is_refused() -> None:
    # given
    body = urlencode({"from": "ana@example.com", "body-plain": "hi"}).encode()

    # when
    with pytest.raises(WebhookError) as caught:
        EmailAdapter().parse_webhook(ACCOUNT, request(body, "application/x-www-form-urlencoded"))

    # then
    assert (caught.value.code, caught.value.status) == ("signature_missing", 401)


def test_mailgun_stale_timestamp_is_refused() -> None:
    # given: the real clock, and a fixture signed in 2016
    name = "email_mailgun_route_forward_anymail.form"

    # when
    with pytest.raises(WebhookError) as caught:
        EmailAdapter().parse_webhook(ACCOUNT, request(fixture(name), "application/x-www-form-urlencoded"))

    # then
    assert (caught.value.code, caught.value.status) == ("timestamp_stale", 401)


def test_mailgun_without_signing_key_is_refused() -> None:
    # given
    account = ChannelAccountView(5, "email", "Support", {}, {})
    body = urlencode(signed_fields({"from": "ana@example.com"})).encode()

    # when
    with pytest.raises(WebhookError) as caught:
        adapter_at(1700000000).parse_webhook(account, request(body, "application/x-www-form-urlencoded"))

    # then
    assert caught.value.code == "signing_key_missing"


def test_mailgun_body_mime_goes_through_the_raw_parser() -> None:
    # given
    raw = fixture("email_reply_with_quote_chatwoot.eml")
    fields = signed_fields({"body-mime": raw.decode(), "sender": "sony@chatwoot.com"})
    body = urlencode(fields).encode()

    # when
    [message] = (
        adapter_at(fields["timestamp"])
        .parse_webhook(ACCOUNT, request(body, "application/x-www-form-urlencoded"))
        .messages
    )

    # then
    expected = parse_message(raw)
    assert message.provider_message_id == expected.provider_message_id
    assert message.text == expected.text
    assert message.reply_to_provider_ids == expected.reply_to_provider_ids


def test_mailgun_multipart_attachments_keep_their_bytes_and_inline_flag() -> None:
    # given
    picture = bytes(range(256)) + b"\r\n\r\n--not-a-boundary\r\n\x00"
    fields = signed_fields(
        {
            "from": "Ana <ana@example.com>",
            "subject": "Foto",
            "body-plain": "Mira la foto",
            "attachment-count": "2",
            "content-id-map": json.dumps({"<logo@example.com>": "attachment-2"}),
            "message-headers": json.dumps([["Message-Id", "<photo@example.com>"]]),
        }
    )
    body, content_type = multipart(
        fields,
        [
            ("attachment-1", "foto.jpg", "image/jpeg", picture),
            ("attachment-2", "logo.png", "image/png", b"\x89PNG\r\n"),
        ],
    )

    # when
    [message] = adapter_at(fields["timestamp"]).parse_webhook(ACCOUNT, request(body, content_type)).messages

    # then
    assert message.provider_message_id == "<photo@example.com>"
    assert [a.data for a in message.attachments] == [picture, b"\x89PNG\r\n"]
    assert [a.kind for a in message.attachments] == [MessageKind.IMAGE, MessageKind.IMAGE]
    assert message.attachments[0].filename == "foto.jpg"
    assert message.data["attachments"] == [
        {"filename": "foto.jpg", "inline": False, "content_id": None},
        {"filename": "logo.png", "inline": True, "content_id": "logo@example.com"},
    ]


def test_mailgun_event_webhooks_become_statuses() -> None:
    # given
    timestamp = "1700000000"
    token = "e" * 50
    failed = {
        "signature": {
            "timestamp": timestamp,
            "token": token,
            "signature": mailgun_signature(SIGNING_KEY, timestamp, token),
        },
        "event-data": {
            "event": "failed",
            "severity": "permanent",
            "timestamp": 1700000000.5,
            "message": {"headers": {"message-id": "hilo.42.abc@example.com"}},
            "delivery-status": {"code": 550, "description": "No such user"},
        },
    }

    # when
    result = adapter_at(timestamp).parse_webhook(ACCOUNT, request(json.dumps(failed).encode(), "application/json"))

    # then
    [status] = result.statuses
    assert status.provider_message_id == "<hilo.42.abc@example.com>"
    assert status.status is DeliveryStatus.FAILED
    assert status.error_code == "550"
    assert status.error_message == "No such user"
    assert result.messages == []


def test_mailgun_garbage_json_is_malformed() -> None:
    # when
    with pytest.raises(WebhookError) as caught:
        EmailAdapter().parse_webhook(ACCOUNT, request(b"{not json", "application/json"))

    # then
    assert (caught.value.code, caught.value.status) == ("payload_malformed", 400)


# --- charsets and encodings -------------------------------------------------------------


def test_iso_8859_1_and_windows_1252_bodies() -> None:
    # given
    latin1 = simple("", Content_Type="text/plain; charset=iso-8859-1")
    latin1 += "Mañana llegará el envío".encode("latin-1")
    cp1252 = simple("", Content_Type="text/plain; charset=windows-1252")
    cp1252 += "\u201cPrecio\u201d: 20 \u20ac".encode("cp1252")

    # when
    from_latin1 = parse_message(latin1)
    from_cp1252 = parse_message(cp1252)

    # then
    assert from_latin1.text == "Mañana llegará el envío"
    assert from_cp1252.text == "\u201cPrecio\u201d: 20 \u20ac"


def test_unknown_charset_decodes_with_replacement() -> None:
    # given
    raw = simple("", Content_Type="text/plain; charset=x-klingon") + b"caf\xe9 ok"

    # when
    message = parse_message(raw)

    # then
    assert message.text == "caf\ufffd ok"


def test_base64_and_quoted_printable_parts() -> None:
    # given
    encoded = base64.b64encode("¿Dónde está mi pedido?".encode()).decode()
    raw = (
        "From: ana@example.com\nMessage-ID: <enc@example.com>\nSubject: x\n"
        'Content-Type: multipart/alternative; boundary="b"\n\n'
        "--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        f"{encoded}\n"
        "--b\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        "<p>=C2=BFD=C3=B3nde est=C3=A1 mi pedido?</p>\n"
        "--b--\n"
    ).encode()

    # when
    message = parse_message(raw)

    # then
    assert message.text == "¿Dónde está mi pedido?"
    assert message.html == "<p>¿Dónde está mi pedido?</p>"


def test_rfc2047_subjects_and_names() -> None:
    # given
    raw = simple(
        "hola",
        Subject="=?ISO-8859-1?Q?Informaci=F3n_del_pedido?= [#123]",
        From="=?UTF-8?B?Sm9zw6kgTsO6w7Fleg==?= <jose@example.com>",
    )
    broken = simple("hola", Subject="=?x-unknown?Q?caf=E9?= y m\xe1s")

    # when
    message = parse_message(raw)
    broken_message = parse_message(broken)

    # then
    assert message.subject == "Información del pedido [#123]"
    assert message.conversation_token == 123
    assert message.sender_name == "José Núñez"
    assert broken_message.subject is not None and "más" in broken_message.subject


def test_sender_address_is_lower_cased_and_locale_read() -> None:
    # when
    message = parse_message(simple("hola", Content_Language="es-MX"))

    # then
    assert message.sender.value == "ana@example.com"
    assert message.locale == "es-MX"


# --- quoting -----------------------------------------------------------------------------


def test_spanish_gmail_quote_is_folded() -> None:
    # given
    text = (
        "Sí, ya llegó. Gracias.\n\n"
        "El lun, 3 mar 2025 a las 10:00, Soporte (<support@example.com>)\nescribió:\n\n"
        "> ¿Recibió el paquete?\n>\n"
    )

    # when
    reply, quoted = fold_quoted(text)

    # then
    assert reply == "Sí, ya llegó. Gracias."
    assert quoted.startswith("El lun, 3 mar 2025") and "> ¿Recibió el paquete?" in quoted


@pytest.mark.parametrize(
    "history",
    [
        "________________________________\nFrom: Support <support@example.com>\n"
        "Sent: Monday, March 3, 2025 10:00 AM\nTo: Ana <ana@example.com>\n"
        "Subject: RE: Pedido\n\nDid it arrive?",
        "De: Soporte <support@example.com>\nEnviado: lunes, 3 de marzo de 2025 10:00\n"
        "Para: Ana <ana@example.com>\nAsunto: RE: Pedido\n\n¿Llegó?",
        "-----Original Message-----\nFrom: Support\nDid it arrive?",
        "-----Mensaje original-----\nDe: Soporte\n¿Llegó?",
    ],
)
def test_outlook_blocks_are_folded(history: str) -> None:
    # when
    reply, quoted = fold_quoted("Yes, thanks.\n\n" + history)

    # then
    assert reply == "Yes, thanks."
    assert quoted == history


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("Gracias por todo.\n-- \nAna Pérez\nGerente", "Gracias por todo."),
        ("On my way.\n\nSent from my iPhone", "On my way."),
        ("Voy en camino.\n\nEnviado desde mi iPhone", "Voy en camino."),
        ("Thanks!\n\n> earlier text\n> more", "Thanks!"),
    ],
)
def test_signatures_and_trailing_quotes_are_folded(text: str, reply: str) -> None:
    # when
    folded, quoted = fold_quoted(text)

    # then
    assert folded == reply
    assert quoted and quoted in text


def test_interleaved_answers_are_kept() -> None:
    # given
    text = "> What is your order number?\n12345\n> And your postcode?\n28001"

    # when
    reply, quoted = fold_quoted(text)

    # then
    assert reply == text
    assert quoted == ""


def test_nothing_but_history_stays_visible() -> None:
    # given
    text = "-----Original Message-----\nFrom: Support\nDid it arrive?"

    # when
    reply, quoted = fold_quoted(text)

    # then
    assert reply == text
    assert quoted == ""


# --- HTML safety -------------------------------------------------------------------------


def test_html_is_sanitised_and_remote_images_blocked() -> None:
    # given
    markup = (
        '<style>body{display:none}</style><p onclick="steal()" style="color:red">Hola'
        '<script>alert(1)</script></p><img src="https://tracker.example/p.gif" alt="x">'
        '<img src="cid:logo@example.com"><a href="javascript:alert(1)">a</a>'
        '<a href="data:text/html,boom">b</a><a href="https://example.com">c</a>'
    )

    # when
    sanitized = sanitize_html(markup)

    # then
    assert "script" not in sanitized.html and "alert" not in sanitized.html
    assert "onclick" not in sanitized.html and "style" not in sanitized.html
    assert "display:none" not in sanitized.html
    assert 'data-blocked-src="https://tracker.example/p.gif"' in sanitized.html
    assert ' src="https://tracker.example' not in sanitized.html
    assert 'src="cid:logo@example.com"' in sanitized.html
    assert "data:text/html" not in sanitized.html
    assert 'href="https://example.com"' in sanitized.html
    assert sanitized.remote_images == 1


@pytest.mark.parametrize(
    "src",
    [
        "//t.example/p.gif",
        " //t.example/p.gif",
        "\t//t.example/p.gif",
        "\\\\t.example/p.gif",
        "/\\t.example/p.gif",
        "HTTPS://t.example/p.gif",
        "Http://t.example/p.gif",
        "h&#9;ttps://t.example/p.gif",
        "https:&#x2F;&#x2F;t.example/p.gif",
    ],
)
def test_every_remote_image_spelling_is_blocked(src: str) -> None:
    # given: a tracking pixel written the ways browsers still fetch (protocol-relative,
    # backslashes, upper-case scheme, spaces or tabs the URL parser drops)
    markup = f'<p>Hola</p><img alt="x" src="{src}" width="1">'
    # when
    sanitized = sanitize_html(markup)
    # then: no src is left that a browser would load; the URL waits for "show images"
    assert " src=" not in sanitized.html
    assert "data-blocked-src=" in sanitized.html
    assert 'alt="x"' in sanitized.html and 'width="1"' in sanitized.html
    assert sanitized.remote_images == 1


@pytest.mark.parametrize(
    "markup",
    [
        '<img srcset="https://t.example/a.gif 1x, //t.example/b.gif 2x">',
        '<picture><source srcset="https://t.example/a.gif"></picture>',
        '<div style="background:url(https://t.example/a.gif)">x</div>',
        '<div style="background-image:url(//t.example/a.gif)">x</div>',
        '<table background="https://t.example/a.gif"><tr><td background="//t.example/b.gif">x</td></tr></table>',
        '<body background="//t.example/a.gif">x</body>',
        '<svg><image href="https://t.example/a.gif"/><image xlink:href="//t.example/b.gif"/></svg>',
        '<video poster="//t.example/a.gif"></video><audio src="//t.example/a.mp3"></audio>',
        '<input type="image" src="//t.example/a.gif"><object data="//t.example/a.swf"></object>',
        '<link rel="stylesheet" href="//t.example/a.css"><style>@import url(//t.example/b.css);</style>',
        '<img dynsrc="//t.example/a.avi" lowsrc="//t.example/a.gif">',
    ],
)
def test_no_other_attribute_fetches_remotely(markup: str) -> None:
    # given: every other way HTML makes a browser fetch something by itself
    # when
    sanitized = sanitize_html(markup)
    # then: the sanitiser's allow-lists leave none of them
    assert "t.example" not in sanitized.html


def test_relative_image_sources_are_dropped_and_inline_ones_kept() -> None:
    # given: paths that would be fetched from Hilo itself with the agent's cookies,
    # next to the inline images a mail refers to
    markup = (
        '<img src="/ui/logout"><img src="settings?x=1"><img src="cid:logo@example.com">'
        '<img src="data:image/png;base64,iVBORw0KGgo=">'
    )
    # when
    sanitized = sanitize_html(markup, block_remote_images=False)
    # then
    assert "logout" not in sanitized.html and "settings" not in sanitized.html
    assert 'src="cid:logo@example.com"' in sanitized.html
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in sanitized.html
    assert sanitized.remote_images == 0


def test_remote_images_stay_when_the_agent_allows_them() -> None:
    # given
    markup = '<img src="//t.example/p.gif">'
    # when
    sanitized = sanitize_html(markup, block_remote_images=False)
    # then
    assert sanitized == SanitizedHtml('<img src="//t.example/p.gif">', 0)


def test_html_only_message_gets_a_text_version() -> None:
    # given
    raw = simple(
        "<div>Hola,<br>mi pedido&nbsp;no lleg&oacute;.</div><p>Ana</p>",
        Content_Type="text/html; charset=utf-8",
    )

    # when
    message = parse_message(raw)

    # then
    assert message.text == "Hola,\nmi pedido no llegó.\nAna"
    assert message.html == "<div>Hola,<br>mi pedido&nbsp;no llegó.</div><p>Ana</p>"


# --- attachments, auto-replies and bounces -----------------------------------------------


def test_attachments_and_inline_images() -> None:
    # given
    pdf = b"%PDF-1.4\n\x00\xff binary"
    raw = (
        "From: ana@example.com\nMessage-ID: <att@example.com>\nSubject: Factura\n"
        'Content-Type: multipart/mixed; boundary="m"\n\n'
        '--m\nContent-Type: multipart/related; boundary="r"\n\n'
        "--r\nContent-Type: text/html; charset=utf-8\n\n"
        '<p>Ver logo <img src="cid:logo1"></p>\n'
        "--r\nContent-Type: image/png\nContent-ID: <logo1>\nContent-Transfer-Encoding: base64\n\n"
        f"{base64.b64encode(b'PNGDATA').decode()}\n"
        "--r--\n"
        '--m\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="factura.pdf"\n'
        "Content-Transfer-Encoding: base64\n\n"
        f"{base64.b64encode(pdf).decode()}\n"
        "--m--\n"
    ).encode()

    # when
    message = parse_message(raw)

    # then
    image, document = message.attachments
    assert (image.kind, image.data, image.content_type) == (MessageKind.IMAGE, b"PNGDATA", "image/png")
    assert (document.kind, document.filename, document.data) == (
        MessageKind.DOCUMENT,
        "factura.pdf",
        pdf,
    )
    assert document.size == len(pdf)
    assert message.data["attachments"][0] == {
        "filename": None,
        "inline": True,
        "content_id": "logo1",
    }
    assert message.data["attachments"][1]["inline"] is False
    assert message.html is not None and 'src="cid:logo1"' in message.html


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Auto_Submitted": "auto-replied"}, True),
        ({"Auto_Submitted": "no"}, False),
        ({"X_Autoreply": "yes"}, True),
        ({"X_Autorespond": "Out of office"}, True),
        ({"Precedence": "bulk"}, True),
        ({"Precedence": "auto_reply"}, True),
        ({"From": "MAILER-DAEMON@mx.example.com"}, True),
        ({}, False),
    ],
)
def test_auto_generated_mail_is_flagged(headers: dict[str, str], expected: bool) -> None:
    # when
    message = parse_message(simple("Estoy fuera de la oficina.", **headers))

    # then
    assert message.auto_generated is expected


def test_delivery_status_notification_is_a_bounce() -> None:
    # given
    raw = (
        b"From: Mail Delivery Subsystem <mailer-daemon@mx.example.com>\n"
        b"To: support@example.com\nSubject: Undelivered Mail Returned to Sender\n"
        b"Message-ID: <bounce1@mx.example.com>\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="d"\n\n'
        b"--d\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
        b"--d\nContent-Type: message/delivery-status\n\n"
        b"Reporting-MTA: dns; mx.example.com\n\n"
        b"Final-Recipient: rfc822; Nobody@Example.org\nAction: failed\nStatus: 5.1.1\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 User unknown\n\n"
        b"--d\nContent-Type: text/rfc822-headers\n\n"
        b"From: support@example.com\nTo: nobody@example.org\n"
        b"Message-ID: <hilo.42.abcd@example.com>\nSubject: Re: Pedido [#7]\n\n"
        b"--d--\n"
    )

    # when
    result = result_from_mime(raw)

    # then
    [message] = result.messages
    assert message.auto_generated is True
    assert message.data["bounce"] == {
        "recipient": "nobody@example.org",
        "action": "failed",
        "status": "5.1.1",
        "diagnostic": "550 5.1.1 User unknown",
        "permanent": True,
        "original_message_id": "<hilo.42.abcd@example.com>",
    }
    assert message.reply_to_provider_ids == ["<hilo.42.abcd@example.com>"]
    [status] = result.statuses
    assert status.provider_message_id == "<hilo.42.abcd@example.com>"
    assert status.status is DeliveryStatus.FAILED
    assert status.error_code == "5.1.1"


def test_message_without_message_id_gets_a_stable_one() -> None:
    # given
    raw = b"From: ana@example.com\nSubject: hola\n\nsin id"

    # when
    first = parse_message(raw).provider_message_id
    again = parse_message(raw).provider_message_id
    other = parse_message(raw + b"!").provider_message_id

    # then
    assert first == again
    assert first != other
    assert first.startswith("<") and first.endswith("@generated.hilo.invalid>")


def test_truncated_message_is_still_storable() -> None:
    # given: a multipart message cut off in the middle of its base64 attachment
    raw = (
        b"From: ana@example.com\nMessage-ID: <cut@example.com>\nSubject: cortado\n"
        b'Content-Type: multipart/mixed; boundary="c"\n\n'
        b"--c\nContent-Type: text/plain; charset=utf-8\n\nHola, adjunto la foto\n"
        b"--c\nContent-Type: image/jpeg\nContent-Transfer-Encoding: base64\n\n/9j/4AAQSkZJRg"
    )

    # when
    message = parse_message(raw)

    # then
    assert message.text == "Hola, adjunto la foto"
    assert message.attachments[0].content_type == "image/jpeg"


@pytest.mark.parametrize("raw", [b"", b"\x00\xff\xfe\x00garbage\r\n\r\n\x00", b"not an email at all"])
def test_garbage_is_refused_clearly(raw: bytes) -> None:
    # when
    with pytest.raises(WebhookError) as caught:
        parse_message(raw)

    # then
    assert (caught.value.code, caught.value.status) == ("payload_malformed", 400)


def test_nul_bytes_and_undecodable_headers_never_reach_the_result() -> None:
    # given
    raw = b"From: ana@example.com\nSubject: caf\xe9\x00\nMessage-ID: <nul@example.com>\n\nhola\x00 mundo"

    # when
    message = parse_message(raw)

    # then
    assert message.text == "hola mundo"
    assert message.subject is not None and "\x00" not in message.subject
    assert message.subject.encode("utf-8")


# --- outbound and channel rules ----------------------------------------------------------


def test_outbound_mime_trims_long_reference_chains_and_keeps_one_token() -> None:
    # given
    references = [f"<r{n}@example.com>" for n in range(30)]

    # when
    mime = build_outbound_mime(
        message_id=9,
        conversation_id=123,
        from_address="support@example.com",
        to="ana@example.com",
        subject="Re: Pedido [#123]",
        text="Hola",
        html="<p>Hola</p>",
        in_reply_to="r29@example.com",
        references=references,
    )

    # then
    chain = str(mime["References"]).split()
    assert len(chain) == 20
    assert chain[0] == "<r0@example.com>" and chain[-1] == "<r29@example.com>"
    assert mime["In-Reply-To"] == "<r29@example.com>"
    assert mime["Subject"] == "Re: Pedido [#123]"
    assert mime.get_body(("html",)) is not None


def test_check_send_refuses_without_smtp_host() -> None:
    # given
    def context(config: dict[str, str]) -> SendContext:
        return SendContext(
            account=ChannelAccountView(5, "email", "Support", config, {}),
            recipient=IdentityRef(IdentityKind.EMAIL, "ana@example.com"),
            text="hola",
            has_attachments=False,
            template=None,
            last_inbound_at=None,
            now=datetime(2025, 3, 3, tzinfo=UTC),
            recipient_opted_out=False,
        )

    # when
    refused = EmailAdapter().check_send(context({"address": "support@example.com"}))
    allowed = EmailAdapter().check_send(context({"smtp_host": "smtp.example.com"}))

    # then
    assert refused is not None and refused.code == "smtp_not_configured"
    assert allowed is None


def test_every_message_id_is_in_both_catalogs() -> None:
    # given
    channels = Path(__file__).parents[2] / "hilo" / "channels"
    source = "".join((channels / name).read_text() for name in ("email.py", "email_parse.py", "email_imap.py"))
    msgids = set(re.findall(r'N_\(\s*"((?:[^"\\]|\\.)*)"\s*\)', source))

    # then
    assert len(msgids) > 10
    assert msgids <= set(catalog("en"))
    assert msgids <= set(catalog("es"))
