"""The API documentation page in a real browser: Swagger UI draws the API with no other origin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from hilo.settings import Settings
from tests.e2e.widget_support import LiveHilo, served_hilo

pytestmark = pytest.mark.e2e


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveHilo]:
    with served_hilo(settings) as running:
        yield running


def test_api_docs_draw_the_operations_from_this_server_only(browser: Browser, live: LiveHilo) -> None:
    # given: a browser that notes every request and every console complaint (CSP violations among them)
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    requests: list[str] = []
    complaints: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: complaints.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: complaints.append(str(error)))
    try:
        # when
        page.goto(f"{live.url}/api/docs")
        # then: the operations are drawn, everything came from Hilo, and nothing was refused
        expect(page.locator(".opblock-summary-path", has_text="/api/v1/conversations").first).to_be_visible(
            timeout=15_000
        )
        expect(page.locator(".info .title")).to_contain_text("Hilo")
        assert requests and all(url.startswith(live.url) for url in requests), requests
        assert complaints == []
    finally:
        context.close()
