"""The workspace's SLA parts: the inbox's `sort=sla_due`, SLA badges, SLA and scheduled-reply notifications."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from hilo.clock import FrozenClock
from tests.routing.desk import Desk
from tests.support import Api

HOUR = 3600


@pytest.fixture
def desk(api: Api, clock: FrozenClock) -> Iterator[Desk]:
    desk = Desk(api, clock)
    yield desk
    desk.close()


def policy(desk: Desk, name: str, **fields: Any) -> None:
    desk.api.ok(desk.api.post("/api/v1/sla-policies", {"name": name, **fields}), 201)


def sign_in(desk: Desk) -> None:
    response = desk.client.post(
        "/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"}
    )
    assert response.status_code == 200


def test_inbox_sorts_by_sla_due_with_conversations_without_a_target_last(desk: Desk) -> None:
    # given: one conversation before any policy, then three under policies
    without = desk.customer_writes()
    policy(desk, "Urgent", position=0, conditions={"priorities": ["urgent"]}, first_response_seconds=10 * 60)
    policy(desk, "Standard", position=1, first_response_seconds=HOUR)
    first = desk.customer_writes()
    desk.clock.advance(minutes=5)
    second = desk.customer_writes()
    desk.clock.advance(minutes=5)
    third = desk.customer_writes()
    desk.patch(third, priority="urgent")
    # when
    items = desk.api.conversations(sort="sla_due", status="open", limit=2)
    page = desk.api.ok(desk.api.get("/api/v1/conversations", params={"sort": "sla_due", "limit": 2}))
    rest = desk.api.ok(
        desk.api.get("/api/v1/conversations", params={"sort": "sla_due", "limit": 2, "cursor": page["next_cursor"]})
    )
    # then: soonest due first, pages follow on, no SLA last
    assert [c["id"] for c in items] == [third, first]
    assert [c["id"] for c in page["items"] + rest["items"]] == [third, first, second, without]


def test_inbox_list_shows_sla_due_times_and_sorts_by_them(desk: Desk) -> None:
    # given
    policy(desk, "Standard", first_response_seconds=HOUR, warning_share=0.5)
    first = desk.customer_writes()
    desk.clock.advance(minutes=20)
    second = desk.customer_writes()
    sign_in(desk)
    # when
    html = desk.client.get("/ui/list?view=all&sort=sla_due").text
    # then: rows in due order, each with its due time and the server's now for the ticking
    rows = [int(i) for i in re.findall(r'id="row-(\d+)"', html)]
    assert rows.index(first) < rows.index(second)
    assert html.count('data-sla-status="on_track"') == 2
    assert 'data-sla-kind="first_response"' in html
    assert "data-now=" in html
    assert '<option value="sla_due" selected>SLA due</option>' in desk.client.get("/ui/list?view=all&sort=sla_due").text
    # when: the first one passes its warning and its target
    desk.tick(minutes=45)
    header = desk.client.get(f"/ui/conversations/{first}/header").text
    # then: the header says so
    assert 'data-sla-status="breached"' in header
    assert "First response was due" in header


def test_sla_due_is_a_sort_saved_views_accept(desk: Desk) -> None:
    # when
    view = desk.api.post("/api/v1/views", {"name": "Due first", "filters": {}, "sort": "sla_due"})
    # then
    assert view.status_code == 201, view.text
    assert view.json()["sort"] == "sla_due"


def test_sla_warning_and_breach_notify_the_assignee_and_supervisors(desk: Desk) -> None:
    # given: Ana (agent) gets the conversation; Sue supervises the team; Tom is in the team
    policy(desk, "Standard", first_response_seconds=HOUR, warning_share=0.5)
    ana, sue, tom = desk.agent("Ana"), desk.agent("Sue", "supervisor"), desk.agent("Tom")
    team = desk.team("Support", [ana, sue, tom])
    desk.route_to_team(team)
    desk.connect(ana)
    conversation = desk.customer_writes()
    assert desk.assignee(conversation) == ana.agent_id
    # when: half the time, then the whole hour passes
    desk.tick(minutes=31)
    desk.tick(minutes=30)
    desk.client.app.state.notifier.drain()  # type: ignore[attr-defined]

    # then
    def kinds(agent: Any) -> list[tuple[str, str | None]]:
        items = agent.ok(agent.get("/api/v1/notifications"))["items"]
        return sorted(
            (n["kind"], n["data"].get("sla_kind"))
            for n in items
            if n["conversation_id"] == conversation and n["kind"].startswith("sla_")
        )

    expected = [("sla_breached", "first_response"), ("sla_warning", "first_response")]
    assert kinds(ana) == expected
    assert kinds(sue) == expected
    assert kinds(tom) == []


def test_a_failed_scheduled_reply_notifies_its_author(desk: Desk) -> None:
    # given: a reply scheduled on a channel that is disabled before it goes out
    conversation = desk.customer_writes()
    send_at = (desk.clock.now() + timedelta(hours=1)).isoformat()
    desk.api.ok(
        desk.api.post(
            "/api/v1/scheduled-messages", {"conversation_id": conversation, "body": "Later", "send_at": send_at}
        ),
        201,
    )
    desk.api.ok(desk.api.patch(f"/api/v1/channels/{desk.channel['id']}", {"enabled": False}))
    # when
    desk.tick(hours=2)
    desk.client.app.state.notifier.drain()  # type: ignore[attr-defined]
    # then: the author hears of it, in the bell's list too
    items = desk.api.ok(desk.api.get("/api/v1/notifications"))["items"]
    assert [n["kind"] for n in items if n["conversation_id"] == conversation] == ["scheduled_failed"]
    sign_in(desk)
    assert "A scheduled reply could not be sent" in desk.client.get("/ui/notifications").text
