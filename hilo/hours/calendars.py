"""Business-hour calendars in the database: saving them, and loading them cached by content."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hilo.errors import ActionError
from hilo.hours.calendar import Calendar
from hilo.hours.models import BusinessHours
from hilo.i18n import N_
from hilo.runtime import Tx

_cache: dict[tuple[Any, ...], Calendar] = {}
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
    # Keyed by content, not id: the same id means another calendar in another database.
    key = (
        row.timezone,
        orjson.dumps(row.periods, option=orjson.OPT_SORT_KEYS),
        row.holiday_country,
        row.holiday_subdivision,
        tuple(row.closed_dates or ()),
    )
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


def save(tx: Tx, row: BusinessHours | None, fields: dict[str, Any]) -> BusinessHours:
    """Create or change a calendar after checking it can be used."""
    tx.forget_settings()
    try:
        # Dates from the API model, or YYYY-MM-DD text from elsewhere (demo data, scripts).
        closed = [d if isinstance(d, date) else date.fromisoformat(d) for d in fields.get("closed_dates") or []]
        Calendar(
            fields["timezone"],
            fields["periods"],
            holiday_country=fields.get("holiday_country"),
            holiday_subdivision=fields.get("holiday_subdivision"),
            closed_dates=closed,
        )
    except ValueError as exc:  # CalendarError, or a closed date that is not YYYY-MM-DD
        raise ActionError(
            "business_hours_invalid", N_("These business hours cannot be used: {problem}"), 422, problem=str(exc)
        ) from exc
    name = fields["name"].strip()
    clash = tx.session.execute(select(BusinessHours.id).where(BusinessHours.name == name)).scalar()
    if clash is not None and (row is None or clash != row.id):
        raise ActionError("name_taken", N_("That name is already in use."), 409)
    if fields.get("is_default"):
        tx.session.execute(update(BusinessHours).where(BusinessHours.is_default.is_(True)).values(is_default=False))
    if row is None:
        row = BusinessHours(created_at=tx.now)
        tx.session.add(row)
    row.name = name
    row.timezone = fields["timezone"]
    row.periods = {day: [list(p) for p in periods] for day, periods in fields["periods"].items()}
    row.holiday_country = fields.get("holiday_country")
    row.holiday_subdivision = fields.get("holiday_subdivision")
    row.closed_dates = sorted(d.isoformat() for d in closed)
    row.out_of_office_message = fields.get("out_of_office_message") or None
    row.is_default = bool(fields.get("is_default"))
    row.updated_at = tx.now
    tx.session.flush()
    tx.record("business_hours.saved", data={"business_hours_id": row.id, "name": row.name})
    return row


def remove(tx: Tx, row: BusinessHours) -> None:
    """Delete a calendar; teams and SLA policies using it fall back to none."""
    tx.session.execute(delete(BusinessHours).where(BusinessHours.id == row.id))
    tx.record("business_hours.deleted", data={"business_hours_id": row.id, "name": row.name})


def check_reference(session: Session, key: str, value: Any) -> int | None:
    """The calendar id a setting names (a number, or its text); None unsets it; 422 for no such calendar."""
    if value in (None, ""):
        return None
    calendar_id = value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        calendar_id = int(value.strip())
    if (
        isinstance(calendar_id, bool)
        or not isinstance(calendar_id, int)
        or session.get(BusinessHours, calendar_id) is None
    ):
        raise ActionError(
            "business_hours_unknown",
            N_("There are no business hours with id {value}: pick a calendar from the business hours, or none."),
            422,
            value=str(value)[:40],
            details=[{"field": f"settings.{key}"}],
        )
    return calendar_id
