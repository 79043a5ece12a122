"""Business-hour calendars and the time arithmetic SLA timers count in.

A calendar has open periods per weekday in wall-clock time of one IANA time zone, minus
public holidays (the `holidays` library, per country and region) and extra closed dates.
Every instant given or returned is timezone-aware UTC. Periods are turned into UTC
intervals day by day, so a period on a daylight-saving day lasts what the clock really
shows (09:00-17:00 is 8 hours on every day; 00:00-24:00 is 23 or 25 hours on a change day).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar that opens less than once in this many days is refused (it would make every
# deadline search walk for ever).
SEARCH_DAYS = 800
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class CalendarError(ValueError):
    """A calendar definition that cannot be used; `str(error)` says which part."""


def parse_clock(value: str) -> int:
    """Minutes after midnight for "HH:MM" ("24:00" is the end of the day)."""
    if not isinstance(value, str) or not _CLOCK.match(value):
        raise CalendarError(f"not a time of day: {value!r}")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def parse_periods(periods: Mapping[str, Sequence[Sequence[str]]]) -> dict[int, list[tuple[int, int]]]:
    """Validate {"mon": [["09:00", "13:00"], ["15:00", "19:00"]], ...} into minute ranges."""
    parsed: dict[int, list[tuple[int, int]]] = {}
    for key, ranges in periods.items():
        if key not in WEEKDAYS:
            raise CalendarError(f"unknown weekday: {key!r}")
        day: list[tuple[int, int]] = []
        for pair in ranges:
            if len(pair) != 2:
                raise CalendarError(f"{key}: a period is [start, end]")
            start, end = parse_clock(pair[0]), parse_clock(pair[1])
            if end <= start:
                raise CalendarError(f"{key}: {pair[0]}-{pair[1]} ends before it starts")
            day.append((start, end))
        day.sort()
        for (_s1, e1), (s2, _e2) in zip(day, day[1:], strict=False):
            if s2 < e1:
                raise CalendarError(f"{key}: periods overlap")
        parsed[WEEKDAYS.index(key)] = day
    if not any(parsed.values()):
        raise CalendarError("the calendar has no open period")
    return parsed


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError(f"unknown time zone: {name!r}") from exc


def check_holiday_country(country: str | None, subdivision: str | None) -> None:
    if not country:
        if subdivision:
            raise CalendarError("a holiday region needs a country")
        return
    try:
        holidays_lib.country_holidays(country, subdiv=subdivision, years=2000)
    except (NotImplementedError, ValueError) as exc:
        raise CalendarError(f"no holiday data for {country!r} region {subdivision!r}") from exc


class Calendar:
    """Open periods in a time zone, minus holidays; the arithmetic is on UTC instants."""

    def __init__(
        self,
        timezone: str,
        periods: Mapping[str, Sequence[Sequence[str]]],
        *,
        holiday_country: str | None = None,
        holiday_subdivision: str | None = None,
        closed_dates: Iterable[date] = (),
    ) -> None:
        self.tz = zone(timezone)
        self.periods = parse_periods(periods)
        check_holiday_country(holiday_country, holiday_subdivision)
        self.holiday_country = holiday_country
        self.holiday_subdivision = holiday_subdivision
        self.closed_dates = frozenset(closed_dates)
        self._holidays: dict[int, frozenset[date]] = {}
        self._intervals: dict[date, list[tuple[datetime, datetime]]] = {}

    def is_holiday(self, day: date) -> bool:
        if day in self.closed_dates:
            return True
        if not self.holiday_country:
            return False
        year = self._holidays.get(day.year)
        if year is None:
            found = holidays_lib.country_holidays(self.holiday_country, subdiv=self.holiday_subdivision, years=day.year)
            year = self._holidays[day.year] = frozenset(found.keys())
        return day in year

    def intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open intervals of local date `day`, as UTC instants."""
        cached = self._intervals.get(day)
        if cached is not None:
            return cached
        result: list[tuple[datetime, datetime]] = []
        if not self.is_holiday(day):
            for start, end in self.periods.get(day.weekday(), []):
                result.append((self._instant(day, start), self._instant(day, end)))
        if len(self._intervals) > 4096:
            self._intervals.clear()
        self._intervals[day] = result
        return result

    def _instant(self, day: date, minutes: int) -> datetime:
        if minutes == 24 * 60:
            day, minutes = day + timedelta(days=1), 0
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.tz)
        return local.astimezone(UTC)

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def _days_from(self, at: datetime) -> Iterable[date]:
        day = self._local_day(at)
        for offset in range(SEARCH_DAYS):
            yield day + timedelta(days=offset)
        raise CalendarError("the calendar stays closed for too long")

    def is_open(self, at: datetime) -> bool:
        return any(start <= at < end for start, end in self.intervals(self._local_day(at)))

    def next_open(self, at: datetime) -> datetime:
        """`at` itself if the calendar is open then, else the moment it next opens."""
        for day in self._days_from(at):
            for start, end in self.intervals(day):
                if end > at:
                    return max(start, at)
        raise AssertionError("unreachable")

    def next_close(self, at: datetime) -> datetime:
        """The end of the open interval that contains `at` or comes next."""
        for day in self._days_from(at):
            for _start, end in self.intervals(day):
                if end > at:
                    return end
        raise AssertionError("unreachable")

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant when `seconds` of open time have passed since `start`."""
        remaining = max(0.0, seconds)
        if remaining == 0:
            return start
        for day in self._days_from(start):
            for begin, end in self.intervals(day):
                if end <= start:
                    continue
                begin = max(begin, start)
                available = (end - begin).total_seconds()
                if remaining <= available:
                    return begin + timedelta(seconds=remaining)
                remaining -= available
        raise AssertionError("unreachable")

    def diff(self, start: datetime, end: datetime) -> float:
        """Seconds of open time between `start` and `end` (0 if `end` is not later)."""
        if end <= start:
            return 0.0
        total = 0.0
        day = self._local_day(start)
        last = self._local_day(end)
        while day <= last:
            for begin, finish in self.intervals(day):
                overlap = (min(finish, end) - max(begin, start)).total_seconds()
                if overlap > 0:
                    total += overlap
            day += timedelta(days=1)
        return total


def add_time(calendar: Calendar | None, start: datetime, seconds: float) -> datetime:
    """Add `seconds` of business time (with a calendar) or of plain time (without)."""
    if calendar is None:
        return start + timedelta(seconds=max(0.0, seconds))
    return calendar.add(start, seconds)


def time_between(calendar: Calendar | None, start: datetime, end: datetime) -> float:
    if calendar is None:
        return max(0.0, (end - start).total_seconds())
    return calendar.diff(start, end)
