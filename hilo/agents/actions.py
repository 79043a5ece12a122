"""Agent, team, API-token and sign-in session actions."""

from __future__ import annotations

import secrets
from typing import Literal

from sqlalchemy import select, update

from hilo.agents.models import ROLES, Agent, AgentSession, ApiToken, Team
from hilo.agents.passwords import hash_password, new_token, token_hash, verify_password
from hilo.errors import ActionError
from hilo.i18n import LOCALES, N_
from hilo.normalize import InvalidIdentity, normalize_email
from hilo.runtime import Tx

MIN_PASSWORD = 10
USER_AGENT_LENGTH = 255
OnDeactivate = Literal["keep", "unassign"]


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
    conversations: OnDeactivate = "keep",
) -> Agent:
    """Change an agent's profile, role, password or activity.

    A new password ends every sign-in session of the agent (the caller's own session is
    kept by `change_own_password`); deactivation is `deactivate_agent`.
    """
    changes: dict[str, object] = {}
    if name is not None and name.strip() and name != agent.name:
        agent.name = name.strip()
        changes["name"] = agent.name
    if role is not None and role != agent.role:
        if role not in ROLES:
            raise ActionError("role_invalid", N_("Unknown role."), 422)
        tx.record("agent.role_changed", data={"agent_id": agent.id, "role": [agent.role, role]})
        agent.role = role
        changes["role"] = role
    if locale is not None and locale != agent.locale:
        if locale not in LOCALES:
            raise ActionError("locale_invalid", N_("Unknown language."), 422)
        agent.locale = locale
        changes["locale"] = locale
    if active is not None and active != agent.active:
        if active:
            agent.active = True
            tx.record("agent.reactivated", data={"agent_id": agent.id})
        else:
            deactivate_agent(tx, agent, conversations=conversations)
        changes["active"] = active
    if password is not None:
        set_password(tx, agent, password)
        revoke_sessions(tx, agent.id, reason="password_changed")
        changes["password"] = "changed"  # noqa: S105 (the event says that, never the value)
    if changes:
        agent.updated_at = tx.now
        tx.session.flush()
        tx.record("agent.updated", data={"agent_id": agent.id, "changes": changes})
        tx.deferred.append(tx.runtime.forget_principals)
    return agent


def set_password(tx: Tx, agent: Agent, password: str) -> None:
    """Set an agent's password (at least MIN_PASSWORD long); the caller decides which sessions end."""
    _check_password(password)
    agent.password_hash = hash_password(password)
    tx.record("agent.password_changed", data={"agent_id": agent.id})


def change_own_password(tx: Tx, agent: Agent, current: str, new: str, keep_session_id: str | None) -> None:
    """Change the signed-in agent's password; every other session of theirs ends.

    The current password is asked for so that a borrowed, still signed-in browser cannot
    take the account over.
    """
    if not verify_password(agent.password_hash, current):
        raise ActionError("password_wrong", N_("Your current password is not right."), 403)
    set_password(tx, agent, new)
    agent.updated_at = tx.now
    revoke_sessions(tx, agent.id, reason="password_changed", keep=keep_session_id)
    tx.deferred.append(tx.runtime.forget_principals)


def deactivate_agent(tx: Tx, agent: Agent, *, conversations: OnDeactivate = "keep") -> None:
    """Deactivate an agent: their sessions and API tokens end; their history stays.

    `conversations` is the admin's choice for their unresolved conversations, recorded here
    and carried out by the caller with `hilo.conversations.actions.unassign_all` ("unassign":
    back to the team queue) or not at all ("keep": a supervisor reassigns them).
    """
    if conversations not in ("keep", "unassign"):
        raise ActionError("payload_invalid", N_("Some fields are missing or not valid."), 422)
    agent.active = False
    agent.updated_at = tx.now
    revoke_sessions(tx, agent.id, reason="deactivated")
    tokens = tx.session.execute(
        update(ApiToken)
        .where(ApiToken.agent_id == agent.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=tx.now)
        .returning(ApiToken.id)
    ).scalars()
    token_ids = sorted(tokens)
    tx.record(
        "agent.deactivated",
        data={"agent_id": agent.id, "conversations": conversations, "tokens": token_ids},
    )
    tx.deferred.append(tx.runtime.forget_principals)


def start_session(tx: Tx, agent: Agent, *, user_agent: str, ip: str) -> tuple[AgentSession, str]:
    """Open a sign-in session; returns the row and the token for the cookie (shown only here)."""
    token = secrets.token_urlsafe(32)
    row = AgentSession(
        id=token_hash(token),
        agent_id=agent.id,
        created_at=tx.now,
        last_seen_at=tx.now,
        user_agent=user_agent[:USER_AGENT_LENGTH],
        ip=ip[:64],
    )
    tx.session.add(row)
    tx.session.flush()
    tx.record("auth.signed_in", data={"agent_id": agent.id, "ip": row.ip, "user_agent": row.user_agent})
    return row, token


def end_session(tx: Tx, agent_id: int, session_id: str, *, signing_out: bool = False) -> AgentSession:
    """Revoke one of an agent's sessions, or sign out of it: its cookie stops working at once."""
    row = tx.session.get(AgentSession, session_id)
    if row is None or row.agent_id != agent_id or row.revoked_at is not None:
        raise ActionError("session_not_found", N_("No such session."), 404)
    row.revoked_at = tx.now
    if signing_out:
        _sessions_revoked(tx, agent_id, [row.id], "signed_out", kind="auth.signed_out")
    else:
        _sessions_revoked(tx, agent_id, [row.id], "revoked")
    return row


def revoke_sessions(tx: Tx, agent_id: int, *, reason: str, keep: str | None = None) -> int:
    """Revoke every live session of an agent, but `keep`; returns how many ended."""
    query = update(AgentSession).where(AgentSession.agent_id == agent_id, AgentSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(AgentSession.id != keep)
    ids = sorted(tx.session.execute(query.values(revoked_at=tx.now).returning(AgentSession.id)).scalars())
    if ids:
        _sessions_revoked(tx, agent_id, ids, reason)
    return len(ids)


def _sessions_revoked(
    tx: Tx, agent_id: int, session_ids: list[str], reason: str, kind: str = "auth.session_revoked"
) -> None:
    # The websocket hub closes the sockets these sessions opened (hilo.realtime.hub).
    tx.record(
        kind,
        data={"agent_id": agent_id, "sessions": len(session_ids), "reason": reason},
        realtime={"only_agent_ids": [agent_id], "revoked_session_ids": session_ids},
    )
    tx.deferred.append(tx.runtime.forget_principals)


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
    # Live updates too: an administration page open elsewhere shows the team as the server has it.
    tx.record("team.created", data={"team_id": team.id}, realtime={"team_id": team.id})
    return team


def set_team_members(tx: Tx, team: Team, member_ids: list[int]) -> Team:
    agents = tx.session.execute(select(Agent).where(Agent.id.in_(member_ids))).scalars().all()
    if len(agents) != len(set(member_ids)):
        raise ActionError("agent_not_found", N_("Agent not found."), 422)
    team.members = list(agents)
    tx.session.flush()
    tx.record(
        "team.members_changed",
        data={"team_id": team.id, "member_ids": sorted(member_ids)},
        realtime={"team_id": team.id},
    )
    tx.deferred.append(tx.runtime.forget_principals)
    return team
