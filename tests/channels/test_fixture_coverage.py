"""Every captured provider payload in ../shared/fixtures is exercised by a test.

`COVERAGE` names, per test module, the fixture files it runs through Hilo; a fixture added
to the folder without an entry here fails `test_every_fixture_is_covered`, and an entry
whose module does not use the file fails `test_registry_names_real_uses`."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from hilo.channels.twilio_common import is_valid_signature
from tests.channels.provider_support import skip_module_without_fixtures
from tests.fakes.twilio import twilio_signature

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures"
TESTS = Path(__file__).parents[1]
skip_module_without_fixtures()

VOICE_FORMS = (
    "twilio_voice_gather_action_dtmf_twilio-python.form",
    "twilio_voice_gather_action_speech_constructed.form",
    "twilio_voice_incoming_call_constructed.form",
    "twilio_voice_recording_status_callback_constructed.form",
    "twilio_voice_status_callback_completed_constructed.form",
)

COVERAGE: dict[str, tuple[str, ...]] = {
    "channels/test_meta_conformance.py": (
        "signature_vectors.json",
        "whatsapp_text.json",
        "whatsapp_text_pywa.json",
        "whatsapp_image.json",
        "whatsapp_image_with_caption_courier.json",
        "whatsapp_document.json",
        "whatsapp_voice.json",
        "whatsapp_reply_context.json",
        "whatsapp_status_sent.json",
        "whatsapp_status_delivered.json",
        "whatsapp_status_read.json",
        "whatsapp_status_failed.json",
        "whatsapp_status_failed_131014_courier.json",
        "whatsapp_errors_webhook_130429.json",
        "whatsapp_send_response.json",
        "whatsapp_send_error_response_130429.json",
        "whatsapp_send_text_request.json",
        "whatsapp_send_template_request.json",
        "messenger_text_courier.json",
        "messenger_text_event_metadocs.json",
        "messenger_text_hackage_fbmessenger-api.json",
        "messenger_attachment_courier.json",
        "messenger_attachment_entry_metadocs.json",
        "messenger_delivery_courier.json",
        "messenger_delivery_event_metadocs.json",
        "messenger_read_event_metadocs.json",
        "messenger_echo_courier.json",
        "messenger_reply_event_metadocs.json",
        "messenger_send_response_metadocs.json",
        "messenger_send_error_response_metadocs.json",
        "messenger_send_text_request.json",
        "instagram_text_courier.json",
        "instagram_attachment_courier.json",
        "instagram_story_mention_courier.json",
        "instagram_share_attachment_metadocs.json",
        "instagram_unsent_courier.json",
        "instagram_send_text_request.json",
    ),
    "channels/test_twilio_conformance.py": (
        "twilio_signature_test_vector.json",
        "twilio_sms_inbound_text_courier.form",
        "twilio_sms_inbound_media_courier.form",
        "twilio_whatsapp_inbound_courier.form",
        "twilio_sms_status_sent_courier.form",
        "twilio_sms_status_delivered_courier.form",
        "twilio_sms_status_failed_21610_courier.form",
        "twilio_sms_send_request_constructed.form",
    ),
    # The fake Twilio answers with these bodies; test_e2e_providers and
    # test_provider_errors (21610) run Hilo's sends against them.
    "fakes/twilio.py": (
        "twilio_sms_send_response_201.json",
        "twilio_sms_send_error_21610_constructed.json",
    ),
    "channels/test_telegram_conformance.py": (
        "telegram_text.json",
        "telegram_text_courier.json",
        "telegram_photo_courier.json",
        "telegram_reply.json",
        "telegram_edited_message.json",
        "telegram_voice.json",
        "telegram_document.json",
        "telegram_callback_query.json",
        "telegram_send_message_request.json",
        "telegram_error_429_courier.json",
        "telegram_error_403_blocked_courier.json",
    ),
    "channels/test_email_parse.py": (
        "email_reply_with_quote_chatwoot.eml",
        "email_reply_references_chatwoot.eml",
        "email_mailgun_route_forward_anymail.json",
        "email_mailgun_route_forward_anymail.form",
        "email_mailgun_route_forward_reply_constructed.json",
    ),
    # Voice webhooks use Twilio's signature scheme: checked below against Hilo's validator.
    "channels/test_fixture_coverage.py": VOICE_FORMS,
}
# The providers' notes: read by people writing adapters, not payloads to run.
DOCUMENTATION = frozenset(
    {
        "README.md",
        "commerce.md",
        "email.md",
        "instagram.md",
        "messenger.md",
        "migration.md",
        "telegram.md",
        "twilio_sms.md",
        "twilio_voice.md",
        "whatsapp.md",
    }
)
# TwiML that a voice channel would answer with; Hilo has no voice channel yet, and the
# entry here keeps that gap visible instead of silently uncovered.
AWAITING_VOICE_CHANNEL = frozenset(
    {
        "twilio_voice_gather_speech_rasa.xml",
        "twilio_voice_ivr_menu_gather_dtmf_speech.xml",
        "twilio_voice_ivr_welcome_gather.xml",
    }
)

# Help-desk exports (Zendesk, Freshdesk) that an importer would read; Hilo has no import yet,
# and the entry here keeps that gap visible instead of silently uncovered.
AWAITING_IMPORT = frozenset(
    {
        "freshdesk_all_tickets_python-freshdesk.json",
        "freshdesk_companies_python-freshdesk.json",
        "freshdesk_contact_python-freshdesk.json",
        "freshdesk_contacts_python-freshdesk.json",
        "freshdesk_conversations_python-freshdesk.json",
        "freshdesk_note_1_python-freshdesk.json",
        "freshdesk_reply_1_python-freshdesk.json",
        "freshdesk_search_tickets_python-freshdesk.json",
        "freshdesk_solution_articles_python-freshdesk.json",
        "freshdesk_solution_categories_python-freshdesk.json",
        "freshdesk_solution_folders_python-freshdesk.json",
        "freshdesk_ticket_1_python-freshdesk.json",
        "zendesk_audit_zenpy-specification.json",
        "zendesk_comment_zenpy-specification.json",
        "zendesk_guide_article_zenpy-specification.json",
        "zendesk_guide_category_zenpy-specification.json",
        "zendesk_guide_section_zenpy-specification.json",
        "zendesk_guide_translation_zenpy-specification.json",
        "zendesk_guide_vote_zenpy-specification.json",
        "zendesk_incremental_tickets_cursor_zenpy-betamax.json",
        "zendesk_incremental_tickets_time_zenpy-betamax.json",
        "zendesk_incremental_users_cursor_zenpy-betamax_trimmed.json",
        "zendesk_organization_zenpy-specification.json",
        "zendesk_organizations_list_zenpy-betamax.json",
        "zendesk_response_headers_zenpy-betamax.json",
        "zendesk_satisfaction_rating_zenpy-specification.json",
        "zendesk_talk_call_pe_zenpy-specification.json",
        "zendesk_talk_call_zenpy-specification.json",
        "zendesk_talk_leg_zenpy-specification.json",
        "zendesk_talk_voice_comment_zenpy-specification.json",
        "zendesk_ticket_audit_zenpy-specification.json",
        "zendesk_ticket_comments_zenpy-betamax.json",
        "zendesk_ticket_metric_zenpy-specification.json",
        "zendesk_ticket_zenpy-specification.json",
        "zendesk_user_zenpy-specification.json",
        "zendesk_users_list_zenpy-betamax.json",
        "zendesk_voice_comment_event_zenpy-specification.json",
    }
)
# Shopify Admin API answers that the contact panel's order context would read; waiting for
# the commerce integration the same way.
AWAITING_COMMERCE = frozenset(
    {
        "shopify_customer_shopify_python_api.json",
        "shopify_customers_search_shopify_python_api.json",
        "shopify_order_shopify_python_api.json",
        "shopify_orders_shopify_python_api.json",
    }
)


def covered() -> dict[str, list[str]]:
    by_fixture: dict[str, list[str]] = {}
    for module, names in COVERAGE.items():
        for name in names:
            by_fixture.setdefault(name, []).append(module)
    return by_fixture


def test_every_fixture_is_covered() -> None:
    # given
    present = {path.name for path in FIXTURES.iterdir() if path.is_file()}
    # when
    accounted = set(covered()) | DOCUMENTATION | AWAITING_VOICE_CHANNEL | AWAITING_IMPORT | AWAITING_COMMERCE
    # then: nothing new without a test, nothing listed that is gone
    assert sorted(present - accounted) == [], "fixtures no test exercises: add them to COVERAGE"
    assert sorted(accounted - present) == [], "COVERAGE names fixtures that are not in the folder"


@pytest.mark.parametrize("module", sorted(COVERAGE))
def test_registry_names_real_uses(module: str) -> None:
    # given
    source = (TESTS / module).read_text()
    # when
    unused = [name for name in COVERAGE[module] if f'"{name}"' not in source]
    # then
    assert unused == [], f"{module} does not use {unused}"


@pytest.mark.parametrize("name", VOICE_FORMS)
def test_voice_webhooks_verify_with_twilio_signatures(name: str) -> None:
    # given: the captured body, signed as Twilio signs it (an implementation apart from Hilo's)
    body = (FIXTURES / name).read_bytes()
    params = parse_qsl(body.decode(), keep_blank_values=True)
    url = "https://hilo.example/webhooks/voice/4"
    signature = twilio_signature("voice-auth-token", url, params)
    tampered = [(key, value + "1") for key, value in params[:1]] + params[1:]
    # when / then
    assert params, f"{name} has no parameters"
    assert is_valid_signature("voice-auth-token", url, params, signature)
    assert not is_valid_signature("voice-auth-token", url, tampered, signature)
    assert not is_valid_signature("other-token", url, params, signature)


def test_twilio_python_voice_vector() -> None:
    # given: twilio-python's own request-validator vector
    vector = json.loads((FIXTURES / "signature_vectors.json").read_text())[VOICE_FORMS[0]]
    params = parse_qsl((FIXTURES / VOICE_FORMS[0]).read_bytes().decode(), keep_blank_values=True)
    # when / then
    assert is_valid_signature(vector["auth_token"], vector["url"], params, vector["value"])


@pytest.mark.parametrize("name", sorted(AWAITING_IMPORT | AWAITING_COMMERCE))
def test_awaiting_captures_are_well_formed_json(name: str) -> None:
    # given: a capture a later importer or integration will read
    raw = (FIXTURES / name).read_bytes()
    # when
    document = json.loads(raw)
    # then: an object or a list of them, as the providers' REST APIs answer
    assert isinstance(document, dict | list), f"{name} is not a JSON document"
    assert document, f"{name} is empty"
