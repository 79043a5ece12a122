"""Every user-facing string has an English and a Spanish catalog entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from hilo.i18n import LOCALE_DIR, catalog, gettext, load, negotiate, ngettext, normalize_locale, plural_forms

PACKAGE = Path(__file__).parents[1] / "hilo"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "silent": "false"}}


KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2), "N_plural": (1, 2)}


def extracted_all() -> tuple[set[str], set[tuple[str, str]]]:
    """The msgids marked in the package, and its plural pairs (ngettext, N_plural)."""
    found: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        PACKAGE, METHODS, options_map=OPTIONS, keywords=KEYWORDS
    ):
        if isinstance(message, tuple):
            singular, plural = message[0], message[1]
            if singular and plural:
                pairs.add((singular, plural))
        elif message:
            found.add(message)
    return found, pairs


def extracted() -> set[str]:
    return extracted_all()[0]


@pytest.mark.parametrize("locale", ["en", "es"])
def test_catalog_is_complete(locale: str) -> None:
    # given
    msgids = extracted()
    # when
    missing = sorted(m for m in msgids if m not in catalog(locale))
    # then
    assert msgids, "no strings were extracted: the extraction itself is broken"
    assert missing == [], f"{len(missing)} msgids missing from the {locale} catalog: {missing[:20]}"


@pytest.mark.parametrize("locale", ["en", "es"])
def test_every_count_has_its_plural_entry(locale: str) -> None:
    # given
    _msgids, pairs = extracted_all()
    plurals = load(locale).plurals
    # when: pairs with no plural entry (msgid_plural and a msgstr per form), or a different plural
    missing = sorted(pair for pair in pairs if plurals.get(pair[0], ("", ()))[0] != pair[1])
    incomplete = sorted(singular for singular, (_plural, forms) in plurals.items() if len(forms) != 2)
    # then
    assert pairs, "no plural pairs were extracted: the extraction itself is broken"
    assert missing == [], f"{len(missing)} plural pairs missing from the {locale} catalog: {missing[:10]}"
    assert incomplete == []


@pytest.mark.parametrize(
    ("locale", "one", "two"),
    [("en", "1 member", "2 members"), ("es", "1 miembro", "2 miembros")],
)
def test_a_count_takes_the_form_of_its_number(locale: str, one: str, two: str) -> None:
    # when
    written = [ngettext("{n} member", "{n} members", n, locale) for n in (1, 2)]
    # then
    assert written == [one, two]
    assert ngettext("{n} member", "{n} members", 0, locale) == two.replace("2", "0")


def test_plural_forms_follow_the_rule_of_the_file_header() -> None:
    # given: the Spanish header says nplurals=2; plural=(n != 1)
    spanish = load("es")
    # then
    assert [spanish.plural_index(n) for n in (0, 1, 2, 21)] == [1, 0, 1, 1]
    assert plural_forms("{n} member", "{n} members", "es") == ["{n} miembro", "{n} miembros"]
    assert ngettext("{n} unknown", "{n} unknowns", 1, "es") == "1 unknown"


def test_spanish_is_really_translated() -> None:
    # given: the Spanish catalog
    spanish = catalog("es")
    # when: entries whose Spanish equals the English text
    same = [m for m, s in spanish.items() if m == s and len(m) > 25]
    # then: long sentences are never left in English
    assert same == []


# Imperatives of the formal "usted" (capitalised: lowercase "pegue" is also "que pegue"): the
# interface says "Elige una plantilla", so an error that says "Elija" reads as another product.
USTED = (
    "Elija",
    "Compruebe",
    "Introduzca",
    "Intente",
    "Inténtelo",
    "Pulse",
    "Seleccione",
    "Pegue",
    "Pruebe",
    "Espere",
    "Contáctelo",
    "Sincronice",
    "inténtelo",
    "contáctelo",
)


def test_spanish_addresses_the_reader_as_tu() -> None:
    # given: the Spanish catalog
    spanish = catalog("es")
    # when: entries that tell the reader what to do in the formal form
    words = "|".join(USTED)
    formal = {m: s for m, s in spanish.items() if re.search(rf"(?<!\w)({words})(?!\w)", s)}
    # then
    assert formal == {}


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
