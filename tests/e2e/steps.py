"""Steps many browser tests take: watching a page for errors, signing in, opening a conversation."""

from __future__ import annotations

import re
from typing import Protocol

from playwright.sync_api import Page, expect

# Every browser test's agents sign in with it.
PASSWORD = "correct horse battery"


class Served(Protocol):
    """A Hilo server a browser test runs: its address."""

    url: str


def watch_errors(page: Page) -> list[str]:
    """Keep the page's script errors and console errors in `page.errors` (returned too)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    return errors


def sign_in(page: Page, url: str, email: str, password: str = PASSWORD, *, login: str = "/login") -> None:
    """Sign in with the form of the sign-in page (`login`, a path of `url`); return once the inbox opens."""
    page.goto(f"{url}{login}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/inbox.*"))


def open_conversation(page: Page, live: Served, conversation_id: int, view: str = "all") -> None:
    """Open the conversation in the inbox; return once it and its composer's channels are drawn."""
    page.goto(f"{live.url}/inbox?view={view}&c={conversation_id}")
    expect(page.locator("#conversation")).to_have_attribute("data-id", str(conversation_id))
    expect(page.locator("#channel-picker option").first).not_to_have_text("Loading channels…")
