"""Browser: an agent's own account page (password and language)."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.test_agent_ui import Live, live  # noqa: F401 - `live` is a fixture

__all__ = ["live"]


def signed_in(browser: Browser, contexts: list[BrowserContext], url: str, email: str, password: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(f"{url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/inbox.*"))
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
    elsewhere.goto(f"{live.url}/inbox")
    elsewhere.wait_for_url(re.compile(r".*/login.*"))
    # when: she switches to Spanish
    page.select_option("#account-language select[name=locale]", "es")
    page.locator("#account-language button[type=submit]").click()
    # then
    expect(page.locator("h1")).to_have_text("Contraseña e idioma")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    # The refused wrong password is the one failed request.
    assert [e for e in page.errors if "status of 403" not in e] == []  # type: ignore[attr-defined]
