"""The workspace's defences as a browser meets them (real Chromium).

An agent may write a contact's attributes and name; an administrator who opens the
conversation must not run anything they hold, nor let htmx act on their behalf. A sign-in
link never sends the agent off the site.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from hilo.agents.actions import create_agent, create_token
from hilo.settings import Settings
from tests.e2e import steps
from tests.e2e.widget_support import LiveHilo, served_hilo
from tests.support import Api, live_client

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveHilo]:
    with served_hilo(settings) as running:
        yield running


def sign_in(browser: Browser, live: LiveHilo, login: str = "/login") -> Page:
    """Ana, an administrator, signed in; every request the page makes is kept in `page.requests`."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(10_000)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
    page.requests = requests  # type: ignore[attr-defined]
    steps.sign_in(page, live.url, "ana@example.com", login=login)
    return page


def agent_client(live: LiveHilo, email: str) -> httpx.Client:
    with live.app.state.runtime.transaction() as tx:
        agent = create_agent(tx, email=email, name="Eve", password=PASSWORD, role="agent")
        _row, token = create_token(tx, agent, "e2e")
    return live_client(live.url, headers={"Authorization": f"Bearer {token}"})


def test_contact_attributes_set_by_an_agent_render_as_text_for_an_admin(browser: Browser, live: LiveHilo) -> None:
    # given: a conversation, an automation rule, and an agent who writes hostile attributes on the contact
    admin = Api(live.api, live.token, 0)  # type: ignore[arg-type]
    channel = admin.api_channel("Shop")
    admin.inbound(channel, "carla-1", "Hello, where is my order?", name="Carla Gil")
    [conversation] = admin.conversations()
    created = live.api.post(
        "/api/v1/automation/rules",
        json={
            "name": "Refunds",
            "event": "message.received",
            "actions": [{"type": "set_priority", "priority": "high"}],
        },
    )
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    attributes: dict[str, Any] = {
        "breakout": {f'" hx-delete=/api/v1/automation/rules/{rule_id} hx-trigger=load x': 1},
        "single": [f"' hx-delete=/api/v1/automation/rules/{rule_id} hx-trigger=load x='"],
        "script": "</script><script>window.pwned = 1</script>",
        "handler": '" onmouseover="window.pwned = 1" autofocus onfocus="window.pwned = 1" x="',
        "image": "<img src=x onerror=window.pwned=1>",
        "template": "{{7*7}}",
    }
    with agent_client(live, "eve@example.com") as eve:
        patched = eve.patch(
            f"/api/v1/contacts/{conversation['contact_id']}",
            json={"name": "<img src=x onerror=window.pwned=1> {{7*7}}", "custom_attributes": attributes},
        )
    assert patched.status_code == 200, patched.text

    # when: the administrator opens the conversation and hovers over the attributes
    page = sign_in(browser, live)
    page.goto(f"{live.url}/inbox?c={conversation['id']}")
    panel = page.locator("#context")
    expect(panel).to_be_visible()
    for field in page.locator("#context form.attrs input").all():
        field.hover()
    page.wait_for_timeout(500)

    # then: nothing the attributes hold became an attribute, an element or a request
    assert page.evaluate("window.pwned") is None
    assert page.locator("[hx-delete], [hx-trigger=load], [onmouseover], [onfocus], img[src=x]").count() == 0
    assert not [r for r in page.requests if r.startswith("DELETE")]  # type: ignore[attr-defined]
    assert live.api.get(f"/api/v1/automation/rules/{rule_id}").status_code == 200
    # and each value is shown as the text it is
    for key, value in attributes.items():
        shown = panel.locator(f"input[name='{key}']").input_value()
        assert (shown if isinstance(value, str) else json.loads(shown)) == value
    expect(panel.locator("input[name=name]")).to_have_value("<img src=x onerror=window.pwned=1> {{7*7}}")
    expect(page.locator("#conv-header")).to_contain_text("{{7*7}}")
    page.context.close()


