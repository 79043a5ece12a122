"""Translations: Spanish and English catalogs for every user-facing string.

Catalogs are plain gettext `.po` files under `hilo/locale/<lang>/LC_MESSAGES/`, one
file per domain area (core.po, whatsapp.po, ...); all files of a language are merged
at first use, so no compile step is needed at install time. Mark a string for
extraction with `_()` where it is rendered, or `N_()` where it is stored and rendered
later (error reasons, event labels). Placeholders use `str.format` names: `{name}`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from babel.messages.pofile import read_po

LOCALES = ("en", "es")
DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"


def N_(msgid: str) -> str:
    """Mark a msgid for extraction without translating it now."""
    return msgid


@functools.cache
def catalog(locale: str) -> dict[str, str]:
    """Return msgid -> msgstr for `locale`, merged from every .po file of that language."""
    merged: dict[str, str] = {}
    folder = LOCALE_DIR / locale / "LC_MESSAGES"
    for path in sorted(folder.glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale=locale):
                if message.id and isinstance(message.id, str) and message.string:
                    merged[message.id] = str(message.string)
    return merged


def normalize_locale(value: str | None) -> str:
    """Map "es-MX", "es_ES", "ES" ... to a supported locale, defaulting to English."""
    if not value:
        return DEFAULT_LOCALE
    lang = value.replace("_", "-").split("-")[0].strip().lower()
    return lang if lang in LOCALES else DEFAULT_LOCALE


def negotiate(accept_language: str | None) -> str:
    """Pick the best supported locale from an Accept-Language header."""
    if not accept_language:
        return DEFAULT_LOCALE
    weighted: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        piece = part.strip()
        if not piece:
            continue
        lang, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        weighted.append((quality, lang))
    for _quality, lang in sorted(weighted, key=lambda item: -item[0]):
        candidate = lang.replace("_", "-").split("-")[0].strip().lower()
        if candidate in LOCALES:
            return candidate
    return DEFAULT_LOCALE


def gettext(msgid: str, locale: str | None = None, **values: object) -> str:
    """Translate `msgid` into `locale` and fill its `{placeholders}`."""
    text = catalog(normalize_locale(locale)).get(msgid, msgid)
    return text.format(**values) if values else text


def _(msgid: str) -> str:
    """Extraction marker for strings translated at render time by the caller's locale."""
    return msgid
