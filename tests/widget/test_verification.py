"""Pure logic of the widget and web forms: identity HMAC, visitor tokens, form validation, file checks."""

from __future__ import annotations

from datetime import date

import pytest

from hilo.channels.base import ChannelAccountView, IdentityKind
from hilo.channels.webform import FormInvalid, parse_submission, redirect_allowed
from hilo.channels.widget import (
    FieldRule,
    PrechatInvalid,
    WidgetSettings,
    origin_allowed,
    parse_origins,
    user_hash,
    validate_prechat,
    verify_user,
)
from hilo.errors import ActionError
from hilo.widget.uploads import check_file
from hilo.widget.visitors import Credentials, authenticate, issue_token, read_token

# HMAC-SHA256("site-secret", "42"), as `openssl dgst -sha256 -hmac site-secret` prints it.
KNOWN_HASH = "b1ebef87a7a02c74616f19c84015d0f3895699d01c6629b27ce1ba9a24aab44b"


def _account(kind: str = "widget", **config: object) -> ChannelAccountView:
    return ChannelAccountView(
        id=7, kind=kind, name="Tienda", config={"public_token": "tok", **config}, secrets={"identity_secret": "s3"}
    )


def test_user_hash_is_the_documented_hmac_sha256() -> None:
    assert user_hash("site-secret", "42") == KNOWN_HASH


@pytest.mark.parametrize(
    ("user_id", "given", "expected"),
    [
        ("42", KNOWN_HASH, True),
        ("42", KNOWN_HASH.upper(), True),
        ("42", f" {KNOWN_HASH}\n", True),
        ("43", KNOWN_HASH, False),
        ("42", KNOWN_HASH[:-1] + "0", False),
        ("42", "", False),
        ("", KNOWN_HASH, False),
        ("4\n2", user_hash("site-secret", "4\n2"), False),
        ("x" * 201, user_hash("site-secret", "x" * 201), False),
    ],
)
def test_verify_user(user_id: str, given: str, expected: bool) -> None:
    assert verify_user("site-secret", user_id, given) is expected


def test_verification_without_a_secret_never_passes() -> None:
    assert verify_user("", "42", user_hash("", "42")) is False


def test_visitor_tokens_are_signed_per_channel() -> None:
    # given
    token = issue_token("server-key", 7)
    # when / then
    visitor_id = read_token("server-key", 7, token)
    assert visitor_id is not None and token.startswith(visitor_id + ".")
    assert read_token("server-key", 8, token) is None
    assert read_token("other-key", 7, token) is None
    assert read_token("server-key", 7, visitor_id + "." + "A" * 22) is None
    assert read_token("server-key", 7, None) is None
    assert issue_token("server-key", 7) != token


def test_authenticate_a_verified_user_and_refuse_a_forged_one() -> None:
    # given
    account = _account()
    good = Credentials(user_id="u-1", user_hash=user_hash("s3", "u-1"), user_name="Ana")
    forged = Credentials(user_id="u-1", user_hash=user_hash("guess", "u-1"))
    # when
    visitor = authenticate(account, "server-key", good, allow_new=False)
    with pytest.raises(ActionError) as refused:
        authenticate(account, "server-key", forged, allow_new=True)
    # then
    assert (visitor.identity, visitor.verified, visitor.name) == ("7:user:u-1", True, "Ana")
    assert (refused.value.code, refused.value.status) == ("identity_invalid", 403)


def test_authenticate_an_anonymous_visitor() -> None:
    # given
    account = _account()
    # when
    fresh = authenticate(account, "server-key", Credentials(), allow_new=True)
    back = authenticate(account, "server-key", Credentials(visitor=fresh.token), allow_new=False)
    with pytest.raises(ActionError) as stale:
        authenticate(account, "server-key", Credentials(visitor="made.up"), allow_new=False)
    # then
    assert fresh.new and not fresh.verified and fresh.identity.startswith("7:")
    assert back.identity == fresh.identity and not back.new
    assert stale.value.code == "visitor_invalid"


def test_prechat_validation() -> None:
    rules = {"name": FieldRule.OPTIONAL, "email": FieldRule.REQUIRED, "phone": FieldRule.OPTIONAL}
    assert validate_prechat(rules, {"email": " Ana@Example.COM ", "phone": "", "name": "Ana"}, "ES") == {
        "email": "ana@example.com",
        "name": "Ana",
    }
    assert validate_prechat(rules, {"email": "a@b.es", "phone": "600 111 222"}, "ES")["phone"] == "+34600111222"
    with pytest.raises(PrechatInvalid) as missing:
        validate_prechat(rules, {"name": "Ana"}, "ES")
    assert missing.value.errors == {"email": "This field is required."}
    with pytest.raises(PrechatInvalid) as invalid:
        validate_prechat(rules, {"email": "ana@", "phone": "12", "name": "x" * 300}, "ES")
    assert set(invalid.value.errors) == {"email", "phone", "name"}
    assert validate_prechat({"email": FieldRule.OFF}, {"email": "not checked"}, "ES") == {}


