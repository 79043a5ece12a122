"""Routing's reads shared by its engine, automation, its REST routes and the pages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hilo.agents.access import Principal
from hilo.agents.models import Agent, Team
from hilo.channels.models import ChannelAccount
from hilo.conversations.models import Conversation, ConversationSla
from hilo.conversations.queries import Filters, list_query
from hilo.events.models import Event
from hilo.hours import calendars
from hilo.hours.models import BusinessHours
from hilo.http.schemas import serialize_conversations
from hilo.routing import actions
from hilo.routing.access import require_supervisor
from hilo.routing.capacity import CHANNEL_CLASSES, capacity_for, channel_class
from hilo.routing.models import ConversationRouting, RoutingAgent, RoutingTeam, SlaPolicy, SlaTimer
from hilo.routing.schemas import (
    AgentRoutingOut,
    BusinessHoursOut,
    ConversationRoutingOut,
    ConversationSlaOut,
    EventOut,
    PresenceOut,
    QueueItemOut,
    SlaConditions,
    SlaConversationList,
    SlaConversationOut,
    SlaPolicyOut,
    SlaSummary,
    TeamRoutingOut,
    TimerOut,
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


# Presence and a conversation's SLA and routing -------------------------------------

SLA_EVENTS = ("sla.applied", "sla.warning", "sla.breached", "sla.met")
EVENTS_SHOWN = 100


def list_presence(session: Session, now: datetime) -> list[PresenceOut]:
    """Who is online, away or offline (active agents, by name)."""
    rows = session.execute(
        select(Agent, RoutingAgent)
        .outerjoin(RoutingAgent, RoutingAgent.agent_id == Agent.id)
        .where(Agent.active.is_(True))
        .order_by(Agent.name)
    ).all()
    return [
        PresenceOut(
            agent_id=agent.id,
            name=agent.name,
            availability=row.availability if row else "available",
            presence=presence_of(row, now),
        )
        for agent, row in rows
    ]


def conversation_sla(session: Session, conversation_id: int) -> ConversationSlaOut:
    """The conversation's SLA status, nearest due time, every target's timer and recent SLA events."""
    summary = session.get(ConversationSla, conversation_id)
    timers = session.execute(
        select(SlaTimer).where(SlaTimer.conversation_id == conversation_id).order_by(SlaTimer.id)
    ).scalars()
    return ConversationSlaOut(
        conversation_id=conversation_id,
        policy_id=summary.policy_id if summary else None,
        status=summary.status if summary else None,
        due_at=summary.due_at if summary else None,
        due_kind=summary.due_kind if summary else None,
        timers=[TimerOut.model_validate(t, from_attributes=True) for t in timers],
        events=_events(session, conversation_id, SLA_EVENTS),
    )


def conversation_routing(session: Session, conversation_id: int) -> ConversationRoutingOut:
    """Why the conversation went to whom: required skills, queue place and routing decisions."""
    row = session.get(ConversationRouting, conversation_id)
    return ConversationRoutingOut(
        conversation_id=conversation_id,
        required_skills=list(row.required_skills or []) if row else [],
        queued=bool(row and row.queued_at is not None),
        queue_reason=row.reason if row else None,
        decisions=_events(session, conversation_id, ("routing.decision",)),
    )


def _events(session: Session, conversation_id: int, kinds: tuple[str, ...]) -> list[EventOut]:
    rows = session.execute(
        select(Event)
        .where(Event.conversation_id == conversation_id, Event.kind.in_(kinds))
        .order_by(Event.id.desc())
        .limit(EVENTS_SHOWN)
    ).scalars()
    return [EventOut.model_validate(e, from_attributes=True) for e in reversed(list(rows))]


def sla_conversations(
    session: Session, principal: Principal, filters: Filters, sla_status: list[str], limit: int, offset: int
) -> SlaConversationList:
    """The inbox sorted by SLA due time, soonest (or most overdue) first, with the inbox's filters
    and visibility; conversations without a running target come last."""
    query = list_query(principal, filters)
    query = query.outerjoin(ConversationSla, ConversationSla.conversation_id == Conversation.id)
    if sla_status:
        query = query.where(ConversationSla.status.in_(sla_status))
    query = query.add_columns(ConversationSla.status, ConversationSla.due_at, ConversationSla.due_kind).order_by(
        ConversationSla.due_at.asc().nulls_last(), Conversation.id
    )
    rows = session.execute(query.offset(offset).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = serialize_conversations(session, [row[0] for row in rows])
    out = [
        SlaConversationOut(
            **item.model_dump(), sla=SlaSummary(status=row.status, due_at=row.due_at, due_kind=row.due_kind)
        )
        for item, row in zip(items, rows, strict=True)
    ]
    return SlaConversationList(items=out, next_cursor=str(offset + limit) if more else None)
