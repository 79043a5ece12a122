"""SLA policies through the API: timers, warnings and breaches, pausing, business hours, sorting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.routing.desk import Desk

HOUR = 3600


def policy(desk: Desk, name: str = "Standard", **fields: Any) -> dict[str, Any]:
    return desk.api.ok(desk.api.post("/api/v1/sla-policies", {"name": name, **fields}), 201)  # type: ignore[no-any-return]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_first_response_warns_then_breaches_and_notifies_assignee_and_supervisors(desk: Desk) -> None:
    # given: one hour to answer, warning at half time
    policy(desk, first_response_seconds=HOUR, warning_share=0.5)
    ana, sue = desk.agent("Ana"), desk.agent("Sue", "supervisor")
    team = desk.team("Support", [ana, sue])
    desk.route_to_team(team)
    desk.connect(ana)
    conversation = desk.customer_writes()
    assert desk.assignee(conversation) == ana.agent_id
    start = desk.clock.now()
    sla = desk.sla(conversation)
    assert sla["status"] == "on_track"
    assert sla["due_kind"] == "first_response"
    assert at(sla["due_at"]) == start + timedelta(hours=1)
    # when: 29 minutes pass
    desk.tick(minutes=29)
    # then: nothing yet
    assert desk.sla(conversation)["status"] == "on_track"
    # when: past half time
    desk.tick(minutes=2)
    # then
    sla = desk.sla(conversation)
    assert sla["status"] == "warning"
    warning = next(e for e in sla["events"] if e["kind"] == "sla.warning")
    assert warning["data"]["kind"] == "first_response"
    assert warning["data"]["notified"] == sorted([ana.agent_id, sue.agent_id])
    # when: the hour is over
    desk.tick(minutes=30)
    # then
    sla = desk.sla(conversation)
    assert sla["status"] == "breached"
    assert [e["kind"] for e in sla["events"]].count("sla.breached") == 1
    # when: Ana answers late
    desk.api.ok(ana.post(f"/api/v1/conversations/{conversation}/messages", {"body": "Sorry for the wait"}), 201)
    desk.settle()
    # then: the target is met late and stays visible as breached
    sla = desk.sla(conversation)
    first = next(t for t in sla["timers"] if t["kind"] == "first_response")
    assert first["state"] == "met"
    assert first["breached_at"] is not None
    assert sla["status"] == "breached"
    met = next(e for e in sla["events"] if e["kind"] == "sla.met")
    assert met["data"]["breached"] is True


def test_timers_pause_while_pending_and_resume_where_they_stopped(desk: Desk) -> None:
    # given
    policy(desk, first_response_seconds=HOUR, resolution_seconds=8 * HOUR)
    conversation = desk.customer_writes()
    # when: after 20 minutes the agent asks the customer and sets it pending for two hours
    desk.clock.advance(minutes=20)
    desk.patch(conversation, status="pending")
    desk.tick(hours=2)
    # then: nothing breached while pending
    sla = desk.sla(conversation)
    assert sla["status"] == "paused"
    assert sla["due_at"] is None
    # when: the customer answers; the conversation opens again
    desk.customer_writes("Here is the order number", customer="customer-1")
    # then: 40 minutes of the hour are left
    sla = desk.sla(conversation)
    assert sla["status"] == "on_track"
    first = next(t for t in sla["timers"] if t["kind"] == "first_response")
    assert first["consumed_seconds"] == 20 * 60
    assert (at(first["due_at"]) - desk.clock.now()).total_seconds() == 40 * 60
    # when
    desk.tick(minutes=39)
    # then: 59 counted minutes are past the default 80 % warning, not yet the hour
    assert desk.sla(conversation)["status"] == "warning"
    desk.tick(minutes=2)
    # then
    assert desk.sla(conversation)["status"] == "breached"


def test_targets_count_business_hours_when_the_policy_says_so(desk: Desk) -> None:
    # given: Madrid office hours, two business hours to answer
    hours = desk.api.ok(
        desk.api.post(
            "/api/v1/business-hours",
            {
                "name": "Madrid office",
                "timezone": "Europe/Madrid",
                "periods": {d: [["09:00", "14:00"], ["15:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                "holiday_country": "ES",
                "holiday_subdivision": "MD",
            },
        ),
        201,
    )
    policy(desk, first_response_seconds=2 * HOUR, business_hours_id=hours["id"])
    # when: a customer writes on Friday 6 March at 17:30 Madrid time (16:30 UTC)
    desk.clock.set(datetime(2026, 3, 6, 16, 30, tzinfo=UTC))
    conversation = desk.customer_writes()
    # then: 30 minutes on Friday, 90 minutes on Monday from 09:00 (08:00 UTC)
    assert at(desk.sla(conversation)["due_at"]) == datetime(2026, 3, 9, 9, 30, tzinfo=UTC)
    # when: the weekend passes
    desk.tick(hours=60)
    # then: no breach on Monday morning before the due time
    assert desk.clock.now() == datetime(2026, 3, 9, 4, 30, tzinfo=UTC)
    assert desk.sla(conversation)["status"] == "on_track"
    desk.tick(hours=5, minutes=1)
    assert desk.sla(conversation)["status"] == "breached"


def test_business_hours_arithmetic_is_available_through_the_api(desk: Desk) -> None:
    # given
    hours = desk.api.ok(
        desk.api.post(
            "/api/v1/business-hours",
            {
                "name": "New York",
                "timezone": "America/New_York",
                "periods": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                "holiday_country": "US",
            },
        ),
        201,
    )
    # when: 4 business hours from Thursday 2 July 2026 15:00 EDT; Friday 3 July is the observed holiday
    deadline = desk.api.ok(
        desk.api.get(
            f"/api/v1/business-hours/{hours['id']}/deadline",
            params={"start": "2026-07-02T19:00:00Z", "seconds": 4 * HOUR},
        )
    )
    elapsed = desk.api.ok(
        desk.api.get(
            f"/api/v1/business-hours/{hours['id']}/elapsed",
            params={"start": "2026-07-02T19:00:00Z", "end": deadline["due"]},
        )
    )
    # then: 2 h on Thursday, 2 h on Monday 6 July (11:00 EDT = 15:00 UTC)
    assert at(deadline["due"]) == datetime(2026, 7, 6, 15, 0, tzinfo=UTC)
    assert elapsed["seconds"] == 4 * HOUR
    # and a calendar that cannot work is refused with the reason
    bad = desk.api.post(
        "/api/v1/business-hours",
        {"name": "Bad", "timezone": "Europe/Nowhere", "periods": {"mon": [["09:00", "17:00"]]}},
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "business_hours_invalid"
    assert "Europe/Nowhere" in bad.json()["error"]["message"]


def test_next_response_target_starts_when_the_customer_writes_after_an_answer(desk: Desk) -> None:
    # given
    policy(desk, first_response_seconds=HOUR, next_response_seconds=30 * 60)
    conversation = desk.customer_writes()
    desk.clock.advance(minutes=10)
    desk.api.ok(desk.api.post(f"/api/v1/conversations/{conversation}/messages", {"body": "Hi!"}), 201)
    desk.settle()
    assert desk.sla(conversation)["status"] == "met"
    # when
    desk.clock.advance(minutes=5)
    desk.customer_writes("One more thing", customer="customer-1")
    # then
    sla = desk.sla(conversation)
    assert sla["status"] == "on_track"
    assert sla["due_kind"] == "next_response"
    assert (at(sla["due_at"]) - desk.clock.now()).total_seconds() == 30 * 60


def test_resolving_meets_the_resolution_target_and_reopening_resumes_it(desk: Desk) -> None:
    # given
    policy(desk, resolution_seconds=4 * HOUR)
    conversation = desk.customer_writes()
    # when
    desk.clock.advance(hours=1)
    desk.patch(conversation, status="resolved")
    # then
    resolution = next(t for t in desk.sla(conversation)["timers"] if t["kind"] == "resolution")
    assert resolution["state"] == "met"
    assert resolution["consumed_seconds"] == HOUR
    # when: the customer writes again the next day (within the re-open window)
    desk.clock.advance(hours=20)
    desk.customer_writes("It broke again", customer="customer-1")
    # then: three hours are left
    sla = desk.sla(conversation)
    assert sla["due_kind"] == "resolution"
    assert (at(sla["due_at"]) - desk.clock.now()).total_seconds() == 3 * HOUR


def test_policy_is_chosen_by_conditions_and_changes_with_priority(desk: Desk) -> None:
    # given
    urgent = policy(
        desk, "Urgent", position=0, conditions={"priorities": ["urgent", "high"]}, first_response_seconds=15 * 60
    )
    standard = policy(desk, "Standard", position=1, first_response_seconds=4 * HOUR)
    conversation = desk.customer_writes()
    assert desk.sla(conversation)["policy_id"] == standard["id"]
    # when: after 10 minutes it becomes urgent
    desk.clock.advance(minutes=10)
    desk.patch(conversation, priority="urgent")
    # then: the urgent target applies to the time already spent
    sla = desk.sla(conversation)
    assert sla["policy_id"] == urgent["id"]
    assert (at(sla["due_at"]) - desk.clock.now()).total_seconds() == 5 * 60


def test_policy_is_chosen_by_the_kind_of_channel(desk: Desk) -> None:
    # given: a tight WhatsApp policy first, then one for the API channel, then a catch-all
    whatsapp = policy(
        desk, "WhatsApp", position=0, conditions={"channel_kinds": ["whatsapp"]}, first_response_seconds=600
    )
    api = policy(desk, "API", position=1, conditions={"channel_kinds": ["api"]}, first_response_seconds=HOUR)
    policy(desk, "Standard", position=2, first_response_seconds=8 * HOUR)
    # when: a customer writes through the API channel
    conversation = desk.customer_writes()
    # then: the API policy applies, not the WhatsApp one listed before it
    sla = desk.sla(conversation)
    assert sla["policy_id"] == api["id"] != whatsapp["id"]
    assert (at(sla["due_at"]) - desk.clock.now()).total_seconds() == HOUR


def test_policy_is_chosen_by_team_and_changes_with_it(desk: Desk) -> None:
    # given: billing answers within 15 minutes, everyone else within 4 hours
    billing = desk.api.ok(desk.api.post("/api/v1/teams", {"name": "Billing"}), 201)["id"]
    sales = desk.api.ok(desk.api.post("/api/v1/teams", {"name": "Sales"}), 201)["id"]
    fast = policy(desk, "Billing", position=0, conditions={"team_ids": [billing]}, first_response_seconds=15 * 60)
    standard = policy(desk, "Standard", position=1, first_response_seconds=4 * HOUR)
    to_billing, to_sales = desk.customer_writes(), desk.customer_writes()
    assert desk.sla(to_billing)["policy_id"] == standard["id"]
    # when: after 5 minutes each conversation is put in a team
    desk.clock.advance(minutes=5)
    desk.patch(to_billing, team_id=billing)
    desk.patch(to_sales, team_id=sales)
    # then: the billing policy applies to the time already spent; the other keeps the standard one
    sla = desk.sla(to_billing)
    assert sla["policy_id"] == fast["id"]
    assert (at(sla["due_at"]) - desk.clock.now()).total_seconds() == 10 * 60
    assert desk.sla(to_sales)["policy_id"] == standard["id"]


def test_conversations_sort_by_sla_due_time(desk: Desk) -> None:
    # given
    policy(desk, "Urgent", position=0, conditions={"priorities": ["urgent"]}, first_response_seconds=10 * 60)
    policy(desk, "Standard", position=1, first_response_seconds=HOUR)
    first = desk.customer_writes()
    desk.clock.advance(minutes=5)
    second = desk.customer_writes()
    desk.clock.advance(minutes=5)
    third = desk.customer_writes()
    desk.patch(third, priority="urgent")
    # when
    page = desk.api.ok(desk.api.get("/api/v1/sla/conversations", params={"status": "open"}))
    # then: the urgent one (due in 0 minutes) first, then by first response due
    assert [c["id"] for c in page["items"]] == [third, first, second]
    assert page["items"][0]["sla"]["status"] == "on_track"
    breached = desk.api.ok(desk.api.get("/api/v1/sla/conversations", params={"sla_status": "breached"}))
    assert breached["items"] == []
