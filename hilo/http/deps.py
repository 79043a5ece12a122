"""Request dependencies: the runtime, the signed-in agent, CSRF and rate limits.

A browser signs in with a session: the signed cookie (Starlette's SessionMiddleware)
carries a random token under SESSION_KEY, and the server keeps the token's hash in
`agent_sessions`, looked up by primary key, so a revoked session ends at once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, cast

from fastapi import Depends, Request, WebSocket
from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from hilo import constant_time
from hilo.agents.access import Principal
from hilo.agents.models import Agent, AgentSession, ApiToken
from hilo.agents.passwords import token_hash
from hilo.agents.two_factor import must_enrol
from hilo.errors import ActionError
from hilo.i18n import N_
from hilo.runtime import Runtime

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
SESSION_KEY = "sid"
# A session unused this long ends (the cookie itself lasts as long).
SESSION_IDLE = timedelta(days=14)
CSRF_HEADER = "x-csrf-token"
# What an agent who must set up two-factor sign-in may still call with the cookie.
ENROLMENT_PATHS = ("/api/v1/auth/me", "/api/v1/auth/logout", "/api/v1/auth/two-factor")
PRINCIPAL_SECONDS = 5.0
PRINCIPAL_CACHE_SIZE = 10_000


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def read_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.db.read() as session:
        yield session


ReadSession = Annotated[Session, Depends(read_session)]


def principal_of(
    agent: Agent, via_token: bool = False, session_id: str | None = None, enrol: bool = False
) -> Principal:
    return Principal(
        id=agent.id,
        email=agent.email,
        name=agent.name,
        role=agent.role,
        locale=agent.locale,
        team_ids=frozenset(t.id for t in agent.teams),
        via_token=via_token,
        session_id=session_id,
        must_enrol=enrol,
    )


def session_token(connection: Request | WebSocket) -> str | None:
    """The sign-in token the session cookie carries, if any."""
    if "session" not in connection.scope:
        return None
    token = connection.session.get(SESSION_KEY)
    return str(token) if token else None


def load_principal(runtime: Runtime, request_headers: dict[str, str], cookie_token: str | None) -> Principal | None:
    """Authenticate by `Authorization: Bearer <token>` or the session cookie's token.

    A result is kept for PRINCIPAL_SECONDS. Changes made through this process (an agent
    deactivated, a role or team changed, a token or session revoked) drop the cache at
    once; other API processes see them within PRINCIPAL_SECONDS.
    """
    auth = request_headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        key: tuple[str, object] = ("token", token_hash(auth[7:].strip()))
    elif cookie_token is not None:
        key = ("session", token_hash(cookie_token))
    else:
        return None
    now = time.monotonic()
    cached = runtime.principals.get(key)
    if cached is not None and cached[0] > now:
        return cast(Principal, cached[1])
    principal = _load_principal(runtime, auth, cookie_token)
    if principal is not None:
        if len(runtime.principals) > PRINCIPAL_CACHE_SIZE:
            runtime.principals.clear()
        runtime.principals[key] = (now + PRINCIPAL_SECONDS, principal)
    return principal


def _load_principal(runtime: Runtime, auth: str, cookie_token: str | None) -> Principal | None:
    with runtime.db.read() as session:
        if auth.lower().startswith("bearer "):
            digest = token_hash(auth[7:].strip())
            token = session.execute(
                select(ApiToken).where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
            ).scalar_one_or_none()
            if token is None:
                return None
            agent_id, via_token = token.agent_id, True
            now = runtime.clock.now()
            # Bookkeeping at most once a minute per token, in its own short write transaction.
            if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
                with runtime.db.session() as writer:
                    writer.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        elif cookie_token is not None:
            return _session_principal(runtime, session, token_hash(cookie_token))
        else:
            return None
        agent = session.execute(
            select(Agent).options(selectinload(Agent.teams)).where(Agent.id == agent_id)
        ).scalar_one_or_none()
        if agent is None or not agent.active:
            return None
        return principal_of(agent, via_token)


def _session_principal(runtime: Runtime, session: Session, session_id: str) -> Principal | None:
    """The agent of a live session: the session row by primary key, joined to its agent."""
    found = session.execute(
        select(Agent, AgentSession.last_seen_at)
        .join(AgentSession, AgentSession.agent_id == Agent.id)
        .options(selectinload(Agent.teams))
        .where(AgentSession.id == session_id, AgentSession.revoked_at.is_(None))
    ).one_or_none()
    if found is None:
        return None
    agent, last_seen_at = found
    now = runtime.clock.now()
    if not agent.active or now - last_seen_at > SESSION_IDLE:
        return None
    if now - last_seen_at > TOKEN_TOUCH_INTERVAL:
        with runtime.db.session() as writer:
            writer.execute(update(AgentSession).where(AgentSession.id == session_id).values(last_seen_at=now))
    return principal_of(agent, False, session_id, must_enrol(session, agent.id))


def current_principal(request: Request, runtime: RuntimeDep) -> Principal:
    headers = {k.lower(): v for k, v in request.headers.items()}
    principal = load_principal(runtime, headers, session_token(request))
    if principal is None:
        raise ActionError("not_authenticated", N_("Sign in first."), 401)
    if principal.must_enrol and not request.url.path.startswith(ENROLMENT_PATHS):
        raise ActionError(
            "two_factor_setup_required",
            N_("Your organisation requires two-factor sign-in: set it up first, in Your account."),
            403,
        )
    if not principal.via_token and request.method not in SAFE_METHODS:
        expected = request.session.get("csrf", "")
        given = request.headers.get(CSRF_HEADER, "")
        if not expected or not constant_time.equal(str(expected), given):
            raise ActionError("csrf_failed", N_("Your session form expired; reload the page and try again."), 403)
    request.state.principal = principal
    return principal


CurrentAgent = Annotated[Principal, Depends(current_principal)]


def new_csrf(request: Request) -> str:
    token = secrets.token_urlsafe(32)
    request.session["csrf"] = token
    return token


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def active_sessions(runtime: Runtime, agent_id: int) -> list[AgentSession]:
    """An agent's sessions still signed in, most recently used first."""
    idle_since = runtime.clock.now() - SESSION_IDLE
    with runtime.db.read() as session:
        rows = session.execute(
            select(AgentSession)
            .where(
                AgentSession.agent_id == agent_id,
                AgentSession.revoked_at.is_(None),
                AgentSession.last_seen_at > idle_since,
            )
            .order_by(AgentSession.last_seen_at.desc(), AgentSession.created_at.desc())
        ).scalars()
        return list(rows)
