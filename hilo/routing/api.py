"""Routing, presence, business hours and SLA endpoints; `install(app)` also starts the engine."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hilo.agents.models import Agent, Team
from hilo.conversations.access import access_conversation
from hilo.conversations.models import Conversation, ConversationSla
from hilo.conversations.queries import Filters, list_query
from hilo.errors import ActionError, NotFound
from hilo.events.models import Event
from hilo.hours import calendars
from hilo.hours.models import BusinessHours
from hilo.http.deps import CurrentAgent, RuntimeDep
from hilo.http.schemas import ERRORS, ConversationOut, serialize_conversations
from hilo.i18n import N_
from hilo.routing import actions, presence, sla
from hilo.routing.access import require_supervisor
from hilo.routing.capacity import CHANNEL_CLASSES, capacity_for
from hilo.routing.handlers import RoutingHandlers
from hilo.routing.models import (
    ConversationRouting,
    RoutingAgent,
    RoutingTeam,
    SlaPolicy,
    SlaTimer,
)

router = APIRouter(prefix="/api/v1", tags=["routing"], responses=ERRORS)

SLA_EVENTS = ("sla.applied", "sla.warning", "sla.breached", "sla.met")
EVENTS_SHOWN = 100

Strategy = Literal["round_robin", "least_loaded", "skills"]
Locale = Literal["en", "es"]
ChannelClass = Literal["call", "chat", "email"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class TeamRoutingIn(BaseModel):
    strategy: Strategy = "round_robin"
    auto_assign: bool = True
    reassign_when_offline: bool = False
    business_hours_id: int | None = None


class TeamRoutingOut(BaseModel):
    team_id: int
    name: str
    configured: bool
    strategy: str
    auto_assign: bool
    reassign_when_offline: bool
    business_hours_id: int | None
    queued: int


class AgentRoutingIn(BaseModel):
    skills: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=50)
    capacity: dict[ChannelClass, Annotated[int, Field(ge=0, le=1000)]] | None = None


class AgentRoutingOut(BaseModel):
    agent_id: int
    name: str
    skills: list[str]
    capacity: dict[str, int]
    availability: str
    presence: str
    load: dict[str, int]


class PresenceIn(BaseModel):
    availability: Literal["available", "away"]


class PresenceOut(BaseModel):
    agent_id: int
    name: str
    availability: str
    presence: str


class BusinessHoursIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    timezone: str = Field(max_length=64)
    periods: dict[Weekday, list[tuple[str, str]]]
    holiday_country: str | None = Field(default=None, max_length=8)
    holiday_subdivision: str | None = Field(default=None, max_length=16)
    closed_dates: list[date] = Field(default_factory=list, max_length=1000)
    out_of_office_message: dict[Locale, Annotated[str, Field(max_length=4000)]] | None = None
    is_default: bool = False


class BusinessHoursOut(BaseModel):
    id: int
    name: str
    timezone: str
    periods: dict[str, list[list[str]]]
    holiday_country: str | None
    holiday_subdivision: str | None
    closed_dates: list[str]
    out_of_office_message: dict[str, str] | None
    is_default: bool
    open_now: bool
    next_open: datetime


class SlaConditions(BaseModel):
    priorities: list[Literal["none", "low", "medium", "high", "urgent"]] = Field(default_factory=list)
    channel_kinds: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list)
    team_ids: list[int] = Field(default_factory=list)
    contact_attributes: dict[str, Any] = Field(default_factory=dict)


class SlaPolicyIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    # These columns are 32-bit integers.
    position: int = Field(default=0, ge=-(2**31), le=2**31 - 1)
    active: bool = True
    conditions: SlaConditions = Field(default_factory=SlaConditions)
    first_response_seconds: int | None = Field(default=None, ge=1, le=2**31 - 1)
    next_response_seconds: int | None = Field(default=None, ge=1, le=2**31 - 1)
    resolution_seconds: int | None = Field(default=None, ge=1, le=2**31 - 1)
    business_hours_id: int | None = None
    warning_share: float = Field(default=0.8, gt=0, le=1)


class SlaPolicyOut(SlaPolicyIn):
    id: int


class TimerOut(BaseModel):
    kind: str
    state: str
    target_seconds: int
    consumed_seconds: float
    started_at: datetime
    due_at: datetime | None
    warn_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None
    stopped_at: datetime | None
    business_hours_id: int | None


class EventOut(BaseModel):
    id: int
    kind: str
    data: dict[str, Any]
    created_at: datetime


class ConversationSlaOut(BaseModel):
    conversation_id: int
    policy_id: int | None
    status: str | None
    due_at: datetime | None
    due_kind: str | None
    timers: list[TimerOut]
    events: list[EventOut]


class ConversationRoutingOut(BaseModel):
    conversation_id: int
    required_skills: list[str]
    queued: bool
    queue_reason: str | None
    decisions: list[EventOut]


class SlaSummary(BaseModel):
    status: str | None
    due_at: datetime | None
    due_kind: str | None


class SlaConversationOut(ConversationOut):
    sla: SlaSummary


class SlaConversationList(BaseModel):
    items: list[SlaConversationOut]
    next_cursor: str | None


class QueueItemOut(BaseModel):
    position: int
    conversation_id: int
    team_id: int | None
    priority_rank: int
    sla_due_at: datetime | None
    waiting_since: datetime | None
    queued_at: datetime | None
    channel_class: str
    required_skills: list[str]
    reason: str | None


class DeadlineOut(BaseModel):
    start: datetime
    seconds: float
    due: datetime


class ElapsedOut(BaseModel):
    start: datetime
    end: datetime
    seconds: float


# Teams and agents --------------------------------------------------------------------


def _team_out(session: Session, team: Team, row: RoutingTeam | None) -> TeamRoutingOut:
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


@router.get("/routing/teams", response_model=list[TeamRoutingOut])
def list_team_routing(principal: CurrentAgent, runtime: RuntimeDep) -> list[TeamRoutingOut]:
    """Every team with how it hands out conversations (unconfigured teams do not auto-assign)."""
    require_supervisor(principal)
    with runtime.db.read() as session:
        rows = {r.team_id: r for r in session.execute(select(RoutingTeam)).scalars()}
        teams = session.execute(select(Team).order_by(Team.name)).scalars().all()
        return [_team_out(session, team, rows.get(team.id)) for team in teams]


@router.put("/routing/teams/{team_id}", response_model=TeamRoutingOut)
def save_team_routing(
    team_id: int, body: TeamRoutingIn, principal: CurrentAgent, runtime: RuntimeDep
) -> TeamRoutingOut:
    """Choose a team's strategy, whether it auto-assigns, re-assigns on offline, and its calendar."""
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        row = actions.save_team(
            tx,
            team_id,
            strategy=body.strategy,
            auto_assign=body.auto_assign,
            reassign_when_offline=body.reassign_when_offline,
            business_hours_id=body.business_hours_id,
        )
        team = tx.session.get(Team, team_id)
        assert team is not None
        return _team_out(tx.session, team, row)


