"""Routing's reads shared by its engine, automation, its REST routes and the pages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hilo.agents.access import Principal
from hilo.agents.models import Agent, Team
from hilo.channels.models import ChannelAccount
from hilo.hours import calendars
from hilo.hours.models import BusinessHours
from hilo.routing import actions
from hilo.routing.access import require_supervisor
from hilo.routing.capacity import CHANNEL_CLASSES, capacity_for, channel_class
from hilo.routing.models import ConversationRouting, RoutingAgent, RoutingTeam, SlaPolicy
from hilo.routing.schemas import (
    AgentRoutingOut,
    BusinessHoursOut,
    QueueItemOut,
    SlaConditions,
    SlaPolicyOut,
    TeamRoutingOut,
)
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


# Teams and agents --------------------------------------------------------------------


def list_team_routing(session: Session, principal: Principal) -> list[TeamRoutingOut]:
    """Every team with how it hands out conversations (unconfigured teams do not auto-assign)."""
    require_supervisor(principal)
    rows = {r.team_id: r for r in session.execute(select(RoutingTeam)).scalars()}
    teams = session.execute(select(Team).order_by(Team.name)).scalars().all()
    return [team_out(session, team, rows.get(team.id)) for team in teams]


def team_out(session: Session, team: Team, row: RoutingTeam | None) -> TeamRoutingOut:
    queued = session.execute(
        select(func.count())
        .select_from(ConversationRouting)
        .where(ConversationRouting.team_id == team.id, ConversationRouting.queued_at.is_not(None))
    ).scalar_one()
    return TeamRoutingOut(
        team_id=team.id,
        name=team.name,
        configured=row is not None,
        strategy=row.strategy if row else "round_robin",
        auto_assign=row.auto_assign if row else False,
        reassign_when_offline=row.reassign_when_offline if row else False,
        business_hours_id=row.business_hours_id if row else None,
        queued=queued,
    )


def list_agent_routing(session: Session, principal: Principal, now: datetime) -> list[AgentRoutingOut]:
    """Every active agent's skills, capacity, presence and current load."""
    require_supervisor(principal)
    agents = list(session.execute(select(Agent).where(Agent.active.is_(True)).order_by(Agent.name)).scalars())
    return agents_out(session, agents, now)


def capacity_classes(session: Session) -> tuple[str, ...]:
    """The capacity classes of the configured channels (no "call" before there is a voice channel)."""
    kinds = session.execute(select(ChannelAccount.kind).distinct()).scalars()
    present = {channel_class(kind) for kind in kinds}
    return tuple(klass for klass in CHANNEL_CLASSES if klass in present)


def agents_out(session: Session, agents: list[Agent], now: datetime) -> list[AgentRoutingOut]:
    ids = [a.id for a in agents]
    rows = {
        r.agent_id: r for r in session.execute(select(RoutingAgent).where(RoutingAgent.agent_id.in_(ids))).scalars()
    }
    carried = {agent_id: dict(load) for agent_id, load in actions.loads(session, ids).items()}
    out = []
    for agent in agents:
        row = rows.get(agent.id)
        configured = dict(row.capacity) if row else {}
        out.append(
            AgentRoutingOut(
                agent_id=agent.id,
                name=agent.name,
                skills=list(row.skills) if row else [],
                capacity={k: capacity_for(configured, k) for k in CHANNEL_CLASSES},
                availability=row.availability if row else "available",
                presence=presence_of(row, now),
                load={k: carried.get(agent.id, {}).get(k, 0) for k in CHANNEL_CLASSES},
            )
        )
    return out


def presence_of(row: RoutingAgent | None, now: datetime) -> str:
    """Online, away or offline (an agent without a routing row has never been online)."""
    if row is None or row.online_until is None or row.online_until <= now:
        return "offline"
    return "online" if row.availability == "available" else "away"


def queue(session: Session, principal: Principal, team_id: int | None = None, limit: int = 100) -> list[QueueItemOut]:
    """Conversations waiting for an agent, in the order they will be assigned."""
    require_supervisor(principal)
    query = (
        select(ConversationRouting)
        .where(ConversationRouting.queued_at.is_not(None))
        .order_by(
            ConversationRouting.team_id,
            ConversationRouting.priority_rank,
            ConversationRouting.sla_due_at.asc().nulls_last(),
            ConversationRouting.waiting_since,
            ConversationRouting.conversation_id,
        )
        .limit(limit)
    )
    if team_id is not None:
        query = query.where(ConversationRouting.team_id == team_id)
    rows = session.execute(query).scalars().all()
    positions: dict[int | None, int] = {}
    out = []
    for row in rows:
        positions[row.team_id] = positions.get(row.team_id, 0) + 1
        out.append(
            QueueItemOut(
                position=positions[row.team_id],
                conversation_id=row.conversation_id,
                team_id=row.team_id,
                priority_rank=row.priority_rank,
                sla_due_at=row.sla_due_at,
                waiting_since=row.waiting_since,
                queued_at=row.queued_at,
                channel_class=row.channel_class,
                required_skills=list(row.required_skills or []),
                reason=row.reason,
            )
        )
    return out


# Business hours ----------------------------------------------------------------------


def list_business_hours(session: Session, now: datetime) -> list[BusinessHoursOut]:
    """Every calendar by name, whether it is open at `now` and when it next opens (any agent may read)."""
    rows = session.execute(select(BusinessHours).order_by(BusinessHours.name)).scalars().all()
    return [hours_out(row, now) for row in rows]


def hours_out(row: BusinessHours, now: datetime) -> BusinessHoursOut:
    calendar = calendars.cached(row)
    return BusinessHoursOut(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        periods=row.periods,
        holiday_country=row.holiday_country,
        holiday_subdivision=row.holiday_subdivision,
        closed_dates=list(row.closed_dates or []),
        out_of_office_message=row.out_of_office_message,
        is_default=row.is_default,
        open_now=calendar.is_open(now),
        next_open=calendar.next_open(now),
    )


# SLA policies ------------------------------------------------------------------------


def list_policies(session: Session) -> list[SlaPolicyOut]:
    """SLA policies in the order they are tried (the first whose conditions match applies; any agent may read)."""
    rows = session.execute(select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id)).scalars().all()
    return [policy_out(p) for p in rows]


def policy_out(policy: SlaPolicy) -> SlaPolicyOut:
    return SlaPolicyOut(
        id=policy.id,
        name=policy.name,
        position=policy.position,
        active=policy.active,
        conditions=SlaConditions.model_validate(policy.conditions or {}),
        first_response_seconds=policy.first_response_seconds,
        next_response_seconds=policy.next_response_seconds,
        resolution_seconds=policy.resolution_seconds,
        business_hours_id=policy.business_hours_id,
        warning_share=policy.warning_share,
    )
