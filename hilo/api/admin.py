"""Channel accounts, agents and teams. Changes are for administrators only."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from hilo.agents import actions as agent_actions
from hilo.agents import two_factor
from hilo.agents.access import Principal, require_admin
from hilo.agents.audit import AUDIT_PAGE, audit_events
from hilo.agents.invitations import invite_agent, pending_invitations, revoke_invitation
from hilo.agents.models import Agent, Invitation, Team
from hilo.channels import actions as channel_actions
from hilo.channels.access import access_channel
from hilo.channels.addresses import channel_urls
from hilo.channels.models import ChannelAccount
from hilo.channels.setup import missing_settings
from hilo.conversations import actions as conversation_actions
from hilo.errors import NotFound
from hilo.events.models import Event
from hilo.http.deps import CurrentAgent, RuntimeDep
from hilo.http.schemas import ERRORS
from hilo.i18n import N_

router = APIRouter(prefix="/api/v1", tags=["administration"], responses=ERRORS)


class ChannelIn(BaseModel):
    kind: str = Field(max_length=32)
    name: str = Field(max_length=255)
    settings: dict[str, Any] = Field(default_factory=dict)


class ChannelPatch(BaseModel):
    name: str | None = Field(default=None, max_length=255)
    settings: dict[str, Any] | None = None
    enabled: bool | None = None


class AgentIn(BaseModel):
    email: str = Field(max_length=320)
    name: str = Field(max_length=255)
    password: str = Field(max_length=1024)
    role: Literal["admin", "supervisor", "agent"] = "agent"
    locale: Literal["en", "es"] = "en"


class InvitationIn(BaseModel):
    email: str = Field(max_length=320)
    name: str = Field(default="", max_length=255)
    role: Literal["admin", "supervisor", "agent"] = "agent"
    locale: Literal["en", "es"] = "en"


class AgentPatch(BaseModel):
    name: str | None = Field(default=None, max_length=255)
    role: Literal["admin", "supervisor", "agent"] | None = None
    locale: Literal["en", "es"] | None = None
    active: bool | None = None
    password: str | None = Field(default=None, max_length=1024)
    # On deactivation: leave the agent's open conversations assigned, or unassign them.
    conversations: Literal["keep", "unassign"] = "keep"


class TeamIn(BaseModel):
    name: str = Field(max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    member_ids: list[int] | None = None


class TeamPatch(BaseModel):
    member_ids: list[int]


def channel_addresses(base_url: str, account: ChannelAccount) -> dict[str, str]:
    return channel_urls(base_url, account.kind, account.id, account.config)


def channel_payload(account: ChannelAccount, principal: Principal, base_url: str) -> dict[str, Any]:
    payload: dict[str, Any] = {"id": account.id, "kind": account.kind, "name": account.name, "enabled": account.enabled}
    if principal.role == "admin":
        payload.update(
            config=account.config,
            secrets_set=sorted(account.secrets or {}),
            # Required settings still empty (a channel saved before they were required).
            missing_settings=missing_settings(account.kind, {**(account.config or {}), **(account.secrets or {})}),
            **channel_addresses(base_url, account),
            created_at=account.created_at,
            updated_at=account.updated_at,
        )
    return payload


@router.get("/channels", tags=["channels"])
def list_channels(principal: CurrentAgent, runtime: RuntimeDep) -> list[dict[str, Any]]:
    """Channel accounts; administrators also see their settings (never secret values)."""
    with runtime.db.read() as session:
        rows = session.execute(select(ChannelAccount).order_by(ChannelAccount.id)).scalars().all()
        return [channel_payload(a, principal, runtime.settings.base_url) for a in rows]


@router.post("/channels", tags=["channels"], status_code=201)
def create_channel(body: ChannelIn, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    require_admin(principal)
    with runtime.transaction(principal.id) as tx:
        account = channel_actions.create_channel_account(tx, body.kind, body.name, body.settings)
        payload = channel_payload(account, principal, runtime.settings.base_url)
        if account.kind == "api":
            # The generated signing secret is shown once, at creation.
            payload["secret"] = account.secrets["secret"]
        return payload


@router.get("/channels/{account_id}", tags=["channels"])
def get_channel(account_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.db.read() as session:
        return channel_payload(access_channel(session, principal, account_id), principal, runtime.settings.base_url)


@router.patch("/channels/{account_id}", tags=["channels"])
def update_channel(
    account_id: int, body: ChannelPatch, request: Request, principal: CurrentAgent, runtime: RuntimeDep
) -> dict[str, Any]:
    """Rename, configure, enable or disable a channel account; takes effect at once."""
    require_admin(principal)
    with runtime.transaction(principal.id) as tx:
        account = access_channel(tx.session, principal, account_id)
        channel_actions.configure_channel_account(
            tx, account, name=body.name, values=body.settings, enabled=body.enabled
        )
        request.app.state.channel_cache.clear()
        return channel_payload(account, principal, runtime.settings.base_url)


def agent_payload(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "email": agent.email,
        "name": agent.name,
        "role": agent.role,
        "locale": agent.locale,
        "active": agent.active,
        "team_ids": [t.id for t in agent.teams],
    }


@router.get("/agents", tags=["agents"])
def list_agents(principal: CurrentAgent, runtime: RuntimeDep) -> list[dict[str, Any]]:
    """Every agent (names are needed to assign and mention); only admins change them."""
    with runtime.db.read() as session:
        rows = session.execute(select(Agent).options(selectinload(Agent.teams)).order_by(Agent.name)).scalars().all()
        return [agent_payload(a) for a in rows]


@router.post("/agents", tags=["agents"], status_code=201)
def create_agent(body: AgentIn, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    require_admin(principal)
    with runtime.transaction(principal.id) as tx:
        agent = agent_actions.create_agent(
            tx, email=body.email, name=body.name, password=body.password, role=body.role, locale=body.locale
        )
        return agent_payload(agent)


def invitation_payload(row: Invitation) -> dict[str, Any]:
    return {
        "id": row.id,
        "email": row.email,
        "name": row.name,
        "role": row.role,
        "locale": row.locale,
        "invited_by_id": row.invited_by_id,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
    }


@router.post("/agents/invitations", tags=["agents"], status_code=201)
def invite(body: InvitationIn, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    """Invite someone by e-mail to become an agent: a link, valid for 7 days and once, to choose a password.

    Without a mail server (HILO_SMTP_URL) nothing is sent: `mailed` is false and `link` is
    the link for the admin to pass on (it is returned only then). A new invitation to the same
    address replaces the earlier one.
    """
    require_admin(principal)
    with runtime.transaction(principal.id) as tx:
        inviter = tx.session.get(Agent, principal.id)
        assert inviter is not None
        invited = invite_agent(tx, inviter, email=body.email, name=body.name, role=body.role, locale=body.locale)
        return invitation_payload(invited.invitation) | {
            "mailed": invited.mailed,
            "link": None if invited.mailed else invited.link,
        }


@router.get("/agents/invitations", tags=["agents"])
def list_invitations(principal: CurrentAgent, runtime: RuntimeDep) -> list[dict[str, Any]]:
    """Invitations not yet accepted, withdrawn or expired, newest first."""
    require_admin(principal)
    with runtime.db.read() as session:
        return [invitation_payload(row) for row in pending_invitations(session, runtime.clock.now())]


@router.delete("/agents/invitations/{invitation_id}", tags=["agents"], status_code=204)
def withdraw_invitation(invitation_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> None:
    """Withdraw a pending invitation: its link stops working."""
    require_admin(principal)
    with runtime.transaction(principal.id) as tx:
        revoke_invitation(tx, invitation_id)


class AccountSettingsIn(BaseModel):
    require_two_factor: bool


@router.get("/admin/account-settings", tags=["administration"])
def get_account_settings(principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, bool]:
    """The organisation's sign-in rules."""
    require_admin(principal)
    with runtime.db.read() as session:
        return {"require_two_factor": two_factor.required(session)}


