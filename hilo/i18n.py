"""Translations: Spanish and English catalogs for every user-facing string.

Catalogs are plain gettext `.po` files under `hilo/locale/<lang>/LC_MESSAGES/`, one
file per domain area (core.po, whatsapp.po, ...); all files of a language are merged
at first use, so no compile step is needed at install time. Mark a string for
extraction with `_()` where it is rendered, or `N_()` where it is stored and rendered
later (error reasons, event labels). Placeholders use `str.format` names: `{name}`.
A count is written with `ngettext(singular, plural, n, locale)`: its entries are plural
entries (`msgid_plural`, `msgstr[0]`, `msgstr[1]`...) chosen by the `Plural-Forms` rule of
the file's header, and `{n}` is the count.
"""

from __future__ import annotations

import functools
import gettext as stdlib_gettext
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.pofile import read_po

LOCALES = ("en", "es")
DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"


def N_(msgid: str) -> str:
    """Mark a msgid for extraction without translating it now."""
    return msgid


def _english_plural(n: int) -> int:
    return int(n != 1)


@dataclass
class Catalog:
    """The merged .po files of one language: plain messages, plural entries and the plural rule."""

    messages: dict[str, str] = field(default_factory=dict)
    # singular msgid -> (plural msgid, its forms in the order of the plural rule's indexes)
    plurals: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    plural_index: Callable[[int], int] = _english_plural


@functools.cache
def load(locale: str) -> Catalog:
    """Read every .po file of `locale` into one catalog."""
    merged = Catalog()
    folder = LOCALE_DIR / locale / "LC_MESSAGES"
    for path in sorted(folder.glob("*.po")):
        with path.open("rb") as handle:
            po = read_po(handle, locale=locale)
        if po.plural_expr:
            # The header's C expression, e.g. "(n != 1)", as gettext itself reads it.
            merged.plural_index = stdlib_gettext.c2py(po.plural_expr)
        for message in po:
            if not message.id or not message.string:
                continue
            if isinstance(message.id, str):
                merged.messages[message.id] = str(message.string)
            elif isinstance(message.string, list | tuple) and all(message.string):
                singular, plural = str(message.id[0]), str(message.id[1])
                merged.plurals[singular] = (plural, tuple(str(form) for form in message.string))
    return merged


def catalog(locale: str) -> dict[str, str]:
    """Return msgid -> msgstr for `locale`, merged from every .po file of that language."""
    return load(locale).messages


def N_plural(singular: str, plural: str) -> tuple[str, str]:
    """Mark a plural pair for extraction; it is translated later with `ngettext` or `plural_forms`."""
    return singular, plural


def plural_forms(singular: str, plural: str, locale: str | None = None) -> list[str]:
    """Return every plural form of a pair in `locale`, in the order of its plural rule (for scripts)."""
    entry = load(normalize_locale(locale)).plurals.get(singular)
    return list(entry[1]) if entry and entry[0] == plural else [singular, plural]


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


def ngettext(singular: str, plural: str, n: float, locale: str | None = None, **values: object) -> str:
    """Translate a text about `n` things into `locale`, in the plural form `n` takes there.

    `{n}` in the text is the count; other `{placeholders}` come from `values`. A fraction
    (1.5 hours) takes the last form, as in both languages."""
    loaded = load(normalize_locale(locale))
    entry = loaded.plurals.get(singular)
    forms = entry[1] if entry is not None and entry[0] == plural else (singular, plural)
    index = loaded.plural_index(int(n)) if float(n).is_integer() else len(forms) - 1
    return forms[min(max(index, 0), len(forms) - 1)].format(n=n, **values)


def _(msgid: str) -> str:
    """Extraction marker for strings translated at render time by the caller's locale."""
    return msgid