def _agents_out(session: Session, agents: list[Agent], now: datetime) -> list[AgentRoutingOut]:
    ids = [a.id for a in agents]
    rows = {
        r.agent_id: r for r in session.execute(select(RoutingAgent).where(RoutingAgent.agent_id.in_(ids))).scalars()
    }
    carried = _loads(session, ids)
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
                presence=_presence(row, now),
                load={k: carried.get(agent.id, {}).get(k, 0) for k in CHANNEL_CLASSES},
            )
        )
    return out


def _loads(session: Session, ids: list[int]) -> dict[int, dict[str, int]]:
    return {agent_id: dict(load) for agent_id, load in actions.loads(session, ids).items()}


def _presence(row: RoutingAgent | None, now: datetime) -> str:
    if row is None or row.online_until is None or row.online_until <= now:
        return "offline"
    return "online" if row.availability == "available" else "away"


@router.get("/routing/agents", response_model=list[AgentRoutingOut])
def list_agent_routing(principal: CurrentAgent, runtime: RuntimeDep) -> list[AgentRoutingOut]:
    """Every active agent's skills, capacity, presence and current load."""
    require_supervisor(principal)
    with runtime.db.read() as session:
        agents = list(session.execute(select(Agent).where(Agent.active.is_(True)).order_by(Agent.name)).scalars())
        return _agents_out(session, agents, runtime.clock.now())


@router.put("/routing/agents/{agent_id}", response_model=AgentRoutingOut)
def save_agent_routing(
    agent_id: int, body: AgentRoutingIn, principal: CurrentAgent, runtime: RuntimeDep
) -> AgentRoutingOut:
    """Set an agent's skills and capacity per kind of channel (call, chat, email)."""
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        actions.save_agent(
            tx,
            agent_id,
            skills=body.skills,
            capacity={str(k): v for k, v in body.capacity.items()} if body.capacity is not None else None,
        )
        agent = tx.session.get(Agent, agent_id)
        assert agent is not None
        return _agents_out(tx.session, [agent], tx.now)[0]


