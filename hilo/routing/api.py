"""Routing, presence, business hours and SLA endpoints; `install(app)` also starts the engine."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query
from sqlalchemy.orm import Session

from hilo.agents.models import Agent, Team
from hilo.conversations.access import access_conversation
from hilo.conversations.queries import Filters
from hilo.errors import ActionError, NotFound
from hilo.hours import calendars
from hilo.hours.models import BusinessHours
from hilo.http.deps import CurrentAgent, RuntimeDep
from hilo.http.schemas import ERRORS
from hilo.i18n import N_
from hilo.routing import actions, presence, queries, sla
from hilo.routing.access import require_supervisor
from hilo.routing.handlers import RoutingHandlers
from hilo.routing.models import SlaPolicy
from hilo.routing.schemas import (
    AgentRoutingIn,
    AgentRoutingOut,
    BusinessHoursIn,
    BusinessHoursOut,
    ConversationRoutingOut,
    ConversationSlaOut,
    DeadlineOut,
    ElapsedOut,
    PresenceIn,
    PresenceOut,
    QueueItemOut,
    SlaConversationList,
    SlaPolicyIn,
    SlaPolicyOut,
    TeamRoutingIn,
    TeamRoutingOut,
)

router = APIRouter(prefix="/api/v1", tags=["routing"], responses=ERRORS)


# Teams and agents --------------------------------------------------------------------


@router.get("/routing/teams", response_model=list[TeamRoutingOut])
def list_team_routing(principal: CurrentAgent, runtime: RuntimeDep) -> list[TeamRoutingOut]:
    """Every team with how it hands out conversations (unconfigured teams do not auto-assign)."""
    with runtime.db.read() as session:
        return queries.list_team_routing(session, principal)


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
        return queries.team_out(tx.session, team, row)


@router.get("/routing/agents", response_model=list[AgentRoutingOut])
def list_agent_routing(principal: CurrentAgent, runtime: RuntimeDep) -> list[AgentRoutingOut]:
    """Every active agent's skills, capacity, presence and current load."""
    with runtime.db.read() as session:
        return queries.list_agent_routing(session, principal, runtime.clock.now())


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
        return queries.agents_out(tx.session, [agent], tx.now)[0]


@router.get("/routing/queue", response_model=list[QueueItemOut])
def queue(
    principal: CurrentAgent,
    runtime: RuntimeDep,
    team_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[QueueItemOut]:
    """Conversations waiting for an agent, in the order they will be assigned."""
    with runtime.db.read() as session:
        return queries.queue(session, principal, team_id=team_id, limit=limit)


# Presence ----------------------------------------------------------------------------


@router.get("/presence", response_model=list[PresenceOut])
def list_presence(principal: CurrentAgent, runtime: RuntimeDep) -> list[PresenceOut]:
    """Who is online, away or offline."""
    with runtime.db.read() as session:
        return queries.list_presence(session, runtime.clock.now())


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


def access_business_hours(session: Session, business_hours_id: int) -> BusinessHours:
    row = session.get(BusinessHours, business_hours_id)
    if row is None:
        raise NotFound("business_hours_not_found", N_("Business hours not found."))
    return row


@router.get("/business-hours", response_model=list[BusinessHoursOut])
def list_business_hours(principal: CurrentAgent, runtime: RuntimeDep) -> list[BusinessHoursOut]:
    with runtime.db.read() as session:
        return queries.list_business_hours(session, runtime.clock.now())


@router.post("/business-hours", response_model=BusinessHoursOut, status_code=201)
def create_business_hours(body: BusinessHoursIn, principal: CurrentAgent, runtime: RuntimeDep) -> BusinessHoursOut:
    """Create a calendar: weekly periods in a time zone, public holidays of a country (and region)."""
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        row = calendars.save(tx, None, body.model_dump())
        return queries.hours_out(row, tx.now)


@router.get("/business-hours/{business_hours_id}", response_model=BusinessHoursOut)
def get_business_hours(business_hours_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> BusinessHoursOut:
    with runtime.db.read() as session:
        return queries.hours_out(access_business_hours(session, business_hours_id), runtime.clock.now())


@router.put("/business-hours/{business_hours_id}", response_model=BusinessHoursOut)
def update_business_hours(
    business_hours_id: int, body: BusinessHoursIn, principal: CurrentAgent, runtime: RuntimeDep
) -> BusinessHoursOut:
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        row = calendars.save(tx, access_business_hours(tx.session, business_hours_id), body.model_dump())
        return queries.hours_out(row, tx.now)


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


def access_policy(session: Session, policy_id: int) -> SlaPolicy:
    policy = session.get(SlaPolicy, policy_id)
    if policy is None:
        raise NotFound("sla_policy_not_found", N_("SLA policy not found."))
    return policy


@router.get("/sla-policies", response_model=list[SlaPolicyOut])
def list_policies(principal: CurrentAgent, runtime: RuntimeDep) -> list[SlaPolicyOut]:
    """SLA policies in the order they are tried (the first whose conditions match applies)."""
    with runtime.db.read() as session:
        return queries.list_policies(session)


@router.post("/sla-policies", response_model=SlaPolicyOut, status_code=201)
def create_policy(body: SlaPolicyIn, principal: CurrentAgent, runtime: RuntimeDep) -> SlaPolicyOut:
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        return queries.policy_out(sla.save_policy(tx, None, body.model_dump()))


@router.put("/sla-policies/{policy_id}", response_model=SlaPolicyOut)
def update_policy(policy_id: int, body: SlaPolicyIn, principal: CurrentAgent, runtime: RuntimeDep) -> SlaPolicyOut:
    """Change a policy; conversations already under it keep their running targets."""
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        return queries.policy_out(sla.save_policy(tx, access_policy(tx.session, policy_id), body.model_dump()))


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
        return queries.conversation_sla(session, conversation_id)


@router.get("/conversations/{conversation_id}/routing", response_model=ConversationRoutingOut)
def conversation_routing(conversation_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> ConversationRoutingOut:
    """Why the conversation went to whom: required skills, queue place and routing decisions."""
    with runtime.db.read() as session:
        access_conversation(session, principal, conversation_id)
        return queries.conversation_routing(session, conversation_id)


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
    filters = Filters(status=list(status or []), assignee=assignee, team=team, label=label)
    with runtime.db.read() as session:
        return queries.sla_conversations(session, principal, filters, list(sla_status or []), limit, cursor or 0)


def install(app: FastAPI) -> None:
    # The handlers the feature registry installed on this process's engine: they keep this
    # process's agents' presence from their websockets.
    handlers: RoutingHandlers = app.state.routing_handlers
    app.state.presence.watchers.append(handlers.watch)
    app.include_router(router)
