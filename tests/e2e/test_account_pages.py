"""Browser: an agent's own account page (password and language) and password reset by e-mail."""

from __future__ import annotations

import email
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.policy import default
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from hilo.agents.actions import create_agent
from hilo.app import create_app
from hilo.clock import FrozenClock
from tests.channels.email_servers import RecordingHandler, run_smtp
from tests.e2e.steps import sign_in, watch_errors
from tests.e2e.test_agent_ui import (  # noqa: F401 - `live` is a fixture
    PASSWORD,
    Live,
    _serve_app,
    live,
    served_settings,
)

__all__ = ["live"]

DORA_PASSWORD = "dora's new password"


@dataclass
class MailDesk:
    """A served Hilo that sends its own e-mails to a recording SMTP server."""

    url: str
    mail: RecordingHandler
    clock: FrozenClock


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[MailDesk]:
    with run_smtp() as (smtp_port, handler):
        settings, port = served_settings(
            request, tmp_path_factory, sqlite_template, "accounts", smtp_url=f"smtp://127.0.0.1:{smtp_port}"
        )
        clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        app = create_app(settings, clock=clock)
        with app.state.runtime.transaction() as tx:
            create_agent(tx, email="dora@example.com", name="Dora Olvido", password=PASSWORD)
            create_agent(tx, email="ines@example.com", name="Inés Admin", password=PASSWORD, role="admin")
            create_agent(tx, email="eva@example.com", name="Eva Segura", password=PASSWORD)
        server, thread = _serve_app(app, port)
        try:
            yield MailDesk(settings.base_url, handler, clock)
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def link_in_mail(handler: RecordingHandler, to: str) -> str:
    """The link in the latest mail to `to`, once the server's job runner has sent it."""
    deadline = time.monotonic() + 20
    while not any(to in m.rcpt_tos for m in handler.messages):
        assert time.monotonic() < deadline, "no mail arrived"
        time.sleep(0.05)
    latest = [m for m in handler.messages if to in m.rcpt_tos][-1]
    message = email.message_from_bytes(latest.data, policy=default)
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(r"http://\S+", body.get_content())
    assert found
    return found.group(0)