@router.get("/routing/queue", response_model=list[QueueItemOut])
def queue(
    principal: CurrentAgent,
    runtime: RuntimeDep,
    team_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[QueueItemOut]:
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
    with runtime.db.read() as session:
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


# Presence ----------------------------------------------------------------------------


@router.get("/presence", response_model=list[PresenceOut])
def list_presence(principal: CurrentAgent, runtime: RuntimeDep) -> list[PresenceOut]:
    """Who is online, away or offline."""
    now = runtime.clock.now()
    with runtime.db.read() as session:
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
                presence=_presence(row, now),
            )
            for agent, row in rows
        ]


@router.put("/presence/me", response_model=PresenceOut)
def set_my_presence(body: PresenceIn, principal: CurrentAgent, runtime: RuntimeDep) -> PresenceOut:
    """Set yourself away (no new conversations) or available again."""
    with runtime.transaction(principal.id) as tx:
        row = presence.set_availability(tx, principal.id, body.availability)
        return PresenceOut(
            agent_id=principal.id,
            name=principal.name,
            availability=row.availability,
            presence=presence.effective(row, tx),
        )


# Business hours ----------------------------------------------------------------------


def _hours_out(row: BusinessHours, now: datetime) -> BusinessHoursOut:
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


def access_business_hours(session: Session, business_hours_id: int) -> BusinessHours:
    row = session.get(BusinessHours, business_hours_id)
    if row is None:
        raise NotFound("business_hours_not_found", N_("Business hours not found."))
    return row


@router.get("/business-hours", response_model=list[BusinessHoursOut])
def list_business_hours(principal: CurrentAgent, runtime: RuntimeDep) -> list[BusinessHoursOut]:
    now = runtime.clock.now()
    with runtime.db.read() as session:
        rows = session.execute(select(BusinessHours).order_by(BusinessHours.name)).scalars().all()
        return [_hours_out(row, now) for row in rows]


@router.post("/business-hours", response_model=BusinessHoursOut, status_code=201)
def create_business_hours(body: BusinessHoursIn, principal: CurrentAgent, runtime: RuntimeDep) -> BusinessHoursOut:
    """Create a calendar: weekly periods in a time zone, public holidays of a country (and region)."""
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        row = calendars.save(tx, None, body.model_dump())
        return _hours_out(row, tx.now)


