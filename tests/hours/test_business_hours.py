"""Business-time arithmetic: weekends, holidays, several periods a day, time zones and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from hilo.hours.calendar import Calendar, CalendarError

WEEKDAYS_9_TO_5 = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
HOUR = 3600


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_adding_time_within_one_day() -> None:
    # given
    calendar = Calendar("UTC", WEEKDAYS_9_TO_5)
    # when
    due = calendar.add(utc(2026, 3, 2, 10), 2 * HOUR)
    # then
    assert due == utc(2026, 3, 2, 12)


def test_time_left_on_friday_carries_over_the_weekend() -> None:
    # given: Friday 16:00, one business hour left in the day
    calendar = Calendar("UTC", WEEKDAYS_9_TO_5)
    # when
    due = calendar.add(utc(2026, 3, 6, 16), 3 * HOUR)
    # then: 1 h on Friday, 2 h on Monday morning
    assert due == utc(2026, 3, 9, 11)
    assert calendar.diff(utc(2026, 3, 6, 16), due) == 3 * HOUR


def test_starting_outside_hours_counts_from_the_next_opening() -> None:
    # given: Saturday afternoon
    calendar = Calendar("UTC", WEEKDAYS_9_TO_5)
    # when
    due = calendar.add(utc(2026, 3, 7, 15), 30 * 60)
    # then
    assert due == utc(2026, 3, 9, 9, 30)
    assert not calendar.is_open(utc(2026, 3, 7, 15))
    assert calendar.next_open(utc(2026, 3, 7, 15)) == utc(2026, 3, 9, 9)


def test_several_periods_a_day_skip_the_lunch_break() -> None:
    # given: 09-13 and 15-19
    calendar = Calendar("UTC", {"mon": [["15:00", "19:00"], ["09:00", "13:00"]]})
    # when
    due = calendar.add(utc(2026, 3, 2, 12), 2 * HOUR)
    # then: one hour before lunch, one after
    assert due == utc(2026, 3, 2, 16)
    assert calendar.diff(utc(2026, 3, 2, 8), utc(2026, 3, 2, 20)) == 8 * HOUR
    assert calendar.next_close(utc(2026, 3, 2, 14)) == utc(2026, 3, 2, 19)


def test_public_holidays_of_the_country_and_region_are_closed() -> None:
    # given: Madrid; 2026-05-01 (Labour Day) is a Friday, 2026-05-02 (Community of Madrid day) a Saturday
    calendar = Calendar("Europe/Madrid", WEEKDAYS_9_TO_5, holiday_country="ES", holiday_subdivision="MD")
    # when: Thursday 30 April 16:00 local (14:00 UTC), two hours to go
    due = calendar.add(utc(2026, 4, 30, 14), 2 * HOUR)
    # then: one hour on Thursday, Friday is a holiday, one hour on Monday from 09:00 local (07:00 UTC)
    assert calendar.is_holiday(date(2026, 5, 1))
    assert due == utc(2026, 5, 4, 8)


def test_extra_closed_dates_are_holidays_too() -> None:
    # given
    calendar = Calendar("UTC", WEEKDAYS_9_TO_5, closed_dates=[date(2026, 3, 3)])
    # when
    due = calendar.add(utc(2026, 3, 2, 16), 2 * HOUR)
    # then: Tuesday is skipped
    assert due == utc(2026, 3, 4, 10)


def test_time_zones_shift_the_open_hours() -> None:
    # given: the same 9-17 in New York and in Tokyo
    new_york = Calendar("America/New_York", WEEKDAYS_9_TO_5)
    tokyo = Calendar("Asia/Tokyo", WEEKDAYS_9_TO_5)
    instant = utc(2026, 1, 12, 15)  # Monday: 10:00 in New York, 00:00 Tuesday in Tokyo
    # then
    assert new_york.is_open(instant)
    assert not tokyo.is_open(instant)
    assert tokyo.next_open(instant) == utc(2026, 1, 13, 0)


def test_a_period_lasts_its_wall_clock_hours_across_a_daylight_saving_change() -> None:
    # given: Madrid moves clocks forward on Sunday 29 March 2026 at 02:00
    calendar = Calendar("Europe/Madrid", {day: [["09:00", "17:00"]] for day in ("fri", "mon")})
    # when: Friday 16:00 CET (15:00 UTC), two business hours
    due = calendar.add(utc(2026, 3, 27, 15), 2 * HOUR)
    # then: Monday 10:00 CEST is 08:00 UTC (not 09:00)
    assert due == utc(2026, 3, 30, 8)


def test_a_24_hour_day_is_23_hours_long_on_the_day_clocks_go_forward() -> None:
    # given
    calendar = Calendar("Europe/Madrid", {"sun": [["00:00", "24:00"]]})
    # when
    length = calendar.diff(utc(2026, 3, 28, 0), utc(2026, 3, 30, 0))
    # then
    assert length == 23 * HOUR


def test_diff_and_add_agree() -> None:
    # given
    calendar = Calendar("America/New_York", WEEKDAYS_9_TO_5, holiday_country="US")
    start = utc(2026, 12, 23, 20)
    # when: 20 business hours across Christmas
    due = calendar.add(start, 20 * HOUR)
    # then
    assert calendar.diff(start, due) == pytest.approx(20 * HOUR)
    assert due - start > timedelta(days=3)


@pytest.mark.parametrize(
    ("periods", "problem"),
    [
        ({"mon": [["09:00", "08:00"]]}, "ends before it starts"),
        ({"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}, "overlap"),
        ({"mon": [["9am", "12:00"]]}, "not a time of day"),
        ({"someday": [["09:00", "12:00"]]}, "unknown weekday"),
        ({"mon": []}, "no open period"),
    ],
)
def test_unusable_periods_are_refused(periods: dict[str, list[list[str]]], problem: str) -> None:
    with pytest.raises(CalendarError, match=problem):
        Calendar("UTC", periods)


def test_unknown_time_zone_and_country_are_refused() -> None:
    with pytest.raises(CalendarError, match="time zone"):
        Calendar("Mars/Olympus", WEEKDAYS_9_TO_5)
    with pytest.raises(CalendarError, match="holiday"):
        Calendar("UTC", WEEKDAYS_9_TO_5, holiday_country="XX")
