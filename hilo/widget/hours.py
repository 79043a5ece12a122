"""Whether the widget's team is there: its business-hours calendar, agents' presence, when it is back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel.dates import format_date, format_skeleton
from sqlalchemy import select
from sqlalchemy.orm import Session

from hilo.channels.widget import REPLY_TIMES, WidgetSettings
from hilo.hours import calendars
from hilo.hours.calendar import CalendarError
from hilo.hours.models import BusinessHours
from hilo.i18n import N_, gettext
from hilo.routing.models import RoutingAgent

# Within this many days the visitor reads a weekday ("Monday"); further away, a date.
WEEKDAY_DAYS = 6
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Hours:
    """A calendar's state as the widget shows it."""

    open_now: bool = True
    # Local time of the calendar's zone; None while open, or when it never opens again.
    next_open: datetime | None = None
    timezone: str | None = None


def team_hours(session: Session, business_hours_id: int | None, now: datetime) -> Hours | None:
    """The calendar's state at `now`; None when no calendar is set or it was deleted."""
    row = session.get(BusinessHours, business_hours_id) if business_hours_id is not None else None
    if row is None:
        return None
    calendar = calendars.cached(row)
    if calendar.is_open(now):
        return Hours(open_now=True, timezone=row.timezone)
    try:
        opens = calendar.next_open(now)
    except CalendarError:
        # Closed for longer than the calendar searches (a long run of closed dates).
        return Hours(open_now=False, timezone=row.timezone)
    return Hours(open_now=False, next_open=opens.astimezone(calendar.tz), timezone=row.timezone)


def config_fields(session: Session, settings: WidgetSettings, now: datetime, locale: str) -> dict[str, Any]:
    """What the widget's config says about being there, in `locale`.

    `agents_online` and `open_now` decide between the chat and the offline form;
    `reply_time` is the expectation shown to the visitor: when the calendar is closed, when
    it opens again, otherwise the fixed `reply_time` setting. Without a calendar the team
    counts as open and the free-text `business_hours` setting is shown instead.
    """
    hours = team_hours(session, settings.business_hours_id, now)
    fixed = gettext(REPLY_TIMES[settings.reply_time], locale) if settings.reply_time else ""
    back = back_text(hours.next_open, now, locale) if hours and hours.next_open else ""
    return {
        "agents_online": agents_available(session, now),
        "open_now": hours is None or hours.open_now,
        "next_open": hours.next_open.isoformat() if hours and hours.next_open else None,
        "next_open_text": back,
        "timezone": hours.timezone if hours else None,
        "reply_time": back if hours and not hours.open_now else fixed,
        "business_hours": "" if hours else settings.text("business_hours", locale),
    }


def agents_available(session: Session, now: datetime) -> bool:
    """Whether some agent is online and available: the agents routing would hand a chat to.

    The condition of `hilo.routing.presence.effective` == "online", as one indexed query.
    """
    found = session.execute(
        select(RoutingAgent.agent_id)
        .where(RoutingAgent.availability == "available", RoutingAgent.online_until > now)
        .limit(1)
    ).first()
    return found is not None


def back_text(opens: datetime, now: datetime, locale: str) -> str:
    """Say when the team is back ("We're back Monday at 09:00") on the wall clock of `opens`'s zone."""
    day = opens.date()
    days = (day - now.astimezone(opens.tzinfo).date()).days
    time = opens.strftime("%H:%M")
    if days <= 0:
        return gettext(N_("We're back today at {time}"), locale, time=time)
    if days == 1:
        return gettext(N_("We're back tomorrow at {time}"), locale, time=time)
    if days <= WEEKDAY_DAYS:
        weekday = format_date(day, "EEEE", locale=locale)
        return gettext(N_("We're back {weekday} at {time}"), locale, weekday=weekday, time=time)
    date = format_skeleton("MMMMd", day, locale=locale)
    return gettext(N_("We're back on {date} at {time}"), locale, date=date, time=time)