@router.get("/business-hours/{business_hours_id}", response_model=BusinessHoursOut)
def get_business_hours(business_hours_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> BusinessHoursOut:
    with runtime.db.read() as session:
        return _hours_out(access_business_hours(session, business_hours_id), runtime.clock.now())


@router.put("/business-hours/{business_hours_id}", response_model=BusinessHoursOut)
def update_business_hours(
    business_hours_id: int, body: BusinessHoursIn, principal: CurrentAgent, runtime: RuntimeDep
) -> BusinessHoursOut:
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        row = calendars.save(tx, access_business_hours(tx.session, business_hours_id), body.model_dump())
        return _hours_out(row, tx.now)


@router.delete("/business-hours/{business_hours_id}", status_code=204)
def delete_business_hours(business_hours_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> None:
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        calendars.remove(tx, access_business_hours(tx.session, business_hours_id))


@router.get("/business-hours/{business_hours_id}/deadline", response_model=DeadlineOut)
def business_deadline(
    business_hours_id: int,
    principal: CurrentAgent,
    runtime: RuntimeDep,
    start: datetime,
    seconds: Annotated[float, Query(ge=0, le=10 * 365 * 86400)],
) -> DeadlineOut:
    """When `seconds` of business time have passed since `start` (what an SLA target does)."""
    when = _aware(start)
    with runtime.db.read() as session:
        calendar = calendars.cached(access_business_hours(session, business_hours_id))
    return DeadlineOut(start=when, seconds=seconds, due=calendar.add(when, seconds))


@router.get("/business-hours/{business_hours_id}/elapsed", response_model=ElapsedOut)
def business_elapsed(
    business_hours_id: int, principal: CurrentAgent, runtime: RuntimeDep, start: datetime, end: datetime
) -> ElapsedOut:
    """Business time between two instants."""
    begin, finish = _aware(start), _aware(end)
    if (finish - begin).days > 3660:
        raise ActionError("range_too_long", N_("Choose a range of at most ten years."), 422)
    with runtime.db.read() as session:
        calendar = calendars.cached(access_business_hours(session, business_hours_id))
    return ElapsedOut(start=begin, end=finish, seconds=calendar.diff(begin, finish))


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ActionError(
            "timezone_required", N_("Give times with a time zone offset, e.g. 2026-03-02T09:00:00Z."), 422
        )
    return value


# SLA policies ------------------------------------------------------------------------


def _policy_out(policy: SlaPolicy) -> SlaPolicyOut:
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


def access_policy(session: Session, policy_id: int) -> SlaPolicy:
    policy = session.get(SlaPolicy, policy_id)
    if policy is None:
        raise NotFound("sla_policy_not_found", N_("SLA policy not found."))
    return policy


@router.get("/sla-policies", response_model=list[SlaPolicyOut])
def list_policies(principal: CurrentAgent, runtime: RuntimeDep) -> list[SlaPolicyOut]:
    """SLA policies in the order they are tried (the first whose conditions match applies)."""
    with runtime.db.read() as session:
        rows = session.execute(select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id)).scalars().all()
        return [_policy_out(p) for p in rows]


@router.post("/sla-policies", response_model=SlaPolicyOut, status_code=201)
def create_policy(body: SlaPolicyIn, principal: CurrentAgent, runtime: RuntimeDep) -> SlaPolicyOut:
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        return _policy_out(sla.save_policy(tx, None, body.model_dump()))


@router.put("/sla-policies/{policy_id}", response_model=SlaPolicyOut)
def update_policy(policy_id: int, body: SlaPolicyIn, principal: CurrentAgent, runtime: RuntimeDep) -> SlaPolicyOut:
    """Change a policy; conversations already under it keep their running targets."""
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        return _policy_out(sla.save_policy(tx, access_policy(tx.session, policy_id), body.model_dump()))


@router.delete("/sla-policies/{policy_id}", status_code=204)
def delete_policy(policy_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> None:
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        sla.delete_policy(tx, access_policy(tx.session, policy_id))


# SLA on conversations ----------------------------------------------------------------


@router.get("/conversations/{conversation_id}/sla", response_model=ConversationSlaOut)
def conversation_sla(conversation_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> ConversationSlaOut:
    """The conversation's SLA status, nearest due time and every target's timer."""
    with runtime.db.read() as session:
        access_conversation(session, principal, conversation_id)
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


def _events(session: Session, conversation_id: int, kinds: tuple[str, ...]) -> list[EventOut]:
    rows = session.execute(
        select(Event)
        .where(Event.conversation_id == conversation_id, Event.kind.in_(kinds))
        .order_by(Event.id.desc())
        .limit(EVENTS_SHOWN)
    ).scalars()
    return [EventOut.model_validate(e, from_attributes=True) for e in reversed(list(rows))]


@router.get("/conversations/{conversation_id}/routing", response_model=ConversationRoutingOut)
def conversation_routing(conversation_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> ConversationRoutingOut:
    """Why the conversation went to whom: required skills, queue place and routing decisions."""
    with runtime.db.read() as session:
        access_conversation(session, principal, conversation_id)
        row = session.get(ConversationRouting, conversation_id)
        return ConversationRoutingOut(
            conversation_id=conversation_id,
            required_skills=list(row.required_skills or []) if row else [],
            queued=bool(row and row.queued_at is not None),
            queue_reason=row.reason if row else None,
            decisions=_events(session, conversation_id, ("routing.decision",)),
        )


@router.get("/sla/conversations", response_model=SlaConversationList)
def sla_conversations(
    principal: CurrentAgent,
    runtime: RuntimeDep,
    status: Annotated[list[Literal["open", "pending", "snoozed", "resolved"]] | None, Query()] = None,
    sla_status: Annotated[list[Literal["on_track", "warning", "breached", "paused", "met"]] | None, Query()] = None,
    assignee: Annotated[str | None, Query(description="an agent id, 'me' or 'none'")] = None,
    team: Annotated[str | None, Query(description="a team id or 'none'")] = None,
    label: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[int | None, Query(ge=0, description="offset from the previous page")] = None,
) -> SlaConversationList:
    """The inbox sorted by SLA due time, soonest (or most overdue) first; the same filters
    and visibility as /conversations. Conversations without a running target come last."""
    query = list_query(principal, Filters(status=list(status or []), assignee=assignee, team=team, label=label))
    query = query.outerjoin(ConversationSla, ConversationSla.conversation_id == Conversation.id)
    if sla_status:
        query = query.where(ConversationSla.status.in_(sla_status))
    query = query.add_columns(ConversationSla.status, ConversationSla.due_at, ConversationSla.due_kind).order_by(
        ConversationSla.due_at.asc().nulls_last(), Conversation.id
    )
    offset = cursor or 0
    with runtime.db.read() as session:
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


def install(app: FastAPI) -> None:
    # The handlers the feature registry installed on this process's engine: they keep this
    # process's agents' presence from their websockets.
    handlers: RoutingHandlers = app.state.routing_handlers
    app.state.presence.watchers.append(handlers.watch)
    app.include_router(router)
