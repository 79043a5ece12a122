"""Search finds the same conversations whichever way it looks: newest-first window or index."""

from __future__ import annotations

import pytest
import sqlalchemy

from hilo.clock import FrozenClock
from hilo.conversations import search
from hilo.db.engine import normalize_url
from tests.support import Api


@pytest.fixture
def inbox(api: Api, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Api:
    """Six conversations, oldest first; "reembolso" in the oldest and the two newest. The
    window is two conversations, so a page of one is answered from it and a longer one is not."""
    monkeypatch.setattr(search, "RECENT_WINDOW", 2)
    channel = api.api_channel()
    texts = ["quiero un reembolso", "hola", "buenas", "gracias", "reembolso del pedido", "otro reembolso"]
    for n, text in enumerate(texts):
        api.inbound(channel, f"c{n}", text, email=f"c{n}@example.com")
        clock.advance(minutes=1)
    return api


def _bodies(api: Api, **params: str) -> list[str]:
    return [api.timeline(c["id"])[0]["body"] for c in api.conversations(**params)]


@pytest.mark.parametrize("few", [search.FEW, 0], ids=["paged-at-once", "sorted-then-paged"])
def test_matches_beyond_the_newest_window_come_from_the_index(
    inbox: Api, monkeypatch: pytest.MonkeyPatch, few: int
) -> None:
    # given: the matches collected are paged in one statement, or sorted in a first one
    monkeypatch.setattr(search, "FEW", few)
    # when: the window of the two newest holds fewer matches than a page
    found = _bodies(inbox, q="reembolso")
    # then: the older ones are found too, newest activity first
    assert found == ["otro reembolso", "reembolso del pedido", "quiero un reembolso"]


def test_a_full_page_within_the_window_is_answered_from_it(inbox: Api) -> None:
    # when: one result per page, and the newest conversation matches
    page = inbox.ok(inbox.get("/api/v1/conversations", params={"q": "reembolso", "limit": 1}))
    second = inbox.ok(
        inbox.get("/api/v1/conversations", params={"q": "reembolso", "limit": 1, "cursor": page["next_cursor"]})
    )
    # then
    assert [inbox.timeline(c["id"])[0]["body"] for c in page["items"]] == ["otro reembolso"]
    assert [inbox.timeline(c["id"])[0]["body"] for c in second["items"]] == ["reembolso del pedido"]


def test_identity_and_offset_pages_use_the_same_rules(inbox: Api) -> None:
    # when: an e-mail address, and a sort paged by offset
    by_email = _bodies(inbox, q="c0@example.com")
    created = inbox.ok(inbox.get("/api/v1/conversations", params={"q": "reembolso", "sort": "created", "limit": 2}))
    rest = inbox.ok(
        inbox.get(
            "/api/v1/conversations",
            params={"q": "reembolso", "sort": "created", "limit": 2, "cursor": created["next_cursor"]},
        )
    )
    # then
    assert by_email == ["quiero un reembolso"]
    assert [inbox.timeline(c["id"])[0]["body"] for c in created["items"] + rest["items"]] == [
        "otro reembolso",
        "reembolso del pedido",
        "quiero un reembolso",
    ]


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"COLLECT_LIMIT": 1, "FIRST_WALK_WINDOW": 1, "WALK_GROWTH": 2}, id="growing-windows"),
        pytest.param({"COLLECT_LIMIT": 1, "FIRST_WALK_WINDOW": 1, "WALK_LIMIT": 3}, id="every-match-after-the-walk"),
    ],
)
def test_words_too_common_to_collect_are_found_in_windows_of_the_list(
    inbox: Api, monkeypatch: pytest.MonkeyPatch, knobs: dict[str, int]
) -> None:
    # given: more matches than the search collects, fewer in the newest window than a page
    for name, value in knobs.items():
        monkeypatch.setattr(search, name, value)
    # when
    by_word = _bodies(inbox, q="reembolso")
    by_domain = _bodies(inbox, q="example.com")
    first = inbox.ok(inbox.get("/api/v1/conversations", params={"q": "example.com", "sort": "created", "limit": 2}))
    second = inbox.ok(
        inbox.get(
            "/api/v1/conversations",
            params={"q": "example.com", "sort": "created", "limit": 2, "cursor": first["next_cursor"]},
        )
    )
    # then: the same conversations as any other way, newest activity first
    assert by_word == ["otro reembolso", "reembolso del pedido", "quiero un reembolso"]
    assert by_domain == ["otro reembolso", "reembolso del pedido", "gracias", "buenas", "hola", "quiero un reembolso"]
    assert [inbox.timeline(c["id"])[0]["body"] for c in second["items"]] == ["gracias", "buenas"]


@pytest.mark.parametrize("collect_limit", [search.COLLECT_LIMIT, 1], ids=["rare", "windows-from-the-start"])
def test_words_are_found_whatever_the_statistics_say(
    inbox: Api, database_url: str, monkeypatch: pytest.MonkeyPatch, collect_limit: int
) -> None:
    # given: statistics of the messages' words (PostgreSQL's; SQLite keeps none that search
    # reads), which call "reembolso" rare, or, with a lower limit, too common to collect
    monkeypatch.setattr(search, "COLLECT_LIMIT", collect_limit)
    engine = sqlalchemy.create_engine(normalize_url(database_url))
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("ANALYZE"))
    engine.dispose()
    # when
    by_word = _bodies(inbox, q="reembolso")
    by_domain = _bodies(inbox, q="example.com")
    unknown = _bodies(inbox, q="desconocida")
    # then
    assert by_word == ["otro reembolso", "reembolso del pedido", "quiero un reembolso"]
    assert by_domain == [
        "otro reembolso",
        "reembolso del pedido",
        "gracias",
        "buenas",
        "hola",
        "quiero un reembolso",
    ]
    assert unknown == []
