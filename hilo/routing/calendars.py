"""Load business-hour calendars from the database, cached until the row changes."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hilo.routing.business_hours import Calendar
from hilo.routing.models import BusinessHours, RoutingTeam

_cache: dict[tuple[int, Any], Calendar] = {}
_lock = threading.Lock()


def build(row: BusinessHours) -> Calendar:
    return Calendar(
        row.timezone,
        row.periods,
        holiday_country=row.holiday_country,
        holiday_subdivision=row.holiday_subdivision,
        closed_dates=[date.fromisoformat(d) for d in row.closed_dates or []],
    )


def calendar(session: Session, business_hours_id: int | None) -> Calendar | None:
    """The calendar with this id (None for no id or a deleted calendar)."""
    if business_hours_id is None:
        return None
    row = session.get(BusinessHours, business_hours_id)
    if row is None:
        return None
    return cached(row)


def cached(row: BusinessHours) -> Calendar:
    key = (row.id, row.updated_at)
    with _lock:
        found = _cache.get(key)
    if found is not None:
        return found
    built = build(row)
    with _lock:
        if len(_cache) > 256:
            _cache.clear()
        _cache[key] = built
    return built


def team_calendar_row(session: Session, team_id: int | None) -> BusinessHours | None:
    """The calendar of a team, else the default calendar, else None."""
    if team_id is not None:
        row = session.execute(
            select(BusinessHours)
            .join(RoutingTeam, RoutingTeam.business_hours_id == BusinessHours.id)
            .where(RoutingTeam.team_id == team_id)
        ).scalar_one_or_none()
        if row is not None:
            return row
    return session.execute(select(BusinessHours).where(BusinessHours.is_default.is_(True))).scalars().first()
