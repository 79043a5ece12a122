"""Request dependencies: the runtime, the signed-in agent, CSRF and rate limits."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from hilo import constant_time
from hilo.agents.access import Principal
from hilo.agents.models import Agent, ApiToken
from hilo.agents.passwords import token_hash
from hilo.errors import ActionError
from hilo.i18n import N_
from hilo.runtime import Runtime

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
CSRF_HEADER = "x-csrf-token"
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


def principal_of(agent: Agent, via_token: bool = False) -> Principal:
    return Principal(
        id=agent.id,
        email=agent.email,
        name=agent.name,
        role=agent.role,
        locale=agent.locale,
        team_ids=frozenset(t.id for t in agent.teams),
        via_token=via_token,
    )


def load_principal(runtime: Runtime, request_headers: dict[str, str], cookie_agent_id: int | None) -> Principal | None:
    """Authenticate by `Authorization: Bearer <token>` or the signed session cookie.

    A result is kept for PRINCIPAL_SECONDS. Changes made through this process (an agent
    deactivated, a role or team changed, a token revoked) drop the cache at once; other
    API processes see them within PRINCIPAL_SECONDS.
    """
    auth = request_headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        key: tuple[str, object] = ("token", token_hash(auth[7:].strip()))
    elif cookie_agent_id is not None:
        key = ("agent", cookie_agent_id)
    else:
        return None
    now = time.monotonic()
    cached = runtime.principals.get(key)
    if cached is not None and cached[0] > now:
        return cast(Principal, cached[1])
    principal = _load_principal(runtime, auth, cookie_agent_id)
    if principal is not None:
        if len(runtime.principals) > PRINCIPAL_CACHE_SIZE:
            runtime.principals.clear()
        runtime.principals[key] = (now + PRINCIPAL_SECONDS, principal)
    return principal


def _load_principal(runtime: Runtime, auth: str, cookie_agent_id: int | None) -> Principal | None:
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
        elif cookie_agent_id is not None:
            agent_id, via_token = cookie_agent_id, False
        else:
            return None
        agent = session.execute(
            select(Agent).options(selectinload(Agent.teams)).where(Agent.id == agent_id)
        ).scalar_one_or_none()
        if agent is None or not agent.active:
            return None
        return principal_of(agent, via_token)


def current_principal(request: Request, runtime: RuntimeDep) -> Principal:
    headers = {k.lower(): v for k, v in request.headers.items()}
    cookie_agent = request.session.get("agent_id") if "session" in request.scope else None
    principal = load_principal(runtime, headers, cookie_agent)
    if principal is None:
        raise ActionError("not_authenticated", N_("Sign in first."), 401)
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