@router.put("/admin/account-settings", tags=["administration"])
def put_account_settings(body: AccountSettingsIn, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, bool]:
    """Require two-factor sign-in of every agent: those without it are sent to set it up after signing in."""
    require_admin(principal)
    with runtime.transaction(principal.id) as tx:
        row = two_factor.set_required(tx, body.require_two_factor)
        return {"require_two_factor": row.require_two_factor}


@router.patch("/agents/{agent_id}", tags=["agents"])
def update_agent(agent_id: int, body: AgentPatch, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    require_admin(principal)
    with runtime.transaction(principal.id) as tx:
        agent = tx.session.get(Agent, agent_id)
        if agent is None:
            raise NotFound("agent_not_found", N_("Agent not found."))
        deactivating = body.active is False and agent.active
        agent_actions.update_agent(
            tx,
            agent,
            name=body.name,
            role=body.role,
            locale=body.locale,
            active=body.active,
            password=body.password,
            conversations=body.conversations,
        )
        if deactivating and body.conversations == "unassign":
            conversation_actions.unassign_all(tx, agent.id)
        return agent_payload(agent)


@router.delete("/agents/{agent_id}/sessions", tags=["agents"])
def revoke_agent_sessions(agent_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, int]:
    """Sign an agent out everywhere: every browser session of theirs ends at once."""
    require_admin(principal)
    with runtime.transaction(principal.id) as tx:
        if tx.session.get(Agent, agent_id) is None:
            raise NotFound("agent_not_found", N_("Agent not found."))
        return {"revoked": agent_actions.revoke_sessions(tx, agent_id, reason="revoked_by_admin")}


def team_payload(team: Team) -> dict[str, Any]:
    return {
        "id": team.id,
        "name": team.name,
        "description": team.description,
        "member_ids": [m.id for m in team.members],
    }


@router.get("/teams", tags=["teams"])
def list_teams(principal: CurrentAgent, runtime: RuntimeDep) -> list[dict[str, Any]]:
    with runtime.db.read() as session:
        rows = session.execute(select(Team).options(selectinload(Team.members)).order_by(Team.name)).scalars().all()
        return [team_payload(t) for t in rows]


@router.post("/teams", tags=["teams"], status_code=201)
def create_team(body: TeamIn, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    require_admin(principal)
    with runtime.transaction(principal.id) as tx:
        team = agent_actions.create_team(tx, body.name, body.description, body.member_ids)
        return team_payload(team)


@router.put("/teams/{team_id}/members", tags=["teams"])
def set_members(team_id: int, body: TeamPatch, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    require_admin(principal)
    with runtime.transaction(principal.id) as tx:
        team = tx.session.get(Team, team_id)
        if team is None:
            raise NotFound("team_not_found", N_("Team not found."))
        agent_actions.set_team_members(tx, team, body.member_ids)
        return team_payload(team)


def audit_payload(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind,
        "actor_agent_id": event.actor_agent_id,
        "data": event.data,
        "created_at": event.created_at,
    }


@router.get("/admin/audit", tags=["administration"])
def list_audit(
    principal: CurrentAgent,
    runtime: RuntimeDep,
    kind: str | None = None,
    agent_id: int | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
    limit: int = Query(default=AUDIT_PAGE, ge=1, le=200),
) -> dict[str, Any]:
    """Security events (sign-ins, passwords, roles, deactivations, tokens, sessions, channel secrets), newest first.

    `agent_id` matches events by or about that agent; page with `next_cursor`.
    """
    require_admin(principal)
    with runtime.db.read() as session:
        page = audit_events(session, kind=kind, agent_id=agent_id, since=since, cursor=cursor, limit=limit)
        return {"items": [audit_payload(e) for e in page.items], "next_cursor": page.next_cursor}
