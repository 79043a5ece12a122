"""Extra closed dates (a company holiday) through the business-hours API."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.routing.desk import Desk

HOUR = 3600


def test_a_calendar_with_extra_closed_dates_is_saved_and_skips_them(desk: Desk) -> None:
    # given: a Madrid office closed on Tuesday 3 March 2026 besides weekends
    hours = desk.api.ok(
        desk.api.post(
            "/api/v1/business-hours",
            {
                "name": "Madrid",
                "timezone": "Europe/Madrid",
                "periods": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                "closed_dates": ["2026-03-03"],
            },
        ),
        201,
    )
    # when: 2 business hours from Monday 2 March 16:00 (15:00 UTC)
    deadline = desk.api.ok(
        desk.api.get(
            f"/api/v1/business-hours/{hours['id']}/deadline",
            params={"start": "2026-03-02T15:00:00Z", "seconds": 2 * HOUR},
        )
    )
    # then: 1 h on Monday, Tuesday closed, 1 h on Wednesday (10:00 CET = 09:00 UTC)
    assert hours["closed_dates"] == ["2026-03-03"]
    assert datetime.fromisoformat(deadline["due"].replace("Z", "+00:00")) == datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    # and: a date that is not one is refused
    bad = desk.api.post(
        "/api/v1/business-hours",
        {"name": "Bad", "timezone": "UTC", "periods": {"mon": [["09:00", "17:00"]]}, "closed_dates": ["3 March"]},
    )
    assert bad.status_code == 422
