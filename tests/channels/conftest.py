"""Fake providers for the channel end-to-end tests, started once and reset before each test
(the fake Meta Graph API, `fake_graph`, is shared with other packages: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.channels.provider_support import MediaServer, media_server, reset_telegram, reset_twilio
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio


@pytest.fixture(scope="session")
def _twilio_server() -> Iterator[tuple[FakeTwilio, str]]:
    twilio = FakeTwilio()
    with twilio.running() as base_url:
        yield twilio, base_url


@pytest.fixture
def fake_twilio(_twilio_server: tuple[FakeTwilio, str]) -> tuple[FakeTwilio, str]:
    reset_twilio(_twilio_server[0])
    return _twilio_server


@pytest.fixture(scope="session")
def _telegram_server() -> Iterator[tuple[FakeTelegram, str]]:
    telegram = FakeTelegram()
    with telegram.running() as base_url:
        yield telegram, base_url


@pytest.fixture
def fake_telegram(_telegram_server: tuple[FakeTelegram, str]) -> tuple[FakeTelegram, str]:
    reset_telegram(_telegram_server[0])
    return _telegram_server


@pytest.fixture(scope="session")
def _media_server() -> Iterator[MediaServer]:
    with media_server() as server:
        yield server


@pytest.fixture
def media_files(_media_server: MediaServer) -> MediaServer:
    _media_server.reset()
    return _media_server
