"""Conversation search over message text, names, e-mail addresses and phone numbers."""

from __future__ import annotations

from tests.support import Api


def _seed(api: Api) -> dict[str, int]:
    channel = api.api_channel()
    api.inbound(
        channel, "1", "Mi pedido llegó roto, quiero un reembolso", name="Carmen Vidal", email="carmen@example.com"
    )
    api.inbound(channel, "2", "The invoice for March is missing", name="Oliver Stone", phone="+447700900123")
    api.inbound(channel, "3", "Please refund the broken charger", name="Nadia Haddad")
    return {api.timeline(c["id"])[0]["body"].split()[1]: c["id"] for c in api.conversations()}


def _search(api: Api, q: str) -> set[int]:
    return {c["id"] for c in api.conversations(q=q)}


def test_word_phrase_email_phone_and_name(api: Api) -> None:
    # given
    ids = _seed(api)
    # when / then
    assert _search(api, "reembolso") == {ids["pedido"]}
    assert _search(api, "invoice") == {ids["invoice"]}
    assert _search(api, '"broken charger"') == {ids["refund"]}
    assert _search(api, '"charger broken"') == set()
    assert _search(api, "carmen@example.com") == {ids["pedido"]}
    assert _search(api, "+44 7700 900123") == {ids["invoice"]}
    assert _search(api, "Nadia") == {ids["refund"]}
    assert _search(api, "nothingmatches") == set()


def test_search_combines_with_filters(api: Api) -> None:
    # given
    ids = _seed(api)
    api.ok(api.patch(f"/api/v1/conversations/{ids['refund']}", {"status": "resolved"}))
    # when / then
    assert _search(api, "refund") == {ids["refund"]}
    assert {c["id"] for c in api.conversations(q="refund", status="open")} == set()
