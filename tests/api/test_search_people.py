"""Search finds people the way agents type them: national phone numbers, 00 prefixes,
parts of e-mail addresses, domains and first names, in the inbox and in the contact list."""

from __future__ import annotations

import pytest

from hilo.conversations import search
from tests.support import Api


@pytest.fixture
def people(api: Api) -> dict[str, int]:
    """Four customers' conversations by first name; the installation's region is Spain."""
    channel = api.api_channel()
    api.inbound(channel, "liam", "Hello, where is my parcel?", name="Liam Walker", email="liam.33@example.net")
    api.inbound(channel, "lucia", "Hola, ¿dónde está mi pedido?", name="Lucía Marín", phone="+34600000033")
    api.inbound(channel, "oliver", "My order arrived broken", name="Oliver Stone", phone="+447700900123")
    api.inbound(channel, "grace", "Please call me back", name="Grace Hall", phone="+12025550133")
    api.inbound(channel, "ana", "Gracias", name="Ana Ruiz", email="ana@example.com", phone="+34600000034")
    return {c["contact_name"].split()[0]: c["id"] for c in api.conversations()}


def _found(api: Api, q: str) -> set[int]:
    return {c["id"] for c in api.conversations(q=q)}


def _contacts(api: Api, q: str) -> set[str]:
    return {c["name"] for c in api.ok(api.get("/api/v1/contacts", params={"q": q}))["items"]}


def test_a_national_phone_number_finds_its_owner(api: Api, people: dict[str, int]) -> None:
    # when / then: the region's own numbers, and other countries' numbers without their code
    assert _found(api, "600000033") == {people["Lucía"]}
    assert _found(api, "600 000 033") == {people["Lucía"]}
    assert _found(api, "07700 900123") == {people["Oliver"]}
    assert _found(api, "(202) 555-0133") == {people["Grace"]}
    assert _contacts(api, "600 00 00 33") == {"Lucía Marín"}
    assert _contacts(api, "202-555-0133") == {"Grace Hall"}


def test_a_number_with_00_before_its_country_code_finds_its_owner(api: Api, people: dict[str, int]) -> None:
    # when / then
    assert _found(api, "0034600000033") == {people["Lucía"]}
    assert _found(api, "0034 600 000 034") == {people["Ana"]}
    assert _found(api, "0044 7700 900123") == {people["Oliver"]}
    assert _contacts(api, "0034600000033") == {"Lucía Marín"}


def test_too_few_digits_or_another_country_code_find_nobody(api: Api, people: dict[str, int]) -> None:
    # when / then: five digits are part of too many numbers; +33 is France, not Spain
    assert _found(api, "00033") == set()
    assert _found(api, "+33600000033") == set()
    assert _found(api, "0033600000033") == set()
    assert _contacts(api, "00033") == set()


def test_part_of_an_email_address_or_its_domain_finds_its_owner(api: Api, people: dict[str, int]) -> None:
    # when / then
    assert _found(api, "liam.33") == {people["Liam"]}
    assert _found(api, "example.net") == {people["Liam"]}
    assert _found(api, "@example.net") == {people["Liam"]}
    assert _found(api, "EXAMPLE.COM") == {people["Ana"]}
    assert _found(api, "liam.33@example.net") == {people["Liam"]}
    assert _contacts(api, "liam.33") == {"Liam Walker"}
    assert _contacts(api, "example.com") == {"Ana Ruiz"}


def test_a_wildcard_in_part_of_an_address_is_taken_literally(api: Api, people: dict[str, int]) -> None:
    # when / then: "%" and "_" are characters to find, not patterns
    assert _found(api, "liam%33") == set()
    assert _found(api, "liam_33") == set()
    assert _found(api, "%.net") == set()
    assert _contacts(api, "%.net") == set()


def test_a_first_name_finds_the_person(api: Api, people: dict[str, int]) -> None:
    # when / then
    assert _found(api, "Liam") == {people["Liam"]}
    assert _found(api, "oliver") == {people["Oliver"]}
    assert _found(api, "Lucía") == {people["Lucía"]}
    assert _contacts(api, "Grace") == {"Grace Hall"}


def test_words_are_found_whatever_their_case(api: Api) -> None:
    # given
    channel = api.api_channel()
    api.inbound(channel, "c1", "Su TARJETA DE CRÉDITO fue rechazada")
    api.inbound(channel, "c2", "Pago con tarjeta de débito")
    # when
    found = {api.timeline(c["id"])[0]["body"] for c in api.conversations(q='"tarjeta de crédito"')}
    # then
    assert found == {"Su TARJETA DE CRÉDITO fue rechazada"}


def test_excluded_and_alternative_words_on_postgresql(api: Api, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's FTS5 query requires every word it is given")
    # given
    channel = api.api_channel()
    api.inbound(channel, "c1", "Su TARJETA DE CRÉDITO fue rechazada")
    api.inbound(channel, "c2", "Pago con tarjeta de débito")
    api.inbound(channel, "c3", "Transferencia recibida")
    # when
    excluded = {api.timeline(c["id"])[0]["body"] for c in api.conversations(q="tarjeta -crédito")}
    either = {api.timeline(c["id"])[0]["body"] for c in api.conversations(q="débito or transferencia")}
    # then
    assert excluded == {"Pago con tarjeta de débito"}
    assert either == {"Pago con tarjeta de débito", "Transferencia recibida"}


@pytest.mark.parametrize("collect_limit", [search.COLLECT_LIMIT, 1], ids=["collected", "newest-first"])
def test_contact_search_pages_through_its_matches(
    api: Api, people: dict[str, int], monkeypatch: pytest.MonkeyPatch, collect_limit: int
) -> None:
    # given: more matches than PostgreSQL collects, or fewer
    monkeypatch.setattr(search, "COLLECT_LIMIT", collect_limit)
    # when: part of two addresses, one contact per page
    first = api.ok(api.get("/api/v1/contacts", params={"q": "@example", "limit": 1}))
    second = api.ok(api.get("/api/v1/contacts", params={"q": "@example", "limit": 1, "cursor": first["next_cursor"]}))
    # then: the newest first
    assert [c["name"] for c in first["items"]] == ["Ana Ruiz"]
    assert [c["name"] for c in second["items"]] == ["Liam Walker"]
    assert second["next_cursor"] is None


def test_contact_search_by_the_start_of_an_identity(api: Api) -> None:
    # given: a contact known by an external id of the API channel
    channel = api.api_channel()
    api.inbound(channel, "crm-4821", "Hola", name="Nora Vidal")
    # when / then: the id as the channel names it, or its start
    assert _contacts(api, f"{channel['id']}:crm-4821") == {"Nora Vidal"}
    assert _contacts(api, f"{channel['id']}:crm-48") == {"Nora Vidal"}
    assert _contacts(api, f"{channel['id']}:crm-49") == set()
