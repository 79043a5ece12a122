"""Every user-facing string has an English and a Spanish catalog entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from hilo.i18n import LOCALE_DIR, catalog, gettext, negotiate, normalize_locale

PACKAGE = Path(__file__).parents[1] / "hilo"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "silent": "false"}}


def extracted() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        PACKAGE, METHODS, options_map=OPTIONS, keywords={"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
    ):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.add(msgid)
    return found


@pytest.mark.parametrize("locale", ["en", "es"])
def test_catalog_is_complete(locale: str) -> None:
    # given
    msgids = extracted()
    # when
    missing = sorted(m for m in msgids if m not in catalog(locale))
    # then
    assert msgids, "no strings were extracted: the extraction itself is broken"
    assert missing == [], f"{len(missing)} msgids missing from the {locale} catalog: {missing[:20]}"


def test_spanish_is_really_translated() -> None:
    # given: the Spanish catalog
    spanish = catalog("es")
    # when: entries whose Spanish equals the English text
    same = [m for m, s in spanish.items() if m == s and len(m) > 25]
    # then: long sentences are never left in English
    assert same == []


def test_every_catalog_file_has_both_languages() -> None:
    english = {p.name for p in (LOCALE_DIR / "en" / "LC_MESSAGES").glob("*.po")}
    spanish = {p.name for p in (LOCALE_DIR / "es" / "LC_MESSAGES").glob("*.po")}
    assert english == spanish


def test_negotiation_and_placeholders() -> None:
    assert negotiate("es-MX,es;q=0.9,en;q=0.8") == "es"
    assert negotiate("fr-FR,fr;q=0.9") == "en"
    assert negotiate("fr;q=0.9,en-GB;q=0.8") == "en"
    assert normalize_locale("ES_es") == "es"
    assert gettext("Use a password of at least {n} characters.", "es", n=10) == (
        "Usa una contraseña de al menos 10 caracteres."
    )