@pytest.mark.parametrize(
    "next_", ["%2F%09%2Fevil.example%2F", "%2F%0A%2Fevil.example%2F", "%2F%5Cevil.example%2F", "%2F%2Fevil.example%2F"]
)
def test_signing_in_from_a_link_that_leads_off_site_lands_in_the_inbox(
    browser: Browser, live: LiveHilo, next_: str
) -> None:
    # when: the agent signs in from a crafted link
    page = sign_in(browser, live, f"/login?next={next_}")
    # then: the inbox of this site, and no request ever went elsewhere
    page.wait_for_load_state()
    assert page.url.startswith(f"{live.url}/inbox")
    assert [r for r in page.requests if "evil.example" in r.split("?")[0]] == []  # type: ignore[attr-defined]
    page.context.close()


def test_signing_in_from_a_link_to_a_page_of_the_site_goes_there(browser: Browser, live: LiveHilo) -> None:
    # when
    page = sign_in(browser, live, "/login?next=%2Finbox%3Fview%3Dall")
    # then
    assert page.url == f"{live.url}/inbox?view=all"
    page.context.close()


WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__csp.push(event.violatedDirective + " " + (event.blockedURI || "inline") + " " + (event.sample || ""));
});
"""
PAGES = [
    "/admin/channels",
    "/admin/agents",
    "/admin/teams",
    "/admin/roles",
    "/admin/routing",
    "/admin/business-hours",
    "/admin/sla",
    "/admin/rules",
    "/admin/macros",
    "/admin/canned-responses",
    "/account/tokens",
    "/contacts",
    "/contacts/import",
]


def test_the_workspace_runs_under_its_policy_without_a_single_violation(browser: Browser, live: LiveHilo) -> None:
    # given: a conversation to open, and an administrator whose browser reports every policy violation
    admin = Api(live.api, live.token, 0)  # type: ignore[arg-type]
    channel = admin.api_channel("Shop")
    admin.inbound(channel, "carla-1", "Hello, where is my order? https://shop.example/o/41", name="Carla Gil")
    [conversation] = admin.conversations()
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text) if message.type in ("error", "warning") else None)
    seen: list[str] = []
    policies: dict[str, str] = {}
    page.on(
        "response",
        lambda response: policies.update({response.url: response.headers.get("content-security-policy", "")})
        if response.request.resource_type == "document"
        else None,
    )

    def collect(path: str) -> None:
        seen.extend(f"{path}: {v}" for v in page.evaluate("window.__csp"))

    # when: signing in, using the inbox (filters, a conversation, its contact panel) and every admin page
    page.goto(f"{live.url}/login")
    collect("/login")
    page.fill("input[name=email]", "ana@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/inbox.*"))
    page.goto(f"{live.url}/inbox?view=all")
    expect(page.locator("#list .row")).to_have_count(1)
    page.select_option("#list-form select[name=status]", "all")
    page.wait_for_load_state("networkidle")
    page.select_option("#list-form select[name=sort]", "created")
    page.wait_for_load_state("networkidle")
    page.fill("#q", "order")
    page.wait_for_load_state("networkidle")
    page.click(f"#row-{conversation['id']} .row-link")
    expect(page.locator("#context")).to_be_visible()
    page.wait_for_load_state("networkidle")
    collect("/inbox")
    for path in PAGES:
        page.goto(f"{live.url}{path}")
        page.wait_for_load_state("networkidle")
        collect(path)

    # then: no violation, and every page had the strict policy
    assert seen == []
    assert [text for text in console if "Content Security Policy" in text or "Content-Security-Policy" in text] == []
    assert len(policies) >= len(PAGES) + 2
    for url, header in policies.items():
        policy = {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}
        assert policy.get("script-src") == "'self'", url
        assert "unsafe-inline" not in header, url
        assert (policy.get("base-uri"), policy.get("object-src"), policy.get("frame-ancestors")) == (
            "'none'",
            "'none'",
            "'none'",
        ), url
        assert policy.get("form-action") == "'self'", url
    context.close()
