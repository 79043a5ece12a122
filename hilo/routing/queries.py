"""Routing's reads shared by its engine, automation and pages."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hilo.hours.models import BusinessHours
from hilo.routing.models import RoutingTeam
from hilo.runtime import session_cached


def team_calendar_row(session: Session, team_id: int | None) -> BusinessHours | None:
    """The calendar of a team, else the default calendar, else None (one query per session)."""

    def load() -> BusinessHours | None:
        team_hours = select(RoutingTeam.business_hours_id).where(RoutingTeam.team_id == team_id).scalar_subquery()
        return (
            session.execute(
                select(BusinessHours)
                .where(or_(BusinessHours.id == team_hours, BusinessHours.is_default.is_(True)))
                # The team's own calendar first: a default one sorts after it.
                .order_by(BusinessHours.id != team_hours, BusinessHours.id)
                .limit(1)
            )
            .scalars()
            .first()
        )

    return session_cached(session, ("team_calendar", team_id), load)
