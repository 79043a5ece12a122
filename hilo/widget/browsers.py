"""A short summary of a visitor's browser ("Firefox 128 on Windows") from its User-Agent header.

Agents want to know what the visitor is looking at, not the whole header, so only this
summary is kept with the visitor's messages.
"""

from __future__ import annotations

import re

MAX_USER_AGENT = 1_000

# Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari" too.
_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/(\d+)")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"\b(?:Chrome|HeadlessChrome|CriOS|Chromium)/(\d+)")),
    ("Safari", re.compile(r"\bVersion/(\d+)(?:\.\d+)*(?: Mobile/\S+)? Safari/")),
)
_SYSTEMS = (
    ("iOS", re.compile(r"\b(?:iPhone|iPad|iPod)\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)


def browser_summary(user_agent: str | None) -> str | None:
    """Name the browser, its major version and the operating system; None when unknown."""
    text = (user_agent or "")[:MAX_USER_AGENT]
    browser = next((f"{name} {found.group(1)}" for name, pattern in _BROWSERS if (found := pattern.search(text))), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(text)), None)
    if browser and system:
        return f"{browser} · {system}"
    return browser or system
