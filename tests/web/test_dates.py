"""One form of date and time on every page, in the agent's language (CLDR's medium date, short time)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from hilo.clock import FrozenClock
from hilo.web.rendering import datetime_text
from tests.support import Api

# Babel's "short" date-time form, which pages used to show beside the browser's.
SHORT_FORM = re.compile(r"\b\d{1,2}/\d{1,2}/\d{2}\b")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "28 Nov 2026, 02:45"), ("es", "28 nov 2026, 2:45"), ("fr", "28 Nov 2026, 02:45")],
)
def test_a_date_and_time_is_written_in_the_language_of_the_page(locale: str, expected: str) -> None:
    # when
    text = datetime_text(datetime(2026, 11, 28, 2, 45, tzinfo=UTC), locale)
    # then
    assert text == expected


def test_a_naive_or_iso_value_is_read_as_utc_and_none_is_empty() -> None:
    assert datetime_text("2026-11-28T03:45:00+01:00", "en") == "28 Nov 2026, 02:45"
    assert datetime_text(None, "es") == ""


def sign_in(client: TestClient) -> None:
    credentials = {"email": "admin@example.com", "password": "correct horse battery"}
    response = client.post("/api/v1/auth/login", json=credentials)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("locale", "expected"), [("en", "2 Mar 2026, 09:00"), ("es", "2 mar 2026, 9:00")])
def test_account_pages_write_times_in_the_one_form_the_browser_keeps(
    app_client: TestClient, api: Api, clock: FrozenClock, locale: str, expected: str
) -> None:
    # given: an agent in `locale` with a token, signed in in a browser
    api.ok(api.patch("/api/v1/auth/me", {"locale": locale}))
    sign_in(app_client)
    # when
    tokens = app_client.get("/account/tokens").text
    sessions = app_client.get("/account/sessions").text
    # then: every time is a <time> that app.js rewrites with the same form in the agent's zone
    for page in (tokens, sessions):
        assert f'data-fmt="datetime">{expected}</time>' in page
        assert not SHORT_FORM.search(page)


@pytest.mark.parametrize(("locale", "expected"), [("en", "until 3 Mar 2026, 09:00"), ("es", "hasta 3 mar 2026, 9:00")])
def test_a_snoozed_conversation_header_shows_the_time_in_the_same_form(
    app_client: TestClient, api: Api, clock: FrozenClock, locale: str, expected: str
) -> None:
    # given: a conversation snoozed until tomorrow at nine
    api.ok(api.patch("/api/v1/auth/me", {"locale": locale}))
    channel = api.api_channel()
    api.inbound(channel, "c1", "Hello")
    [conversation] = api.conversations()
    api.ok(
        api.patch(
            f"/api/v1/conversations/{conversation['id']}",
            {"status": "snoozed", "snoozed_until": "2026-03-03T09:00:00+00:00"},
        )
    )
    sign_in(app_client)
    # when
    header = app_client.get(f"/ui/conversations/{conversation['id']}/header").text
    timeline = app_client.get(f"/ui/conversations/{conversation['id']}").text
    # then: the header and the timeline's event line both hold a <time> the browser rewrites
    plain = re.sub(r"<[^>]+>", "", header)
    assert expected in " ".join(plain.split())
    assert 'datetime="2026-03-03T09:00:00+00:00" data-fmt="datetime"' in header
    until = '<time datetime="2026-03-03T09:00:00+00:00" data-fmt="datetime">' + expected.split(" ", 1)[1] + "</time>"
    assert until in timeline
    assert "&lt;time" not in timeline