def signed_in(browser: Browser, contexts: list[BrowserContext], url: str, email: str, password: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(10_000)
    watch_errors(page)
    sign_in(page, url, email, password)
    return page


def test_change_password_and_language_from_the_account_page(
    browser: Browser, contexts: list[BrowserContext], live: Live
) -> None:
    # given: Carla is signed in on two browsers
    live.api.ok(
        live.api.post(
            "/api/v1/agents", {"email": "carla@example.com", "name": "Carla Cuenta", "password": "first password 1"}
        ),
        201,
    )
    elsewhere = signed_in(browser, contexts, live.url, "carla@example.com", "first password 1")
    page = signed_in(browser, contexts, live.url, "carla@example.com", "first password 1")
    # when: she opens her account from the user menu and types a wrong current password
    page.click("[data-menu=user-menu]")
    page.get_by_role("link", name="Password and language").click()
    page.wait_for_url(f"{live.url}/account")
    form = page.locator("#account-password")
    form.get_by_label("Current password").fill("not my password")
    form.get_by_label("New password").fill("second password 2")
    form.locator("button[type=submit]").click()
    # then
    expect(form.locator(".form-error")).to_have_text("Your current password is not right.")
    # when: the right one
    form.get_by_label("Current password").fill("first password 1")
    form.locator("button[type=submit]").click()
    # then: the other browser is signed out, this one stays
    expect(page.locator(".toast")).to_contain_text("Password changed.")
    # (in a new tab of that browser: the open one may already be on its way to sign-in by itself)
    again = elsewhere.context.new_page()
    again.goto(f"{live.url}/inbox")
    again.wait_for_url(re.compile(r".*/login.*"))
    # when: she switches to Spanish
    page.select_option("#account-language select[name=locale]", "es")
    page.locator("#account-language button[type=submit]").click()
    # then
    expect(page.locator("h1")).to_have_text("Contraseña e idioma")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    # The refused wrong password is the one failed request.
    assert [e for e in page.errors if "status of 403" not in e] == []  # type: ignore[attr-defined]


def test_forgotten_password_reset_by_an_e_mailed_link(
    browser: Browser, contexts: list[BrowserContext], desk: MailDesk
) -> None:
    # given
    context = browser.new_context(locale="en-GB")
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # when: Dora asks for a link from the sign-in page
    page.goto(f"{desk.url}/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.fill("#forgot-form input[name=email]", "dora@example.com")
    page.click("#forgot-form button[type=submit]")
    # then
    expect(page.locator("#forgot-sent")).to_be_visible()
    link = link_in_mail(desk.mail, "dora@example.com")
    # when: she opens it and chooses a new password
    page.goto(link)
    expect(page).to_have_url(f"{desk.url}/reset-password")
    page.fill("#reset-form input[name=password]", DORA_PASSWORD)
    page.click("#reset-form button[type=submit]")
    expect(page.locator("#reset-done")).to_be_visible()
    # then: she signs in with it, and the link does not work twice
    page.locator("#reset-done a").click()
    page.fill("input[name=email]", "dora@example.com")
    page.fill("input[name=password]", DORA_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/inbox.*"))
    other = context.browser.new_context(locale="en-GB") if context.browser else None
    assert other is not None
    contexts.append(other)
    again = other.new_page()
    again.goto(link)
    again.fill("#reset-form input[name=password]", "another new password")
    again.click("#reset-form button[type=submit]")
    expect(again.locator("#reset-form .form-error")).to_contain_text("already used")
    expect(again.get_by_role("link", name="Ask for a new link")).to_be_visible()
    assert errors == []


def test_an_admin_invites_an_agent_who_joins_from_the_e_mailed_link(
    browser: Browser, contexts: list[BrowserContext], desk: MailDesk
) -> None:
    # given
    admin = signed_in(browser, contexts, desk.url, "ines@example.com", PASSWORD)
    # when: she invites two people and withdraws one invitation
    admin.goto(f"{desk.url}/admin/agents")
    for name, address in (("Olga Oops", "olga@example.com"), ("Pablo Nuevo", "pablo@example.com")):
        admin.get_by_role("button", name="Invite", exact=True).click()
        dialog = admin.locator("#agent-invite")
        dialog.get_by_label("Name").fill(name)
        dialog.get_by_label("E-mail address").fill(address)
        dialog.get_by_label("Language").select_option("en")
        dialog.locator("button[type=submit]").click()
        expect(admin.locator("#invitations")).to_contain_text(address)
    admin.locator("#invitations tr", has_text="olga@example.com").get_by_role("button", name="Withdraw").click()
    # then
    expect(admin.locator("#invitations tbody tr")).to_have_count(1)
    expect(admin.locator("#invitations")).to_contain_text("pablo@example.com")
    # when: Pablo opens his e-mail's link and chooses a password
    link = link_in_mail(desk.mail, "pablo@example.com")
    context = browser.new_context(locale="en-GB")
    contexts.append(context)
    newcomer = context.new_page()
    newcomer.set_default_timeout(10_000)
    newcomer.goto(link)
    expect(newcomer).to_have_url(f"{desk.url}/accept-invitation")
    expect(newcomer.locator(".login-card")).to_contain_text("pablo@example.com")
    newcomer.get_by_label("Choose a password").fill("pablo's own password")
    newcomer.locator("#accept-form button[type=submit]").click()
    # then: he is in, and is an agent on the admin's page
    newcomer.wait_for_url(re.compile(r".*/inbox.*"))
    admin.reload()
    expect(admin.locator("table").first).to_contain_text("Pablo Nuevo")
    expect(admin.locator("#invitations")).to_have_count(0)
    assert admin.errors == []  # type: ignore[attr-defined]


def test_two_factor_sign_in_set_up_used_and_required(
    browser: Browser, contexts: list[BrowserContext], desk: MailDesk
) -> None:
    # given: the admin opens two-factor sign-in from her account
    admin = signed_in(browser, contexts, desk.url, "ines@example.com", PASSWORD)
    admin.goto(f"{desk.url}/account")
    admin.get_by_role("link", name="Two-factor sign-in").click()
    # when: she sets it up with her app
    admin.get_by_role("button", name="Set up two-factor sign-in").click()
    expect(admin.locator(".qr-box svg")).to_be_visible()
    secret = admin.locator("#two-factor-secret").inner_text()
    admin.get_by_label("Code from the app").fill(pyotp.TOTP(secret).at(desk.clock.now()))
    admin.get_by_role("button", name="Turn it on").click()
    # then: ten recovery codes, shown once
    codes = admin.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    recovery = codes.nth(0).inner_text()
    admin.get_by_role("link", name="I have kept them").click()
    admin.wait_for_url(re.compile(r".*/inbox.*"))
    # when: she signs in on another browser, with a recovery code
    context = browser.new_context(locale="en-GB")
    contexts.append(context)
    other = context.new_page()
    other.set_default_timeout(10_000)
    other.goto(f"{desk.url}/login")
    other.fill("input[name=email]", "ines@example.com")
    other.fill("input[name=password]", PASSWORD)
    other.click("#login-form button[type=submit]")
    other.get_by_label("Code").fill("123456")
    other.click("#code-form button[type=submit]")
    expect(other.locator("#code-error")).to_have_text("That code is not right; type the one your app shows now.")
    other.get_by_label("Code").fill(recovery)
    other.click("#code-form button[type=submit]")
    # then
    other.wait_for_url(re.compile(r".*/inbox.*"))
    # when: she requires two-factor sign-in of every agent
    admin.goto(f"{desk.url}/admin/agents")
    admin.get_by_label("Require two-factor sign-in for every agent").check()
    admin.locator("form[data-form=account-settings] button[type=submit]").click()
    expect(admin.locator(".toast")).to_contain_text("Saved.")
    # then: an agent without it is sent to set it up after signing in
    context = browser.new_context(locale="en-GB")
    contexts.append(context)
    agent = context.new_page()
    agent.set_default_timeout(10_000)
    agent.goto(f"{desk.url}/login")
    agent.fill("input[name=email]", "eva@example.com")
    agent.fill("input[name=password]", PASSWORD)
    agent.click("#login-form button[type=submit]")
    agent.wait_for_url(f"{desk.url}/account/two-factor")
    expect(agent.locator("#two-factor-required")).to_be_visible()
    agent.goto(f"{desk.url}/inbox")
    expect(agent).to_have_url(f"{desk.url}/account/two-factor")
    # The requirement goes away again for the next scenarios on this server.
    admin.get_by_label("Require two-factor sign-in for every agent").uncheck()
    admin.locator("form[data-form=account-settings] button[type=submit]").click()
    expect(admin.locator(".toast").last).to_contain_text("Saved.")
    assert admin.errors == []  # type: ignore[attr-defined]