def test_settings_tolerate_text_from_the_command_line() -> None:
    # given: settings as `hilo channels add widget --set key=value` stores them
    account = _account(
        prechat_fields='{"email": "required", "phone": "bogus"}',
        proactive='[{"message": {"es": "¿Ayuda?"}, "after_seconds": "30", "url": "*/cart*"}, {"url": "x"}]',
        allowed_origins="https://a.example, https://*.b.example/",
        color="red; background: url(x)",
        max_upload_mb="2",
        email_fallback_minutes="0",
    )
    # when
    settings = WidgetSettings.from_account(account)
    # then
    assert settings.prechat == {"name": FieldRule.OFF, "email": FieldRule.REQUIRED}
    assert [(r.after_seconds, r.url) for r in settings.proactive] == [(30, "*/cart*")]
    assert settings.allowed_origins == ("https://a.example", "https://*.b.example")
    assert settings.color == "#2563eb"
    assert settings.max_upload_bytes == 2 * 1024 * 1024
    assert settings.email_fallback_minutes == 0


def test_origins() -> None:
    allowed = parse_origins(["https://shop.example", "https://*.shop.example"])
    assert origin_allowed("https://shop.example", allowed)
    assert origin_allowed("https://www.shop.example/", allowed)
    assert not origin_allowed("http://www.shop.example", allowed)
    assert not origin_allowed("https://evilshop.example", allowed)
    assert not origin_allowed(None, allowed)
    assert origin_allowed("https://anything.example", ())
    assert redirect_allowed("https://shop.example/thanks?x=1", allowed)
    assert not redirect_allowed("https://shop.example.evil.example/", allowed)
    assert not redirect_allowed("javascript:alert(1)", allowed)
    assert not redirect_allowed("https://shop.example\\@evil.example/", allowed)
    assert not redirect_allowed("https://shop.example/", ())


def test_a_submission_becomes_an_inbound_email_message() -> None:
    # given
    account = _account("webform", phone="optional")
    fields = {"name": "Eva", "email": "Eva@Example.com", "phone": "600111222", "message": "Hola", "color": "azul"}
    # when
    submission = parse_submission(account, fields, region="ES", day=date(2026, 3, 2))
    # then
    message = submission.message
    assert message is not None
    assert (message.sender.kind, message.sender.value) == (IdentityKind.EMAIL, "eva@example.com")
    assert [(r.kind, r.value) for r in message.other_identities] == [(IdentityKind.PHONE, "+34600111222")]
    assert message.text == "Hola\n\ncolor: azul"
    assert message.sender_name == "Eva"


def test_a_resubmission_the_same_day_keeps_its_id_and_another_day_does_not() -> None:
    account = _account("webform")
    fields = {"email": "a@b.es", "message": "Hola"}
    first = parse_submission(account, fields, region="ES", day=date(2026, 3, 2)).message
    again = parse_submission(account, fields, region="ES", day=date(2026, 3, 2)).message
    later = parse_submission(account, fields, region="ES", day=date(2026, 3, 3)).message
    assert first and again and later
    assert first.provider_message_id == again.provider_message_id != later.provider_message_id


def test_form_errors_and_honeypot() -> None:
    account = _account("webform", phone="required", allowed_origins="https://shop.example")
    with pytest.raises(FormInvalid) as invalid:
        parse_submission(
            account, {"email": "nope", "redirect": "https://evil.example/"}, region="ES", day=date(2026, 3, 2)
        )
    assert set(invalid.value.errors) == {"email", "phone", "message", "redirect"}
    caught = parse_submission(
        account, {"website": "http://spam", "redirect": "https://shop.example/ok"}, region="ES", day=date(2026, 3, 2)
    )
    assert caught.message is None and caught.redirect == "https://shop.example/ok"


@pytest.mark.parametrize(
    ("name", "declared", "data", "outcome"),
    [
        ("a.png", "image/png", b"\x89PNG\r\n\x1a\n....", "image/png"),
        ("a.jpg", "", b"\xff\xd8\xff\xe0....", "image/jpeg"),
        ("a.pdf", "application/pdf", b"%PDF-1.7", "application/pdf"),
        ("notes.txt", "text/plain", b"hola", "text/plain"),
        ("a.png", "image/png", b"<svg onload=alert(1)>", "upload_type_not_allowed"),
        ("a.svg", "image/svg+xml", b"<svg/>", "upload_type_not_allowed"),
        ("a.html", "text/html", b"<p>", "upload_type_not_allowed"),
        ("a.txt", "text/plain", b"MZ\x00\x00", "upload_type_not_allowed"),
        ("a.png", "image/png", b"", "upload_empty"),
        ("a.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "upload_too_large"),
    ],
)
def test_check_file(name: str, declared: str, data: bytes, outcome: str) -> None:
    try:
        _kind, content_type = check_file(name, declared, data, limit=64)
    except ActionError as exc:
        content_type = exc.code
    assert content_type == outcome
