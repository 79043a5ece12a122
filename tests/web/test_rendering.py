"""Pure pieces of the agent UI: safe message text, view filters, event lines, page strings."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from hilo.errors import ActionError
from hilo.i18n import catalog
from hilo.web.inbox import BUILTIN, Filters, parse_filters
from hilo.web.rendering import JS_STRINGS, event_text, initials, rich_text, translator

STATIC = Path(__file__).parents[2] / "hilo" / "web" / "static"


def test_message_text_is_escaped_linked_and_mentions_highlighted() -> None:
    # when
    html = str(rich_text('<img src=x onerror="alert(1)"> see https://shop.example/o?id=1&t=2. @Ana Ruiz', ["Ana Ruiz"]))
    # then
    assert "<img" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert '<a href="https://shop.example/o?id=1&amp;t=2" target="_blank" rel="noopener noreferrer nofollow">' in html
    assert html.endswith('<span class="mention">@Ana Ruiz</span>')


def test_a_link_cannot_break_out_of_its_attribute() -> None:
    # when
    html = str(rich_text('https://evil.example/"onmouseover="alert(1)'))
    # then: the quote ends the link; it is never written raw into the attribute
    assert 'href="https://evil.example/"' in html
    assert 'onmouseover="' not in html


def test_filters_from_an_agent_are_validated_and_normalised() -> None:
    # when
    parsed = parse_filters({"status": "pending", "assignee": 3, "team": "none", "channel": "4", "label": " VIP "})
    # then
    assert parsed == Filters(status=("pending",), assignee="3", team="none", channel=4, label="vip")
    for bad in (
        {"status": ["gone"]},
        {"assignee": "someone"},
        {"team": "x"},
        {"channel": "y"},
        {"label": ""},
        {"q": 1},
    ):
        with pytest.raises(ActionError) as refused:
            parse_filters(bad)
        assert refused.value.code == "filter_invalid"


def test_status_choice_overrides_the_views_default() -> None:
    assert BUILTIN["all"].with_status("resolved").filters.status == ("resolved",)
    assert BUILTIN["all"].with_status("all").filters.status == ()
    assert BUILTIN["all"].with_status("all").status_choice == "all"
    with pytest.raises(ActionError):
        BUILTIN["all"].with_status("archived")


def test_event_lines_name_the_people_involved() -> None:
    # given
    directory = SimpleNamespace(
        agents={1: SimpleNamespace(name="Ana"), 2: SimpleNamespace(name="Bruno")},
        teams={9: SimpleNamespace(name="Billing")},
    )
    assigned = SimpleNamespace(
        author_agent_id=1,
        kind="event",
        data={"event": "conversation.assigned", "assignee_id": [None, 2], "team_id": [None, 9]},
    )
    automatic = SimpleNamespace(
        author_agent_id=None,
        kind="event",
        data={"event": "conversation.status_changed", "from": "open", "to": "pending"},
    )
    # when
    english = event_text(assigned, directory, translator("en"), str)
    spanish = event_text(automatic, directory, translator("es"), str)
    # then
    assert english == "Ana assigned the conversation to Bruno · Ana gave the conversation to the team Billing"
    assert spanish == "Hilo cambió el estado a Pendiente"


def test_every_string_the_script_shows_is_sent_to_the_page_and_translated() -> None:
    # given
    script = (STATIC / "app.js").read_text() + (STATIC / "login.js").read_text()
    # when
    used = set(re.findall(r'\bt\(\s*"([^"]+)"', script)) | set(re.findall(r'strings\["([^"]+)"\]', script))
    # then
    assert used, "no strings found: the pattern is broken"
    assert used <= set(JS_STRINGS)
    assert all(catalog("es")[msgid] != msgid for msgid in JS_STRINGS if len(msgid) > 12)


def test_initials() -> None:
    assert initials("María José García") == "MJ"
    assert initials("  ") == "?"
    assert initials(None) == "?"


TEMPLATE_DIRS = [Path(__file__).parents[2] / "hilo" / name / "templates" for name in ("web", "widget")]


def test_templates_write_json_as_markup_only_inside_json_script_blocks() -> None:
    # given: `tojson` leaves `"` unescaped, so an attribute holding it can be broken out of
    allowed = re.compile(r'<script type="application/json" id="[\w-]+">\{\{ \w+\|tojson \}\}</script>')
    # when
    misplaced = [
        f"{path.name}: {line.strip()}"
        for directory in TEMPLATE_DIRS
        for path in directory.rglob("*.html")
        for line in path.read_text().splitlines()
        if re.search(r"\|\s*(tojson|safe)\b|Markup", allowed.sub("", line))
    ]
    # then
    assert misplaced == []
