"""Agent, team and API-token actions."""

from __future__ import annotations

from sqlalchemy import select

from hilo.agents.models import ROLES, Agent, ApiToken, Team
from hilo.agents.passwords import hash_password, new_token
from hilo.errors import ActionError
from hilo.i18n import LOCALES, N_
from hilo.normalize import InvalidIdentity, normalize_email
from hilo.runtime import Tx

MIN_PASSWORD = 10


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ActionError("password_too_short", N_("Use a password of at least {n} characters."), 422, n=MIN_PASSWORD)


def create_agent(tx: Tx, *, email: str, name: str, password: str, role: str = "agent", locale: str = "en") -> Agent:
    try:
        email = normalize_email(email)
    except InvalidIdentity as exc:
        raise ActionError(exc.code, exc.reason, 422) from exc
    if role not in ROLES:
        raise ActionError("role_invalid", N_("Unknown role."), 422)
    if locale not in LOCALES:
        raise ActionError("locale_invalid", N_("Unknown language."), 422)
    _check_password(password)
    if tx.session.execute(select(Agent.id).where(Agent.email == email)).scalar() is not None:
        raise ActionError("agent_exists", N_("An agent with this e-mail address already exists."), 409)
    agent = Agent(
        email=email,
        name=name.strip() or email,
        password_hash=hash_password(password),
        role=role,
        locale=locale,
        active=True,
        created_at=tx.now,
        updated_at=tx.now,
    )
    tx.session.add(agent)
    tx.session.flush()
    tx.record("agent.created", data={"agent_id": agent.id, "role": role})
    return agent


def update_agent(
    tx: Tx,
    agent: Agent,
    *,
    name: str | None = None,
    role: str | None = None,
    locale: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> Agent:
    changes: dict[str, object] = {}
    if name is not None and name.strip() and name != agent.name:
        agent.name = name.strip()
        changes["name"] = agent.name
    if role is not None and role != agent.role:
        if role not in ROLES:
            raise ActionError("role_invalid", N_("Unknown role."), 422)
        agent.role = role
        changes["role"] = role
    if locale is not None and locale != agent.locale:
        if locale not in LOCALES:
            raise ActionError("locale_invalid", N_("Unknown language."), 422)
        agent.locale = locale
        changes["locale"] = locale
    if active is not None and active != agent.active:
        agent.active = active
        changes["active"] = active
    if password is not None:
        _check_password(password)
        agent.password_hash = hash_password(password)
        changes["password"] = "changed"  # noqa: S105 (the event says that, never the value)
    if changes:
        agent.updated_at = tx.now
        tx.session.flush()
        tx.record("agent.updated", data={"agent_id": agent.id, "changes": changes})
        tx.deferred.append(tx.runtime.forget_principals)
    return agent


def create_token(tx: Tx, agent: Agent, name: str) -> tuple[ApiToken, str]:
    token, digest, prefix = new_token()
    row = ApiToken(agent_id=agent.id, name=name.strip() or "token", token_hash=digest, prefix=prefix, created_at=tx.now)
    tx.session.add(row)
    tx.session.flush()
    tx.record("token.created", data={"agent_id": agent.id, "token_id": row.id, "prefix": prefix})
    return row, token


def revoke_token(tx: Tx, agent_id: int, token_id: int) -> ApiToken:
    """Revoke one of an agent's API tokens; requests with it are refused from now on."""
    row = tx.session.get(ApiToken, token_id)
    if row is None or row.agent_id != agent_id:
        raise ActionError("not_found", N_("No such token."), 404)
    if row.revoked_at is None:
        row.revoked_at = tx.now
        tx.record("token.revoked", data={"agent_id": agent_id, "token_id": row.id, "prefix": row.prefix})
        tx.deferred.append(tx.runtime.forget_principals)
    return row


def create_team(tx: Tx, name: str, description: str | None = None, member_ids: list[int] | None = None) -> Team:
    name = name.strip()
    if not name:
        raise ActionError("name_required", N_("Give the team a name."), 422)
    if tx.session.execute(select(Team.id).where(Team.name == name)).scalar() is not None:
        raise ActionError("team_exists", N_("A team with this name already exists."), 409)
    team = Team(name=name, description=description, created_at=tx.now)
    tx.session.add(team)
    tx.session.flush()
    if member_ids is not None:
        set_team_members(tx, team, member_ids)
    tx.record("team.created", data={"team_id": team.id})
    return team


def set_team_members(tx: Tx, team: Team, member_ids: list[int]) -> Team:
    agents = tx.session.execute(select(Agent).where(Agent.id.in_(member_ids))).scalars().all()
    if len(agents) != len(set(member_ids)):
        raise ActionError("agent_not_found", N_("Agent not found."), 422)
    team.members = list(agents)
    tx.session.flush()
    tx.record("team.members_changed", data={"team_id": team.id, "member_ids": sorted(member_ids)})
    tx.deferred.append(tx.runtime.forget_principals)
    return team
